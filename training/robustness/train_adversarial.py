"""Train a VGG-16 on inputs transformed batch by batch: config -> seed -> data -> model -> loop -> checkpoint.

Recipes (``inputs``):

- ``fgsm-rs``: "fast" adversarial training (Wong, Rice & Kolter, 2020): every batch is replaced by FGSM
  from a random start, step ``alpha_ratio * eps`` (Wong: 1.25).
- ``pgd``: PGD adversarial training (Madry et al., 2018): ``steps`` steps of ``2.5 eps / steps`` from a
  random start.
- ``apgd``: the same, with APGD (Croce & Hein, 2020) as the inner maximization: ``steps`` steps whose size
  starts at ``2 eps`` and halves, per image, when the loss stops rising (the attack that finds most of what
  fixed-step PGD misses on a PGD-trained model).
- ``trades``: TRADES (Zhang et al., 2019): cross-entropy on the clean batch plus ``beta`` times the KL
  divergence of the prediction on ``steps`` steps of KL-ascent from the clean one; a lower ``beta`` keeps
  more clean accuracy.
- ``purified``: fine-tune on images passed through ``purifier`` (fresh latent noise per batch).

With ``purifier`` set, the adversarial recipes attack *through* that purifier (the frozen TorchScript
artifact; gradients averaged over ``eot`` draws of its latent noise, EOT) and train the classifier on the
purified adversarial images: the classifier learns what an adaptive attacker sends to the pipeline.

With ``joint``, a fresh purifier (the paper's ``ConvAutoencoder``: ``latent_dim``, ``noise_std``) is trained
together with the classifier, as one network, under the same adversarial objective: the attack and the
loss both run through purifier -> classifier, with a fresh draw of the latent noise on every forward pass.
The loss adds ``recon_weight`` times the purifier's MSE from every training input to its clean image, the
paper's denoising objective: it keeps the purifier an image purifier, and it is what lets a fresh encoder
learn at all, since at initialisation its latent signal is about 1e-3 of ``noise_std=1``.
The purifier's checkpoint is written beside the classifier's, as ``<out>-purifier.ckpt``.

The adversarial recipes keep the epoch with the best accuracy under a 10-step attack (through the purifier, if
any) on ``val_n`` validation images, the guard against catastrophic overfitting: fixed-step PGD or, with
``select_by="apgd"``, APGD (a model can learn to resist fixed-step PGD without growing robust to APGD);
``purified`` keeps the best purified-clean validation accuracy. The checkpoint keeps every epoch's figure as
``history``. Adam with a one-cycle (cyclic) learning rate, as train-classifier.
"""

from __future__ import annotations

import argparse
import copy
import logging
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from advattacks import APGD, EOTPGD, FGSMRS, TRADES
from .. import data
from ..artifacts import sha256
from ..jit import load
from ..models import VGG16, AutoencoderConfig, ConvAutoencoder, VGGConfig
from ..runs import (load_checkpoint, pick_device, predict, resume, save_checkpoint, timed,
                    train_epoch, training_loader)
from ..steps import Training, add_precision, from_args
from .batches import Recipe, Transformed, trades_loss, with_reconstruction

log = logging.getLogger(__name__)
TRAIN_EPS = data.THREAT_EPS


