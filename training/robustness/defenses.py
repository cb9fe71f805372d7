"""The defenses ``robustness`` compares, built from the shipped artifacts and the run directory.

A defense is what a white-box attacker differentiates (``model``: purifier -> classifier, or a
classifier alone) plus how it answers at evaluation: one seeded draw of the latent noise, as the
service does, or a majority over ``votes`` draws.  Models trained for this comparison (the
adversarially trained baseline, the classifier fine-tuned on purified images, the transfer
surrogate) are checkpoints in the run directory; a defense whose checkpoint is missing is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..artifacts import load_artifacts
from ..models import INPUT_SHAPE, NUM_CLASSES
from ..runs import load_checkpoint, predict

PAPER_PURIFIER = "autoencoder-pgd"  # the paper's PGD purifier (10-d latent, PGD eps=0.3 training)
DEFAULT_PURIFIER = "autoencoder"  # what the service ships
# run-directory checkpoints written by the robustness stage that trains them
SURROGATE = "surrogate.ckpt"
ADV_TRAINED = "classifier-fgsm-rs.ckpt"
FINETUNED = "classifier-purified.ckpt"
# served pipeline -> the defense above that is the same models
PIPELINE_DEFENSES = {DEFAULT_PURIFIER: "default", PAPER_PURIFIER: "paper", "autoencoder-fgsm": None}


@dataclass
class Defense:
    name: str
    label: str
    model: nn.Module
    purifier: nn.Module | None = None
    classifier: nn.Module | None = None
    votes: int = 1
    attacked_as: str | None = None  # reuse the adversarial examples crafted against this defense
    side: int = INPUT_SHAPE[1]  # the images it takes: side x side (a served model may have its own input shape)

    @property
    def stochastic(self) -> bool:
        return self.purifier is not None

    @torch.no_grad()
    def predict(self, images: Tensor, seed: int, device) -> Tensor:
        """Labels for ``images``: one seeded draw, or the majority over ``votes`` draws."""
        torch.manual_seed(seed)
        counts = torch.zeros(len(images), NUM_CLASSES)
        for _ in range(self.votes):
            counts += F.one_hot(predict(self.model, images, device=device).argmax(1), NUM_CLASSES)
        return counts.argmax(1)


def _frozen(model: nn.Module) -> nn.Module:
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def load_eager(path: Path, device) -> nn.Module | None:
    return _frozen(load_checkpoint(path, device)[0]) if Path(path).is_file() else None


def build(artifacts: Path, run: Path, device, votes: int) -> tuple[dict[str, Defense], nn.Module | None]:
    """({name: Defense}, transfer surrogate or None), in the order of the report's columns."""
    manifest, models = load_artifacts(Path(artifacts), device)
    clf = models["classifier"]

    def purified(name: str, label: str, purifier: str, classifier: nn.Module, **kw) -> Defense:
        ae = models[purifier]
        return Defense(name, label, nn.Sequential(ae, classifier), ae, classifier, **kw)

    out = {"none": Defense("none", "no defense", clf, classifier=clf),
           "paper": purified("paper", f"paper purifier ({PAPER_PURIFIER})", PAPER_PURIFIER, clf),
           "default": purified("default", f"default purifier ({DEFAULT_PURIFIER}, shipped)", DEFAULT_PURIFIER, clf),
           "vote": purified("vote", f"default purifier, majority of {votes} draws", DEFAULT_PURIFIER, clf,
                            votes=votes, attacked_as="default")}
    finetuned = load_eager(run / FINETUNED, device)
    if finetuned is not None:
        out["finetuned"] = purified("finetuned", "default purifier + classifier fine-tuned on purified images",
                                    DEFAULT_PURIFIER, finetuned)
    adv = load_eager(run / ADV_TRAINED, device)
    if adv is not None:
        out["adv-training"] = Defense("adv-training", "FGSM-RS adversarial training (no purifier)", adv,
                                      classifier=adv)
    out |= served_pipelines(manifest, models)
    return out, load_eager(run / SURROGATE, device)


def served_pipelines(manifest: dict, models: dict) -> dict[str, Defense]:
    """Every pipeline the manifest names that is not one of the defenses above, under its own name."""
    by_file = {m["file"]: name for name, m in manifest["models"].items()}
    out = {}
    for name, pipeline in manifest.get("pipelines", {}).items():
        if name in PIPELINE_DEFENSES:
            continue
        classifier = models[by_file[pipeline["classifier"]]]
        purifier = models[by_file[pipeline["purifier"]]] if pipeline.get("purifier") else None
        label = f"pipeline {name}: {by_file.get(pipeline.get('purifier'), 'no purifier')} -> {by_file[pipeline['classifier']]}"
        model = classifier if purifier is None else nn.Sequential(purifier, classifier)
        first = manifest["models"][by_file[pipeline.get("purifier") or pipeline["classifier"]]]
        side = first.get("input_shape", INPUT_SHAPE)[-1]
        out[name] = Defense(name, label, model, purifier, classifier, side=side)
    return out
