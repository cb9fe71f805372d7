"""Certified training with interval bound propagation: config -> seed -> data -> model -> loop -> checkpoint.

The tuned IBP recipe of CTBench (Mao et al., 2024; ``scripts/examples/mnist/0.3/train_ibp.sh``), which reaches
98.5% clean and 93.8% certified on MNIST at eps 0.3 with CNN7 width 64 in 70 epochs. Each of its choices is an
option whose default is CTBench's value:

- CNN7 with BN (``models.CNN7``), Shi et al.'s (2021) IBP initialization; in training BN normalises the IBP box
  with the clean batch's statistics (``bounds.Bounded``);
- the training eps is the test eps (``eps``); it ramps from 0 over ``ramp_epochs`` after ``clean_epochs``,
  batch by batch, with CROWN-IBP's smoothed schedule (a 4th-power start over the first quarter, then linear);
- loss ``(1 - w) CE(clean) + w CE(-margin lower bounds)`` with a fixed robust weight ``w`` (``robust_weight``,
  0.7); with ``robust_ramp`` the weight instead rises from 0 to ``w`` with the eps ramp (Gowal et al.'s kappa);
- plus ``l1`` times the sum of |W| over every conv and linear weight, and during the ramp Shi et al.'s two
  warm-up regularizers (interval tightness and ReLU balance, ``tol``), weighted ``reg_lambda * (1 - eps_t / eps)``;
- Adam, ``lr`` x0.2 at the epochs ``lr_milestones``, gradient norm clipped at 10, batch 256;
- with ``pop_bn_stats``, after every epoch BN's statistics are reset to the population's (the exact mean and
  variance over the training set, not a moving average): the bounds certify with those.

The precision (``auto``) is the faster of fp32 and bf16 autocast for one training step, timed on the machine at
hand; the choice and the CPU are kept in each epoch's history, and a resumed run chooses again.
The epoch kept is the one with the best IBP-certified accuracy at the test eps on ``val_n`` validation images,
measured in fp32 on the eval-mode model; every epoch's figure is kept as ``history``.
"""

from __future__ import annotations

import argparse
import copy
import logging
from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from bounds import box, verify
from . import data
from .models import CNN7, CNN7Config, count_parameters, ibp_init
from .runs import (autocast, device_name, memory_format, pick_device, pick_precision, resume, save_checkpoint, timed,
                   training_loader)
