"""Train a purifier: MSE(AE(adversarial), clean) against the frozen, trained classifier.

With ``--class-weight w > 0`` the objective adds ``w * CE(classifier(AE(adversarial)), label)``: the
frozen classifier guides the purifier to keep what separates the classes (a departure from the
paper's pure MSE, in the spirit of Liao et al. 2018's guided denoiser; the paper's purifiers use w=0).

args -> seed -> data + cached adversarial pairs -> model -> loop with early
stopping on the validation split (never trained on) -> checkpoint with its
validation metrics (the ablation chooses the default purifier from those).
"""

from __future__ import annotations

import argparse
import copy
import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from . import data
from .advsets import AdvSetSpec, cached
from .models import AutoencoderConfig, ConvAutoencoder
from .runs import (
    load_checkpoint,
    pick_device,
    predict,
    save_checkpoint,
    seed_everything,
    timed,
    train_epoch,
)
from .steps import Training, add_precision, from_args

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Part:
    """One slice of a split, attacked by ``spec``: (adversarial, clean) training pairs."""

    spec: AdvSetSpec
    train: tuple[int, int] | None = None  # (start, stop) of the split; None = all of it
    val: tuple[int, int] | None = None


# PGD-40 costs 40 gradient passes per image on a CPU, so PGD parts use a 5k
# subset of the 50k training images (and 1k of the validation split).
PGD_TRAIN, PGD_VAL = (0, 5_000), (0, 1_000)
PAPER_FGSM = AdvSetSpec("fgsm", eps=0.6)
PAPER_PGD = AdvSetSpec("pgd", eps=0.3, alpha=0.01, steps=40)
RECIPES: dict[str, tuple[Part, ...]] = {
    "paper-fgsm": (Part(PAPER_FGSM),),
    "paper-pgd": (Part(PAPER_PGD, PGD_TRAIN, PGD_VAL),),
    "mixture": (
        Part(AdvSetSpec()),
        Part(AdvSetSpec("fgsm", eps_range=(0.0, 0.6))),
        Part(PAPER_PGD, PGD_TRAIN, PGD_VAL),
        Part(AdvSetSpec("pgd", eps_range=(0.05, 0.3)), (5_000, 10_000), (1_000, 2_000)),
        Part(PAPER_FGSM),
    ),
}
# Validation points for model selection: the paper's table attacks (PGD at the table's eps=0.15).
VAL_CHECKS = {"fgsm-0.6": (PAPER_FGSM, None), "pgd-0.15": (AdvSetSpec("pgd", eps=0.15), PGD_VAL)}


@dataclass(frozen=True)
class Config(Training):
    recipe: str = "mixture"
    latent_dim: int = 10
    noise_std: float = 1.0  # sigma of the latent noise (paper: 1.0)
    epochs: int = 10  # maximum epochs (early stopping, patience 2)
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    class_weight: float = 0.0  # weight of the frozen classifier's CE on purified images (paper: 0)
    classifier: str = "classifier.ckpt"  # checkpoint in the run directory
    out: str = "autoencoder.ckpt"  # checkpoint name inside the run directory


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", choices=sorted(RECIPES), default=Config.recipe)
    p.add_argument("--latent-dim", type=int, default=Config.latent_dim)
    p.add_argument("--noise-std", type=float, default=Config.noise_std, help="sigma of the latent noise (paper: 1.0)")
    p.add_argument("--epochs", type=int, default=Config.epochs, help="maximum epochs (early stopping, patience 2)")
    p.add_argument("--batch-size", type=int, default=Config.batch_size)
    p.add_argument("--lr", type=float, default=Config.lr)
    p.add_argument("--seed", type=int, default=Config.seed)
    add_precision(p, Config.precision)
    p.add_argument("--class-weight", type=float, default=Config.class_weight,
                   help="weight of the frozen classifier's cross-entropy on purified images (paper: 0, pure MSE)")
    p.add_argument("--classifier", default=Config.classifier, help="checkpoint in the run directory")
    p.add_argument("--out", default=Config.out, help="checkpoint name inside the run directory")


def pairs(split: TensorDataset, tag: str, parts: tuple[Part, ...], which: str, classifier, cache_dir,
          device) -> TensorDataset:
    """Concatenate (adversarial, clean, label) triples over the recipe's parts for one split."""
    advs, cleans, labels = [], [], []
    for i, part in enumerate(parts):
        span = getattr(part, which)
        x, y = (t[_slice(span)] for t in split.tensors)
        advs.append(cached(cache_dir, classifier, x, y, part.spec, tag=f"{tag}{_start(span)}", seed=i,
                           device=device))
        cleans.append(x)
        labels.append(y)
    return TensorDataset(torch.cat(advs), torch.cat(cleans), torch.cat(labels))