@dataclass(frozen=True)
class Config(Training):
    inputs: str = "fgsm-rs"  # fgsm-rs, pgd, apgd, trades or purified
    eps: float | None = None  # None: TRAIN_EPS of the dataset
    alpha_ratio: float = 1.25  # FGSM-RS step as a multiple of eps (Wong: 1.25)
    steps: int = 10  # PGD steps (step 2.5 eps / steps), APGD or TRADES steps
    beta: float = 1.0  # TRADES weight of the robustness (KL) term
    eps_ramp: float = 0.0  # fraction of the training steps over which eps grows linearly from 0
    purifier: str | None = None  # TorchScript purifier in artifacts/<dataset>/ to train through (or on)
    joint: bool = False  # train a fresh purifier together with the classifier
    latent_dim: int = 64  # the joint purifier's latent size
    noise_std: float = 1.0  # the joint purifier's latent noise
    recon_weight: float = 1.0  # weight of the joint purifier's MSE to the clean images
    eot: int = 1  # purifier noise draws per attack gradient
    init: str | None = None  # checkpoint in the run directory to start from
    width: float = 0.25  # VGG width when not starting from init
    epochs: int = 3
    batch_size: int = 64
    lr: float = 2e-3  # one-cycle peak learning rate (Adam)
    seed: int = 0
    val_n: int = 500  # validation images of the selection metric
    select_by: str = "pgd"  # the selection metric's 10-step attack: pgd or apgd
    out: str = "classifier-fgsm-rs.ckpt"  # checkpoint name inside the run directory

    @property
    def train_eps(self) -> float:
        return self.eps if self.eps is not None else TRAIN_EPS[self.dataset]

    @property
    def purifier_out(self) -> str:
        """The joint purifier's checkpoint name inside the run directory."""
        return f"{self.out.removesuffix('.ckpt')}-purifier.ckpt"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inputs", choices=("fgsm-rs", "pgd", "apgd", "trades", "purified"), default=Config.inputs)
    p.add_argument("--eps", type=float, default=Config.eps, help="training eps (default: 0.3 MNIST, 0.1 Fashion)")
    p.add_argument("--alpha-ratio", type=float, default=Config.alpha_ratio,
                   help="FGSM-RS step as a multiple of eps (Wong: 1.25)")
    p.add_argument("--steps", type=int, default=Config.steps,
                   help="steps of the training attack (PGD: each of 2.5 eps / steps)")
    p.add_argument("--beta", type=float, default=Config.beta, help="TRADES weight of the KL term")
    p.add_argument("--eps-ramp", type=float, default=Config.eps_ramp,
                   help="fraction of the training steps over which eps grows linearly from 0 (0: none)")
    p.add_argument("--purifier", default=Config.purifier,
                   help="TorchScript purifier in artifacts/<dataset>/: attack and train through it (purified: train on it)")
    p.add_argument("--joint", action="store_true",
                   help="train a fresh purifier jointly with the classifier (attack and loss through both)")
    p.add_argument("--latent-dim", type=int, default=Config.latent_dim, help="the joint purifier's latent size")
    p.add_argument("--noise-std", type=float, default=Config.noise_std, help="the joint purifier's latent noise")
    p.add_argument("--recon-weight", type=float, default=Config.recon_weight,
                   help="weight of the joint purifier's MSE to the clean images in the loss")
    p.add_argument("--eot", type=int, default=Config.eot, help="purifier noise draws per attack gradient")
    p.add_argument("--init", default=Config.init, help="checkpoint in the run directory to start from")
    p.add_argument("--width", type=float, default=Config.width, help="VGG width when not starting from --init")
    p.add_argument("--epochs", type=int, default=Config.epochs)
    p.add_argument("--batch-size", type=int, default=Config.batch_size)
    p.add_argument("--lr", type=float, default=Config.lr, help="one-cycle peak learning rate (Adam)")
    p.add_argument("--seed", type=int, default=Config.seed)
    add_precision(p, Config.precision)
    p.add_argument("--val-n", type=int, default=Config.val_n, help="validation images of the selection metric")
    p.add_argument("--select-by", choices=("pgd", "apgd"), default=Config.select_by,
                   help="the 10-step attack on the validation images whose accuracy picks the epoch kept")
    p.add_argument("--out", default=Config.out, help="checkpoint name inside the run directory")


