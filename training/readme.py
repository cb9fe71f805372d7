"""``readme``: the headline tables of the README and docs/robustness.md, from the manifests,
``docs/latency.json`` and the published results of ``docs/published.json``.

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
REFERENCES = Path("docs/published.json")
OBLIVIOUS = "pgd-0.15"  # the paper's PGD (eps 0.15, crafted on the undefended classifier)
HEADER = ["pipeline", "method", "clean", "AutoAttack", "worst case, all attacks", "certified",
          "paper's PGD (oblivious)", "p95 ms"]


@dataclass(frozen=True)
class Config(Common):
    pages: tuple[Path, ...] = PAGES
    latency: Path = LATENCY
    certificate_cost: Path = CERTIFICATE_COST
    references: Path = REFERENCES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pages", type=Path, nargs="+", default=list(Config.pages), help="pages with headline blocks")
    p.add_argument("--latency", type=Path, default=Config.latency, help="python -m loadtest.pipelines' output")
    p.add_argument("--certificate-cost", type=Path, default=Config.certificate_cost,
                   help="python -m loadtest.bench.certificate's output")


def _pct(entry: dict | None, n: bool = False, ci: bool = False) -> str:
    if not entry:
        return "–"
    text = f"{100 * entry['accuracy']:.1f}%"
    if ci and entry.get("ci95"):
        text += " [{:.1f}, {:.1f}]".format(*(100 * bound for bound in entry["ci95"]))
    return text + (f" (n={entry['n']:,})" if n else "")


def _share(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}".rstrip("0").rstrip(".") + "%"


def certified_models(manifests: list[dict], references: dict) -> str:
    """Each served certified pipeline beside its dataset's target and published results: certified (by the
    served bounds), AutoAttack and clean accuracy with Wilson 95% CIs, and how it was trained."""
    rows = []
    for manifest in manifests:
        dataset = manifest["dataset"]
        reference = references["datasets"].get(dataset, {})
        for name, pipeline in manifest["pipelines"].items():
            metrics = pipeline.get("metrics", {})
            if not metrics.get("certified"):
                continue
            model = next(m for m in manifest["models"].values() if m["file"] == pipeline["classifier"])
            tc = model.get("training", {})
            seconds = manifest.get("training_wall_time_s", {}).get("train-" + Path(tc.get("out", "")).stem)
            trained = ", ".join(part for part in (
                f"width {tc['width']}" if "width" in tc else "", f"{tc['epochs']} epochs" if "epochs" in tc else "",
                tc.get("precision", ""), f"{seconds / 60:.0f} min" if seconds else "") if part)
            rows.append([f"{dataset}, {metrics['eps']}", f"`{name}`", _pct(metrics["certified"], ci=True),
                         _pct(metrics.get("autoattack"), n=True, ci=True), _pct(metrics.get("clean"), ci=True),
                         str(metrics["certified"].get("violations", "–")), trained])
        target = reference.get("target")
        if target:
            rows.append([f"{dataset}, {reference['eps']}", "target", f"≥ {_share(target['certified'])}",
                         f"≥ {_share(target['autoattack'])} (n ≥ 1,000)", f"≥ {_share(target['clean'])}", "0", ""])
        for published in reference.get("published", []):
            rows.append([f"{dataset}, {reference['eps']}", f"{published['name']} ({published['source']})",
                         _share(published["certified"]), _share(published["autoattack"]), _share(published["clean"]),
                         "", ""])
    return table(["dataset, ε", "model", "certified", "AutoAttack", "clean", "certified images flipped",
                  "training"], rows)


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
    """``text`` with each generated block it has rendered afresh: every dataset's headline, the certified
    models beside the published results, and the certificate's cost."""
    latency = (_json(config.latency) or {}).get("datasets", {})
    manifests = [json.loads((folder / "manifest.json").read_text())
                 for folder in sorted(Path(config.artifacts).iterdir()) if (folder / "manifest.json").is_file()]
    for manifest in manifests:
        dataset = manifest["dataset"]
        text = splice(text, f"headline-{dataset}", headline(manifest, latency.get(dataset, {})))
    references = _json(config.references)
    if references and markers("certified-models")[0] in text:
        text = splice(text, "certified-models", certified_models(manifests, references))
    cost = _json(config.certificate_cost)
    if cost and markers("certificate-cost")[0] in text:
        text = splice(text, "certificate-cost", certificate_cost(cost))
    return text


def run(config: Config) -> None:
    for page in config.pages:
        Path(page).write_text(render(config, Path(page).read_text()))


def main(args: argparse.Namespace) -> None:
    run(from_args(Config, args))