from .steps import Training, add_precision, from_args

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config(Training):
    eps: float | None = None  # training eps; None: the dataset's test eps (CTBench)
    width: int = 32  # CNN7 channels of the first block (CTBench and Shi et al.: 64)
    linear: int = 512  # CNN7 hidden units
    input_side: int = 28  # the model's input: the datasets' own images, unresized
    side: int | None = None  # CNN7's working resolution (None: the input's); below it, it resamples its input first
    epochs: int = 70
    clean_epochs: int = 0
    ramp_epochs: int = 20
    robust_weight: float = 0.7  # weight of the robust loss, 1 - that of the clean loss (CTBench)
    robust_ramp: bool = False  # the robust weight rises from 0 with the eps ramp instead of staying fixed
    l1: float = 2e-6  # L1 regularization of the conv and linear weights (CTBench)
    pop_bn_stats: bool = True  # BN's statistics reset to the training set's after every epoch (CTBench)
    reg_lambda: float = 0.5  # warm-up regularizers' weight (Shi et al.)
    tol: float = 0.5  # their tolerance
    lr_milestones: tuple[int, ...] = (50, 60)  # lr x0.2 at these epochs
    lr: float = 5e-4
    grad_clip: float = 10.0
    batch_size: int = 256
    precision: str = "auto"  # the faster on this machine, timed (bf16 pays only with AMX)
    seed: int = 0
    val_n: int = 1000
    out: str = "certified.ckpt"

    @property
    def train_eps(self) -> float:
        return self.eps if self.eps is not None else self.test_eps

    @property
    def test_eps(self) -> float:
        return data.THREAT_EPS[self.dataset]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--eps", type=float, default=Config.eps, help="training eps (default: the test eps)")
    p.add_argument("--width", type=int, default=Config.width, help="CNN7 channels of the first block")
    p.add_argument("--linear", type=int, default=Config.linear, help="CNN7 hidden units")
    p.add_argument("--input-side", type=int, default=Config.input_side,
                   help="the model's input resolution: 32 the shared input of the pipelines, 28 the datasets' own")
    p.add_argument("--side", type=int, default=Config.side,
                   help="working resolution: below the input's side, the network resamples its input to it first")
    p.add_argument("--epochs", type=int, default=Config.epochs)
    p.add_argument("--clean-epochs", type=int, default=Config.clean_epochs, help="epochs before the eps ramp")
    p.add_argument("--ramp-epochs", type=int, default=Config.ramp_epochs, help="epochs over which eps ramps up")
    p.add_argument("--robust-weight", type=float, default=Config.robust_weight,
                   help="weight of the robust loss (the clean loss gets the rest)")
    p.add_argument("--robust-ramp", action=argparse.BooleanOptionalAction, default=Config.robust_ramp,
                   help="raise the robust weight from 0 with the eps ramp instead of keeping it fixed")
    p.add_argument("--l1", type=float, default=Config.l1, help="L1 regularization of the conv and linear weights")
    p.add_argument("--pop-bn-stats", action=argparse.BooleanOptionalAction, default=Config.pop_bn_stats,
                   help="reset BN's statistics to the training set's after every epoch")
    p.add_argument("--reg-lambda", type=float, default=Config.reg_lambda, help="warm-up regularizers' weight")
    p.add_argument("--tol", type=float, default=Config.tol, help="warm-up regularizers' tolerance")
    p.add_argument("--lr-milestones", type=int, nargs="*", default=list(Config.lr_milestones),
                   help="epochs at which the learning rate drops x0.2")
    p.add_argument("--lr", type=float, default=Config.lr, help="Adam learning rate")
    p.add_argument("--grad-clip", type=float, default=Config.grad_clip, help="gradient norm clipping")
    p.add_argument("--batch-size", type=int, default=Config.batch_size)
    add_precision(p, Config.precision, auto=True)
    p.add_argument("--seed", type=int, default=Config.seed)
    p.add_argument("--val-n", type=int, default=Config.val_n, help="validation images of the selection metric")
    p.add_argument("--out", default=Config.out, help="checkpoint name inside the run directory")


def ramp(progress: float) -> float:
    """CROWN-IBP's smoothed schedule on [0, 1]: ``a (t / 0.25)^4`` up to 0.25, then linear to 1; ``a`` makes
    the slope continuous."""
    t, mid, beta = min(max(progress, 0.0), 1.0), 0.25, 4.0
    a = mid / (beta * (1 - mid) + mid)
    return a * (t / mid) ** beta if t < mid else a + (1 - a) * (t - mid) / (1 - mid)


def warmup_regularizers(kept: list[tuple[Tensor, Tensor]], input_rad: Tensor, tol: float) -> Tensor:
    """Shi et al.'s tightness and ReLU-balance losses over the boxes entering each ReLU."""
    tight0 = input_rad.mean()
    total = input_rad.new_zeros(())
    for mid, rad in kept:
        mid, rad = mid.float(), rad.float()
        tightness = F.relu(tol - tight0 / rad.mean().clamp(min=1e-12)) / tol
        active, inactive = (mid - rad > 0).float(), (mid + rad < 0).float()
        centred = (mid - mid.mean()) ** 2
        total = total + tightness
        if active.sum() == 0 or inactive.sum() == 0:  # no ratio to balance (Shi et al. skip a non-finite term)
            continue
        mean_ratio = (mid * active).mean() / -(mid * inactive).mean()
        var_ratio = (centred * active).sum() / (centred * inactive).sum().clamp(min=1e-12)
        mean_ratio = torch.min(mean_ratio, 1 / mean_ratio.clamp(min=1e-12))
        var_ratio = torch.min(var_ratio, 1 / var_ratio.clamp(min=1e-12))
        total = total + (F.relu(tol - mean_ratio) + F.relu(tol - var_ratio)) / tol
    return total / max(len(kept), 1)


