"""Where a robust pipeline's gap to its target comes from: the default pipeline's classifier retrained with one
part of its recipe changed at a time (half the width, half the epochs), every model under the same strong
attack on the same test images.

A change that costs much robustness when halved points at what more of it would buy. The recipe comes from
the manifest's record of how the default pipeline's classifier was trained, so the variants differ from it in
the named change only.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import torch

from ..runs import read_timings
from ..steps import Common, derive
from . import train_adversarial
from .defenses import Defense, load_eager

# per dataset: the changes, each a variant trained beside the default: half the epochs, half the width; on
# MNIST also, at half the epochs, a stronger training attack, the other training method and another seed (how
# much one retraining moves the figures by chance alone)
VARIANTS = {
    "mnist": ({"epochs": 4}, {"width": 0.125}, {"epochs": 4, "steps": 10}, {"epochs": 4, "inputs": "trades"},
              {"epochs": 4, "seed": 1}),
    "fashion-mnist": ({"width": 0.125}, {"epochs": 3}),
}
_NOT_RECIPE = {f.name for f in fields(Common)} | {"out"}


def default_recipe(artifact_dir: Path) -> tuple[str, dict]:
    """(default pipeline name, the training options of its classifier, as the manifest records them)."""
    manifest = json.loads((Path(artifact_dir) / "manifest.json").read_text())
    name = manifest["default_pipeline"]
    by_file = {m["file"]: m for m in manifest["models"].values()}
    recorded = by_file[manifest["pipelines"][name]["classifier"]].get("training", {})
    options = {f.name for f in fields(train_adversarial.Config)} - _NOT_RECIPE
    return name, {k: v for k, v in recorded.items() if k in options}


def variants(dataset: str, default: str) -> dict[str, dict]:
    """{name: change} of every variant of ``dataset``'s default pipeline ``default``."""
    def part(key, value):
        return value if isinstance(value, str) else f"{key}{value}"
    return {"-".join([default, *(part(k, v) for k, v in change.items())]): change for change in VARIANTS[dataset]}


def train(config: Common, only: tuple[str, ...] = ()) -> dict[str, dict]:
    """Train the missing variants (each resumable; ``only``: just these names); {name: change} of those."""
    default, recipe = default_recipe(config.artifact_dir)
    out = {name: change for name, change in variants(config.dataset, default).items() if not only or name in only}
    for name, change in out.items():
        train_adversarial.run(derive(train_adversarial.Config, config, **{**recipe, **change}, out=f"{name}.ckpt"))
    return out


def summary(run: Path, name: str, change: dict) -> dict:
    """What the results file keeps of a variant: its change, recipe, per-epoch validation and wall time."""
    ckpt = torch.load(run / f"{name}.ckpt", map_location="cpu", weights_only=False)
    return {"change": change, "train_config": ckpt["train_config"], "best_epoch": ckpt["best_epoch"],
            "history": ckpt.get("history"), "val_selection_metric": ckpt["val_selection_metric"],
            "train_seconds": read_timings(run).get(f"train-{name}")}


def defenses(run: Path, names, device) -> dict[str, Defense]:
    """Each trained variant as a (deterministic, classifier-only) defense."""
    out = {}
    for name in names:
        model = load_eager(run / f"{name}.ckpt", device)
        out[name] = Defense(name, f"recipe variant {name}", model, classifier=model)
    return out