def _attack(config: Config, target: nn.Module, eps: float):
    eot = config.eot if config.purifier else 1
    if config.inputs == "trades":
        return TRADES(target, eps=eps, steps=config.steps)
    if config.inputs == "apgd":
        return APGD(target, eps=eps, steps=config.steps, eot_samples=eot)
    if config.inputs == "fgsm-rs":
        if config.purifier is None:
            return FGSMRS(target, eps=eps, alpha=config.alpha_ratio * eps)
        return EOTPGD(target, eps=eps, alpha=config.alpha_ratio * eps, steps=1, eot_samples=config.eot,
                      stop_when_fooled=False)
    return EOTPGD(target, eps=eps, steps=config.steps, eot_samples=eot, stop_when_fooled=False)


def adversarial(config: Config, model: nn.Module, purifier: nn.Module | None, val, device, done: list[int],
                ramp_steps: float) -> Recipe:
    """FGSM-RS or PGD on the classifier, or on purifier -> classifier; the classifier trains on what it sees."""
    eps = config.train_eps
    target = model if purifier is None else nn.Sequential(purifier, model)
    seen = (lambda x: x) if purifier is None else purifier

    def transform(images: Tensor, labels: Tensor) -> Tensor:
        done[0] += 1
        e = eps * min(1.0, done[0] / ramp_steps) if ramp_steps else eps
        adv = _attack(config, target, e)(images, labels)
        with torch.no_grad():
            return torch.cat([seen(images), seen(adv)]) if config.inputs == "trades" else seen(adv)

    def validate() -> float:  # a 10-step attack at the training eps, through the purifier (one draw per step) if any
        val_x, val_y = (t.to(device) for t in val)
        attack = (APGD(target, eps=eps, steps=10) if config.select_by == "apgd"
                  else EOTPGD(target, eps=eps, steps=10, eot_samples=1, stop_when_fooled=False))
        adv = attack(val_x, val_y)
        torch.manual_seed(0)
        return (predict(target, adv, device=device).argmax(1).cpu() == val[1]).float().mean().item()

    through = " through the purifier" if purifier is not None or config.joint else ""
    describe = {"attack": config.inputs.upper(), "eps": eps, "eps_ramp": config.eps_ramp,
                "selection": f"val {config.select_by.upper()}-10 accuracy{through}"}
    if config.inputs == "fgsm-rs":
        describe["alpha"] = f"{config.alpha_ratio} * eps"
    else:
        alpha = "2 * eps, halved per image on stalls" if config.inputs == "apgd" else "2.5 * eps / steps"
        describe |= {"steps": config.steps, "alpha": alpha, "random_start": True}
    if config.inputs != "trades":
        return Recipe(transform, validate, describe)
    describe |= {"beta": config.beta, "loss": "CE(clean) + beta * KL(clean || adversarial)"}
    return Recipe(transform, validate, describe, trades_loss(config.beta))


def on_purified(model: nn.Module, purifier: nn.Module, val, device) -> Recipe:
    """Clean images through the purifier (fresh noise per batch); kept by purified-clean accuracy."""

    def transform(images: Tensor, labels: Tensor) -> Tensor:
        with torch.no_grad():
            return purifier(images)

    def validate() -> float:
        torch.manual_seed(0)
        val_x, val_y = val
        return (predict(model, predict(purifier, val_x, device=device), device=device).argmax(1)
                == val_y).float().mean().item()

    return Recipe(transform, validate, {"selection": "val purified-clean accuracy"})


def _model(config: Config, device) -> tuple[nn.Module, VGGConfig]:
    if config.init:
        model, init = load_checkpoint(config.run_dir / config.init, device)
        return model, VGGConfig(**init["config"])
    vgg = VGGConfig(width=config.width)
    return VGG16(vgg).to(device), vgg


def _joint_purifier(config: Config, device) -> tuple[nn.Module | None, AutoencoderConfig | None]:
    """The fresh purifier of joint training, or (None, None)."""
    if not config.joint:
        return None, None
    if config.purifier or config.inputs == "purified":
        raise ValueError("--joint trains its own purifier: it takes neither --purifier nor --inputs purified")
    ae = AutoencoderConfig(latent_dim=config.latent_dim, noise_std=config.noise_std)
    return ConvAutoencoder(ae).to(device), ae


