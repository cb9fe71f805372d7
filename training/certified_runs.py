"""``certified-runs``: the per-epoch validation history of certified-training checkpoints, side by side, into
``docs/robustness/certified-runs/<dataset>.json``: how recipes compare epoch for epoch, finished or stopped.

Each checkpoint of ``train-certified`` (finished or not) keeps its recipe and, per epoch, the clean and
IBP-certified accuracy at the test eps on the validation images it selects with.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .models import CNN7Config
from .runs import read_timings
from .steps import Common, from_args

RECIPE = ("precision", "input_side", "side", "width", "linear", "epochs", "train_eps", "test_eps", "clean_epochs",
          "ramp_epochs", "kappa_end", "robust_weight", "robust_ramp", "l1", "pop_bn_stats", "reg_lambda", "lr",
          "batch_size", "seed", "val_n", "limit")


@dataclass(frozen=True)
class Config(Common):
    checkpoints: tuple[str, ...] = ("certified.ckpt",)  # names inside the run directory
    docs: Path = Path("docs")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoints", nargs="+", default=list(Config.checkpoints), help="names inside the run directory")
    p.add_argument("--docs", type=Path, default=Config.docs)


def summary(path: Path) -> dict:
    """A checkpoint's recipe (the input 32x32 and ``side`` the input's where the run predates the choice),
    progress, wall time and history."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    recipe = ckpt["train_config"]
    input_side = recipe.get("input_side", CNN7Config.input_side)
    chosen = dict.fromkeys(h["precision"] for h in ckpt["history"] if "precision" in h)  # "auto" resolved
    given = {**recipe, "input_side": input_side, "side": recipe.get("side") or input_side,
             "precision": "/".join(chosen) or recipe["precision"]}
    seconds = ckpt.get("train_seconds") or read_timings(path.parent).get(f"train-{path.stem}")  # finished: timed
    return {"recipe": {key: given.get(key) for key in RECIPE},
            "complete": bool(ckpt.get("complete")), "epochs_run": len(ckpt["history"]),
            "train_seconds": seconds, "history": ckpt["history"]}


def run(config: Config) -> Path:
    out = config.docs / "robustness" / "certified-runs" / f"{config.dataset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(out.read_text()) if out.is_file() else {}
    for name in config.checkpoints:
        runs[name.removesuffix(".ckpt")] = summary(config.run_dir / name)
    out.write_text(json.dumps(runs, indent=1) + "\n")
    return out


def main(args: argparse.Namespace) -> None:
    run(from_args(Config, args))
