"""Where a robust pipeline's gap to its target comes from: a served pipeline's classifier retrained with one
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

# per pipeline of the manifest: its classifier's variants, one change each (docs/robustness.md#the-recipe-study
# says why each was tried); a base that is no longer served is retrained and added with export --add first
VARIANTS = {
    "adv-pgd": ({"epochs": 4}, {"width": 0.125}, {"epochs": 4, "steps": 10}, {"epochs": 4, "inputs": "trades"},
                {"epochs": 4, "steps": 10, "seed": 1}, {"epochs": 4, "steps": 20}, {"steps": 10},
                {"epochs": 4, "steps": 10, "width": 0.5}, {"steps": 10, "epochs": 16},
                {"epochs": 4, "steps": 10, "inputs": "apgd"}, {"epochs": 4, "steps": 10, "eps": 0.35},
                {"steps": 10, "epochs": 32, "select_by": "apgd"}),
    "adv-trades": ({"width": 0.125}, {"epochs": 3}, {"epochs": 12}, {"width": 0.5}, {"steps": 10}, {"beta": 3.0}),
}
_NOT_RECIPE = {f.name for f in fields(Common)} | {"out"}


def _manifest(artifact_dir: Path) -> dict:
    return json.loads((Path(artifact_dir) / "manifest.json").read_text())


def bases(artifact_dir: Path) -> list[str]:
    """The pipelines of the manifest in ``artifact_dir`` whose classifiers have variants to study."""
    pipelines = _manifest(artifact_dir).get("pipelines", {})
    return [name for name in VARIANTS if name in pipelines]


def recipe(artifact_dir: Path, base: str) -> dict:
    """The training options of pipeline ``base``'s classifier, as the manifest records them."""
    manifest = _manifest(artifact_dir)
    by_file = {m["file"]: m for m in manifest["models"].values()}
    return options(by_file[manifest["pipelines"][base]["classifier"]].get("training", {}))


def options(training: dict) -> dict:
    """The options of a recorded training config that make its recipe (not where it ran, nor its file names); an
    option added after it was recorded has the default it then ran with."""
    recipe_fields = [f for f in fields(train_adversarial.Config) if f.name not in _NOT_RECIPE]
    return {f.name: training.get(f.name, f.default) for f in recipe_fields}


def variants(base: str) -> dict[str, dict]:
    """{name: change} of every variant of pipeline ``base``'s classifier."""
    def part(key, value):  # a training method by its name, any other option with its name: select-by-apgd
        if key == "inputs":
            return value
        return f"{key.replace('_', '-')}-{value}" if isinstance(value, str) else f"{key}{value}"
    return {"-".join([base, *(part(k, v) for k, v in change.items())]): change for change in VARIANTS[base]}


def train(config: Common, only: tuple[str, ...] = ()) -> dict[str, dict]:
    """Train the missing variants (each resumable; ``only``: just these names); {name: {base, change}} of those."""
    out = {}
    for base in bases(config.artifact_dir):
        shipped = recipe(config.artifact_dir, base)
        for name, change in variants(base).items():
            if not only or name in only:
                train_adversarial.run(derive(train_adversarial.Config, config, **{**shipped, **change},
                                             out=f"{name}.ckpt"))
                out[name] = {"base": base, "change": change}
    return out


def summary(run: Path, name: str, variant: dict) -> dict:
    """What the results file keeps of a variant: its base and change, recipe, per-epoch validation, wall time."""
    ckpt = torch.load(run / f"{name}.ckpt", map_location="cpu", weights_only=False)
    return {**variant, "train_config": ckpt["train_config"], "best_epoch": ckpt["best_epoch"],
            "history": ckpt.get("history"), "val_selection_metric": ckpt["val_selection_metric"],
            "train_seconds": read_timings(run).get(f"train-{name}")}


def defenses(run: Path, names, device) -> dict[str, Defense]:
    """Each trained variant as a (deterministic, classifier-only) defense."""
    out = {}
    for name in names:
        model = load_eager(run / f"{name}.ckpt", device)
        out[name] = Defense(name, f"recipe variant {name}", model, classifier=model)
    return out