def certified_accuracy(model: CNN7, images: Tensor, labels: Tensor, eps: float, device) -> tuple[float, float]:
    """(clean accuracy, IBP-certified accuracy at ``eps``) of the eval-mode model, in fp32."""
    model.eval()
    correct, certified = verify(model, images, labels, eps, device)
    return correct.float().mean().item(), certified.float().mean().item()


def schedule(config: Config, epoch: int, step: int, steps: int) -> tuple[float, float, float]:
    """The training eps, the robust loss's weight and the warm-up regularizers' weight at this step."""
    progress = (epoch * steps + step - config.clean_epochs * steps) / max(config.ramp_epochs * steps, 1)
    fraction = ramp(progress) if progress >= 0 else 0.0
    eps = config.train_eps * fraction
    weight = config.robust_weight * (min(max(progress, 0.0), 1.0) if config.robust_ramp else 1.0)
    warming = 0 < progress < 1 and eps > 1e-6  # the warm-up regularizers, from eps 1e-6 (Shi et al.)
    return eps, weight, config.reg_lambda * (1 - fraction) if warming else 0.0


def loss_at(model: CNN7, x: Tensor, y: Tensor, config: Config, eps: float, weight: float, reg: float) -> Tensor:
    """``(1 - weight) CE(clean) + weight CE(-margin lower bounds)`` (the two agree at eps 0), plus the warm-up
    regularizers weighted ``reg`` and the weights' L1 norm weighted ``config.l1``."""
    eps_t = torch.full((len(x),), eps, device=x.device)
    logits, margins, kept = model.propagate(x, eps_t, y, keep=reg > 0)
    loss = F.cross_entropy(logits.float(), y)
    if eps > 0:
        loss = (1 - weight) * loss + weight * F.cross_entropy(-margins.float(), y)
    if kept:
        loss = loss + reg * warmup_regularizers(kept, box(x, eps_t)[1].float(), config.tol)
    if config.l1 > 0:
        weights = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        loss = loss + config.l1 * sum(w.abs().sum() for w in weights)
    return loss


def step_timer(model: CNN7, batch: tuple[Tensor, Tensor], config: Config, device) -> Callable[[str], None]:
    """One training step mid-ramp (bounds, regularizers, backward) on a copy of ``model``, in a given precision."""
    x, y = batch[0].to(device), batch[1].to(device)

    def step(precision: str) -> None:
        trial = copy.deepcopy(model).train().to(memory_format=memory_format(precision))
        with autocast(precision, device):
            loss = loss_at(trial, x.contiguous(memory_format=memory_format(precision)), y, config,
                           config.train_eps / 2, config.robust_weight, config.reg_lambda / 2)
        loss.backward()
    return step


@torch.no_grad()
def population_bn_stats(model: nn.Module, loader, steps: int, device) -> None:
    """Every BN's statistics reset to the mean of the batch statistics over the training set (momentum None: a
    cumulative average, not a moving one), in fp32."""
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    for step, (x, _) in enumerate(loader):
        if step >= steps:
            break
        model(x.to(device))
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum


