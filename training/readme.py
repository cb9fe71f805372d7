"""``readme``: the headline tables of the README and docs/robustness.md (``render.headline``), from the
manifests, ``docs/latency.json``, the published results of ``docs/published.json`` and the certificate's cost.

Both pages are written by hand; only the blocks between ``<!-- generated: headline-<dataset> -->`` markers are
replaced, so a re-render from unchanged JSON changes nothing.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from render import headline
from .steps import Common, from_args

PAGES = (Path("README.md"), Path("docs/robustness.md"))
LATENCY = Path("docs/latency.json")
CERTIFICATE_COST = Path("docs/certificate-cost.json")
REFERENCES = Path("docs/published.json")


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
    p.add_argument("--references", type=Path, default=Config.references, help="published results and targets")


def _json(path: Path) -> dict | None:
    return json.loads(Path(path).read_text()) if Path(path).is_file() else None


def render(config: Config, text: str) -> str:
    """``text`` with its generated blocks rendered afresh from the JSON (``render.headline.page``)."""
    manifests = [json.loads((folder / "manifest.json").read_text())
                 for folder in sorted(Path(config.artifacts).iterdir()) if (folder / "manifest.json").is_file()]
    latency = (_json(config.latency) or {}).get("datasets", {})
    return headline.page(text, manifests, latency, _json(config.references), _json(config.certificate_cost))


def run(config: Config) -> None:
    for page in config.pages:
        Path(page).write_text(render(config, Path(page).read_text()))


def main(args: argparse.Namespace) -> None:
    run(from_args(Config, args))