def run(config: Config) -> None:
    device = pick_device(config.device)
    splits, loader, steps = training_loader(config)
    model, vgg = _model(config, device)
    joint, joint_config = _joint_purifier(config, device)
    trained = model if joint is None else nn.Sequential(joint, model)  # what the optimizer and the attack see
    opt = torch.optim.Adam(trained.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=config.epochs * steps)
    ckpt_path, start_epoch, best, history, spent = config.run_dir / config.out, 0, {"metric": -1.0}, [], 0.0
    ckpt = resume(ckpt_path, model, opt, sched, device) if config.resume else None
    if ckpt and ckpt.get("complete"):
        return
    if ckpt:
        if joint is not None:
            joint.load_state_dict(ckpt["purifier"]["state_dict"])
        start_epoch, best, history = ckpt["epoch"], ckpt["best"], ckpt.get("history", [])
        spent = ckpt.get("train_seconds", 0.0)

    purifier_path = config.artifact_dir / config.purifier if config.purifier else None
    purifier = load(purifier_path, device) if purifier_path else None
    val = tuple(t[: config.val_n] for t in splits["val"].tensors)
    if config.inputs == "purified":
        recipe = on_purified(model, purifier, val, device)
    else:
        recipe = adversarial(config, trained, purifier, val, device, [start_epoch * steps],
                             config.eps_ramp * config.epochs * steps)
    if joint is not None:
        recipe.loss = with_reconstruction(recipe.loss, joint, config.recon_weight)
        recipe.describe["loss"] = f"{recipe.describe.get('loss', 'CE')} + {config.recon_weight} * MSE(purifier, clean)"
    train_config = {**asdict(config), **recipe.describe, "optimizer": "Adam", "schedule": "OneCycleLR",
                    "split_seed": data.SPLIT_SEED, "purifier_sha256": sha256(purifier_path) if purifier_path else None}
    train_config = {k: str(v) if k in ("root", "workdir", "artifacts") else v for k, v in train_config.items()}
    # the joint purifier's weights travel in the classifier's checkpoint, so that one file is the state to resume
    extra = (lambda: {}) if joint is None else (lambda: {"purifier": {"config": joint_config.to_dict(),
                                                                      "state_dict": joint.state_dict()}})
    with timed(config.run_dir, f"train-{config.out.removesuffix('.ckpt')}", before=spent) as elapsed:
        for epoch in range(start_epoch, config.epochs):
            batches = Transformed(loader, recipe.transform, device, keep_images=joint is not None,
                                  precision=config.precision)
            train_epoch(trained, batches, recipe.loss, opt, device, dry_run=config.dry_run, sched=sched,
                        desc=f"{config.inputs} {config.dataset} epoch {epoch + 1}", precision=config.precision)
            metric = recipe.validate()
            log.info("epoch %d: %s %.4f", epoch + 1, recipe.describe["selection"], metric)
            history.append(round(metric, 4))
            if metric > best["metric"]:
                best = {"metric": metric, "epoch": epoch + 1, "state_dict": copy.deepcopy(trained.state_dict())}
            save_checkpoint(ckpt_path, "vgg16", vgg, model, optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                            epoch=epoch + 1, best=best, history=history, train_config=train_config,
                            train_seconds=elapsed(), **extra())
    trained.load_state_dict(best["state_dict"])
    torch.manual_seed(0)
    val_acc = (predict(trained, val[0], device=device).argmax(1) == val[1]).float().mean().item()
    summary = dict(complete=True, epoch=config.epochs, best_epoch=best["epoch"], val_accuracy=val_acc,
                   val_selection_metric=best["metric"], history=history, train_config=train_config)
    if joint is not None:
        save_checkpoint(config.run_dir / config.purifier_out, "autoencoder", joint_config, joint, **summary)
    save_checkpoint(ckpt_path, "vgg16", vgg, model, **summary)


def main(args: argparse.Namespace) -> None:
    run(from_args(Config, args))