def train_epoch(model: CNN7, opt, loader, steps: int, epoch: int, config: Config, precision: str, device) -> None:
    model.train()
    bar = tqdm(loader, total=steps, desc=f"IBP {config.dataset} epoch {epoch + 1}/{config.epochs}")
    for step, (x, y) in enumerate(bar):
        if step >= steps:
            break
        eps, weight, reg = schedule(config, epoch, step, steps)
        x, y = x.to(device, memory_format=memory_format(precision)), y.to(device)
        with autocast(precision, device):
            loss = loss_at(model, x, y, config, eps, weight, reg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", eps=f"{eps:.3f}")
    if config.pop_bn_stats:
        population_bn_stats(model, loader, steps, device)


PATH_OPTIONS = ("root", "workdir", "artifacts")  # recorded as strings
# options that say where and how a run executes, not what it trains: a resume may change them
RUN_OPTIONS = frozenset(PATH_OPTIONS + ("device", "dry_run", "resume", "precision"))


def recipe(config: Config) -> dict:
    """The run's options and what follows from them, as its checkpoint records them."""
    given = {k: str(v) if k in PATH_OPTIONS else v for k, v in asdict(config).items()}
    return {**given, "method": "IBP", "train_eps": config.train_eps, "test_eps": config.test_eps,
            "init": "IBP (Shi et al., 2021)", "optimizer": "Adam",
            "schedule": f"MultiStepLR x0.2 at epochs {list(config.lr_milestones)}",
            "selection": f"val IBP-certified accuracy at eps={config.test_eps}", "split_seed": data.SPLIT_SEED}


def check_resumable(saved: dict, now: dict) -> None:
    """Refuse to resume a run with a recipe other than the one its checkpoint trained with (options either side
    lacks, from an older version, are not compared): its history would describe epochs it did not train."""
    def plain(value):
        return list(value) if isinstance(value, tuple) else value

    changed = sorted(k for k in saved.keys() & now.keys() - RUN_OPTIONS if plain(saved[k]) != plain(now[k]))
    if changed:
        raise SystemExit("--resume with another recipe than the checkpoint's: " + ", ".join(
            f"{k} {saved[k]!r} -> {now[k]!r}" for k in changed) + " (start a new --out, or pass the same options)")


def run(config: Config) -> None:
    device = pick_device(config.device)
    splits, loader, steps = training_loader(config, side=config.input_side)
    cnn = CNN7Config(width=config.width, linear=config.linear, side=config.side or config.input_side,
                     input_side=config.input_side)
    model = CNN7(cnn).to(device)
    ibp_init(model)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(config.lr_milestones), gamma=0.2)
    ckpt_path, start_epoch, best, history, spent = config.run_dir / config.out, 0, {"metric": -1.0}, [], 0.0
    ckpt = resume(ckpt_path, model, opt, sched, device) if config.resume else None
    if ckpt and ckpt.get("complete"):
        return
    if ckpt:
        check_resumable(ckpt["train_config"], recipe(config))
        start_epoch, best, history, spent = ckpt["epoch"], ckpt["best"], ckpt["history"], ckpt["train_seconds"]
    precision, timings = pick_precision(config.precision, step_timer(model, next(iter(loader)), config, device))
    machine = device_name(device)
    log.info("CNN7 width %d: %d parameters, %d epochs in %s on %s (%s; one step: %s)", config.width,
             count_parameters(model), config.epochs, precision, machine, device, timings or "as asked")
    model.to(memory_format=memory_format(precision))
    val_x, val_y = (t[: config.val_n] for t in splits["val"].tensors)
    with timed(config.run_dir, f"train-{config.out.removesuffix('.ckpt')}", before=spent) as elapsed:
        for epoch in range(start_epoch, config.epochs):
            began = elapsed()
            train_epoch(model, opt, loader, steps, epoch, config, precision, device)
            sched.step()
            clean, cert = certified_accuracy(model, val_x, val_y, config.test_eps, device)
            log.info("epoch %d: val clean %.4f, IBP-certified at %.2f %.4f", epoch + 1, clean, config.test_eps, cert)
            history.append({"clean": round(clean, 4), "certified": round(cert, 4), "precision": precision,
                            "machine": machine, "step_seconds": timings, "seconds": round(elapsed() - began, 1)})
            # any epoch after the ramp outranks those before it (whose certified accuracy is 0 or rising)
            ramped = epoch + 1 >= config.clean_epochs + config.ramp_epochs
            if (ramped, cert) > (best.get("ramped", False), best["metric"]):
                best = {"metric": cert, "epoch": epoch + 1, "ramped": ramped,
                        "state_dict": copy.deepcopy(model.state_dict())}
            save_checkpoint(ckpt_path, "cnn7", cnn, model, optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                            epoch=epoch + 1, best=best, history=history, train_config=recipe(config),
                            train_seconds=elapsed())
    model.load_state_dict(best["state_dict"])
    clean, cert = certified_accuracy(model, val_x, val_y, config.test_eps, device)
    save_checkpoint(ckpt_path, "cnn7", cnn, model, complete=True, epoch=config.epochs, best_epoch=best["epoch"],
                    val_metrics={"accuracy": clean, "certified_accuracy": cert, "eps": config.test_eps},
                    history=history, train_config=recipe(config))


def main(args: argparse.Namespace) -> None:
    run(from_args(Config, args))
