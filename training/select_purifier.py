"""``select-purifier``: the ablation that picks the default purifier (``autoencoder.ckpt``).

The paper's purifiers are specific to their eps and lose a lot of accuracy on
clean images.  The default purifier trains on the ``mixture`` recipe (clean +
FGSM + PGD across the eps range) and may depart from the paper in latent size,
noise sigma and the classifier-guided term of its objective (``--class-weight``).  Each candidate is trained, measured on the *validation*
split, and the rule below picks one; the whole table goes into the manifest.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from dataclasses import dataclass

from . import train_purifier
from .runs import load_checkpoint
from .steps import Common, derive, from_args

log = logging.getLogger(__name__)
# The purified-clean accuracy floor: what the default purifier must keep on clean validation images.
PURIFIED_CLEAN_TARGET = {"mnist": 0.97, "fashion-mnist": 0.85}
# Candidates (latent_dim:noise_std[:class_weight]). Fashion-MNIST misses its target at sigma 1.0 and
# plateaus near 0.79 over latent size and sigma with pure MSE, so its grid also tries the
# classifier-guided objective.
GRIDS = {"mnist": "10:1.0,16:1.0,32:1.0,64:1.0",
         "fashion-mnist": "10:1.0,16:1.0,32:1.0,64:1.0,64:0.5,64:0.25,128:0.5,128:0.5:0.1"}
RULE = ("among candidates whose validation purified-clean accuracy meets the dataset's target, "
        "the highest min(FGSM eps=0.6, PGD eps=0.15) defended validation accuracy; if none meets it, "
        "the highest purified-clean accuracy")


@dataclass(frozen=True)
class Config(Common):
    grid: str | None = None  # comma-separated latent_dim:noise_std[:class_weight]; None: the dataset's GRIDS
    epochs: int = 10
    seed: int = 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--grid", default=Config.grid,
                   help="comma-separated latent_dim:noise_std[:class_weight] candidates (default: the dataset's GRIDS)")
    p.add_argument("--epochs", type=int, default=Config.epochs)
    p.add_argument("--seed", type=int, default=Config.seed)


def choose(candidates: list[dict], target: float) -> dict:
    ok = [c for c in candidates if c["val"]["purified_clean"] >= target]
    if ok:
        return max(ok, key=lambda c: min(c["val"]["fgsm-0.6"], c["val"]["pgd-0.15"]))
    return max(candidates, key=lambda c: c["val"]["purified_clean"])


def run(args: Config) -> None:
    run = args.run_dir
    (run / "ablation").mkdir(exist_ok=True)
    candidates = []
    for item in (args.grid or GRIDS[args.dataset]).split(","):
        latent, sigma, *guided = item.split(":")
        weight = float(guided[0]) if guided else 0.0
        name = f"ablation/ae-l{latent}-s{sigma}" + (f"-c{guided[0]}" if weight else "") + ".ckpt"
        if not (args.resume and (run / name).is_file()):
            train_purifier.run(derive(
                train_purifier.Config, args, resume=args.resume, recipe="mixture", latent_dim=int(latent),
                noise_std=float(sigma), class_weight=weight, out=name, batch_size=64, lr=1e-3,
                classifier="classifier.ckpt", epochs=args.epochs, seed=args.seed))
        _, ckpt = load_checkpoint(run / name)
        train_config = ckpt["train_config"]
        candidates.append({"checkpoint": name, **ckpt["config"], "class_weight": train_config.get("class_weight", 0.0),
                           "epochs_run": train_config["epochs_run"], "val": ckpt["val_metrics"]})
    target = PURIFIED_CLEAN_TARGET[args.dataset]
    chosen = choose(candidates, target)
    shutil.copyfile(run / chosen["checkpoint"], run / "autoencoder.ckpt")
    report = {"rule": RULE, "purified_clean_target": target, "split": "validation",
              "candidates": candidates, "chosen": chosen["checkpoint"]}
    (run / "ablation.json").write_text(json.dumps(report, indent=2))
    log.info("default purifier: %s (%s)", chosen["checkpoint"], chosen["val"])


def main(args: argparse.Namespace) -> None:
    run(from_args(Config, args))