def objective(classifier, class_weight: float):
    """``MSE(purified, clean) [+ class_weight * CE(classifier(purified), label)]``."""
    def loss(purified, clean, labels):
        mse = F.mse_loss(purified, clean)
        if not class_weight:
            return mse
        return mse + class_weight * F.cross_entropy(classifier(purified), labels)
    return loss


@torch.no_grad()
def val_loss(model, classifier, class_weight: float, val: TensorDataset, device) -> float:
    """The training objective on the validation pairs (seeded noise), batched."""
    torch.manual_seed(0)
    adv, clean, labels = val.tensors
    purified = predict(model, adv, device=device)
    loss = F.mse_loss(purified, clean).item()
    if class_weight:
        loss += class_weight * F.cross_entropy(predict(classifier, purified, device=device), labels).item()
    return loss


def val_metrics(model, classifier, split: TensorDataset, cache_dir, device) -> dict[str, float]:
    """Purified-clean and defended accuracy on the validation split (seeded noise)."""
    def acc(images, labels):
        torch.manual_seed(0)
        purified = predict(model, images, device=device)
        return (predict(classifier, purified, device=device).argmax(1) == labels).float().mean().item()

    x, y = split.tensors
    out = {"purified_clean": acc(x, y)}
    for name, (spec, span) in VAL_CHECKS.items():
        sl = _slice(span)
        out[name] = acc(cached(cache_dir, classifier, x[sl], y[sl], spec, tag=f"val{_start(span)}",
                               device=device), y[sl])
    return {k: round(v, 4) for k, v in out.items()}


def run(args: Config) -> None:
    seed_everything(args.seed)
    device = pick_device(args.device)
    run = args.run_dir
    splits = data.load_splits(args.root, args.dataset, limit=args.limit)
    classifier, _ = load_checkpoint(run / args.classifier, device)
    for p in classifier.parameters():
        p.requires_grad_(False)
    parts = RECIPES[args.recipe]
    train = pairs(splits["train"], "train", parts, "train", classifier, run / "adv", device)
    val = pairs(splits["val"], "val", parts, "val", classifier, run / "adv", device)

    config = AutoencoderConfig(latent_dim=args.latent_dim, noise_std=args.noise_std)
    model = ConvAutoencoder(config).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(args.seed))
    best, best_state, bad_epochs, history = float("inf"), None, 0, []
    log.info("purifier %s (%s): %d training pairs, %d validation pairs", args.out, args.recipe, len(train), len(val))
    with timed(run, f"train-purifier-{args.out.removesuffix('.ckpt')}"):
        for epoch in range(args.epochs):
            train_epoch(model, loader, objective(classifier, args.class_weight), opt, device, dry_run=args.dry_run,
                        desc=f"purifier {args.recipe} epoch {epoch + 1}/{args.epochs}", precision=args.precision)
            loss_val = val_loss(model, classifier, args.class_weight, val, device)
            history.append(round(loss_val, 5))
            log.info("epoch %d: validation objective %.5f", epoch + 1, loss_val)
            if loss_val < best:
                best, best_state, bad_epochs = loss_val, copy.deepcopy(model.state_dict()), 0
            else:
                bad_epochs += 1
                if bad_epochs >= 2:
                    log.info("early stop after epoch %d", epoch + 1)
                    break
    model.load_state_dict(best_state)
    model.eval()
    metrics = val_metrics(model, classifier, splits["val"], run / "adv", device)
    log.info("validation metrics: %s", metrics)
    train_config = {"recipe": args.recipe, "parts": [_describe(p) for p in parts], "class_weight": args.class_weight,
                    "precision": args.precision,
                    "objective": "MSE" + (f" + {args.class_weight} * CE(classifier)" if args.class_weight else ""),
                    "optimizer": "Adam",
                    "lr": args.lr, "batch_size": args.batch_size, "max_epochs": args.epochs,
                    "epochs_run": len(history), "early_stopping": "validation objective, patience 2",
                    "val_objective_history": history, "seed": args.seed, "split_seed": data.SPLIT_SEED}
    save_checkpoint(run / args.out, "autoencoder", config, model, train_config=train_config, val_metrics=metrics)


def _slice(span: tuple[int, int] | None) -> slice:
    return slice(*span) if span else slice(None)


def _start(span: tuple[int, int] | None) -> int:
    return span[0] if span else 0


def _describe(part: Part) -> dict:
    def text(span):
        return f"{span[0]}:{span[1]}" if span else "all"
    return {**part.spec.to_dict(), "train_images": text(part.train), "val_images": text(part.val)}


def main(args: argparse.Namespace) -> None:
    run(from_args(Config, args))
