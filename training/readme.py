"""``readme``: the headline tables of the README and docs/robustness.md, from the manifests and
``docs/latency.json``.

Both pages are written by hand; only the blocks between ``<!-- generated: headline-<dataset> -->`` markers are
replaced, so a re-render from unchanged JSON changes nothing.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from render.markdown import markers, splice, table
from .steps import Common, from_args

PAGES = (Path("README.md"), Path("docs/robustness.md"))
LATENCY = Path("docs/latency.json")
CERTIFICATE_COST = Path("docs/certificate-cost.json")
OBLIVIOUS = "pgd-0.15"  # the paper's PGD (eps 0.15, crafted on the undefended classifier)
HEADER = ["pipeline", "method", "clean", "AutoAttack", "worst case, all attacks", "certified",
          "paper's PGD (oblivious)", "p95 ms"]


@dataclass(frozen=True)
class Config(Common):
    pages: tuple[Path, ...] = PAGES
    latency: Path = LATENCY
    certificate_cost: Path = CERTIFICATE_COST


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pages", type=Path, nargs="+", default=list(Config.pages), help="pages with headline blocks")
    p.add_argument("--latency", type=Path, default=Config.latency, help="python -m loadtest.pipelines' output")
    p.add_argument("--certificate-cost", type=Path, default=Config.certificate_cost,
                   help="python -m loadtest.bench.certificate's output")


def _pct(entry: dict | None, n: bool = False) -> str:
    if not entry:
        return "–"
    text = f"{100 * entry['accuracy']:.1f}%"
    return text + (f" (n={entry['n']:,})" if n else "")


def rows(manifest: dict, latency: dict) -> list[list[str]]:
    """One row per served pipeline, the default first."""
    default = manifest["default_pipeline"]
    names = sorted(manifest["pipelines"], key=lambda name: name != default)
    by_file = {m["file"]: name for name, m in manifest["models"].items()}
    out = []
    for name in names:
        pipeline = manifest["pipelines"][name]
        metrics = pipeline.get("metrics", {})
        purifier = by_file.get(pipeline.get("purifier"))
        clean = metrics.get("clean") or manifest["metrics"]["clean"].get(purifier)
        oblivious = manifest["metrics"]["table"][OBLIVIOUS].get(purifier) if purifier else None
        p95 = latency.get(name, {}).get("p95_ms")
        out.append([f"`{name}`" + (" (default)" if name == default else ""), pipeline.get("method", "–"),
                    _pct(clean), _pct(metrics.get("autoattack"), n=True),
                    _pct(metrics.get("worst_case"), n=not metrics.get("autoattack")),
                    _pct(metrics.get("certified")), _pct(oblivious), f"{p95:.1f}" if p95 else "–"])
    return out


def headline(manifest: dict, latency: dict) -> str:
    return table(HEADER, rows(manifest, latency))


def certificate_cost(measured: dict) -> str:
    """The certificate's cost beside the model's own forward pass, per certified model and batch size: the
    certificate at the pipeline's eps alone, and with the radius search."""
    rows = []
    for name, by_batch in measured["models"].items():
        for batch, r in by_batch.items():
            rows.append([f"`{name}`", batch.removeprefix("batch")]
                        + [f"{r[k]['p50_ms']:.2f} / {r[k]['p95_ms']:.2f}" for k in ("forward", "at_eps", "certify")]
                        + [f"{r['ratio_p50']:.1f}x"])
    search = measured["radius_search"]
    return table(["model", "batch", "forward p50 / p95 ms", "certificate at ε p50 / p95 ms",
                  "with radius p50 / p95 ms", "with radius / forward"], rows) + (
        f"\n\nIn process on the bundled test images, {measured['threads']} thread, a grey-level radius search of "
        f"{search['probes']} levels a round, at most {search['rounds']} rounds (`{measured['command']}`).")


def _json(path: Path) -> dict | None:
    return json.loads(Path(path).read_text()) if Path(path).is_file() else None


def render(config: Config, text: str) -> str:
    """``text`` with each generated block it has rendered afresh: every dataset's headline, and the
    certificate's cost."""
    latency = (_json(config.latency) or {}).get("datasets", {})
    for folder in sorted(p for p in Path(config.artifacts).iterdir() if (p / "manifest.json").is_file()):
        manifest = json.loads((folder / "manifest.json").read_text())
        dataset = manifest["dataset"]
        text = splice(text, f"headline-{dataset}", headline(manifest, latency.get(dataset, {})))
    cost = _json(config.certificate_cost)
    if cost and markers("certificate-cost")[0] in text:
        text = splice(text, "certificate-cost", certificate_cost(cost))
    return text


def run(config: Config) -> None:
    for page in config.pages:
        Path(page).write_text(render(config, Path(page).read_text()))


def main(args: argparse.Namespace) -> None:
    run(from_args(Config, args))
