"""Certified training with interval bound propagation: config -> seed -> data -> model -> loop -> checkpoint.

The recipe of Shi et al. (2021), "Fast Certified Robust Training with Short Warm-up", on Gowal et al.'s (2018)
IBP training, scaled to the epochs given:

- CNN7 with BN (``models.CNN7``), Shi et al.'s IBP initialization; BN normalises the IBP box with the clean
  batch's statistics (``bounds.Bounded``);
- ``clean_epochs`` of clean training, then the training eps ramps from 0 to ``eps`` over ``ramp_epochs``,
  batch by batch, with the smoothed schedule of CROWN-IBP (a 4th-power start over the first quarter, then
  linear); the training eps sits above the test eps (Gowal et al.: 0.4 for MNIST's 0.3);
- loss ``kappa * CE(clean) + (1 - kappa) * CE(-margin lower bounds)``, ``kappa`` going from 1 to ``kappa_end``
  over the ramp (Gowal et al.; Shi et al. use ``kappa_end = 0``), plus during the ramp Shi et al.'s two
  warm-up regularizers (interval tightness and ReLU balance, ``tol``), weighted ``reg_lambda * (1 - eps_t / eps)``;
- Adam, ``lr`` decayed x0.2 at ``decay`` (fractions of the epochs; Shi et al.: 50 and 60 of 70), gradient norm
  clipped at 10.

The epoch kept is the one with the best IBP-certified accuracy at the test eps on ``val_n`` validation images,
measured in fp32 on the eval-mode model; every epoch's figure is kept as ``history``.
"""

from __future__ import annotations

import argparse
import copy
import logging
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from bounds import box, verify
from . import data
from .models import CNN7, CNN7Config, count_parameters, ibp_init
from .runs import autocast, memory_format, pick_device, resume, save_checkpoint, timed, training_loader
from .steps import Training, add_precision, from_args

log = logging.getLogger(__name__)
TRAIN_EPS = {"mnist": 0.4, "fashion-mnist": 0.13}  # a third above the test eps, as Gowal et al. train MNIST


@dataclass(frozen=True)
class Config(Training):
    eps: float | None = None  # training eps; None: TRAIN_EPS of the dataset
    width: int = 16  # CNN7 channels of the first block (Shi et al.: 64)
    linear: int = 512  # CNN7 hidden units
    input_side: int = CNN7Config.input_side  # the model's input, 28: the datasets' own images, unresized
    side: int | None = None  # CNN7's working resolution (None: the input's); below it, it resamples its input first
    epochs: int = 24
    clean_epochs: int = 1
    ramp_epochs: int = 10
    kappa_end: float = 0.5  # weight of the clean loss once the ramp ends
    reg_lambda: float = 0.5  # warm-up regularizers' weight (Shi et al.)
    tol: float = 0.5  # their tolerance
    decay: tuple[float, ...] = (0.7, 0.85)  # lr x0.2 at these fractions of the epochs
    lr: float = 5e-4
    grad_clip: float = 10.0
    batch_size: int = 256
    precision: str = "bf16"  # measured 1.2-1.4x faster than fp32 at width 16 for the same accuracy
    seed: int = 0
    val_n: int = 1000
    out: str = "certified.ckpt"

    @property
    def train_eps(self) -> float:
        return self.eps if self.eps is not None else TRAIN_EPS[self.dataset]

    @property
    def test_eps(self) -> float:
        return data.THREAT_EPS[self.dataset]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--eps", type=float, default=Config.eps, help="training eps (default: 0.4 MNIST, 0.13 Fashion)")
    p.add_argument("--width", type=int, default=Config.width, help="CNN7 channels of the first block")
    p.add_argument("--linear", type=int, default=Config.linear, help="CNN7 hidden units")
    p.add_argument("--input-side", type=int, default=Config.input_side,
                   help="the model's input resolution: 32 the shared input of the pipelines, 28 the datasets' own")
    p.add_argument("--side", type=int, default=Config.side,
                   help="working resolution: below the input's side, the network resamples its input to it first")
    p.add_argument("--epochs", type=int, default=Config.epochs)
    p.add_argument("--clean-epochs", type=int, default=Config.clean_epochs, help="epochs before the eps ramp")
    p.add_argument("--ramp-epochs", type=int, default=Config.ramp_epochs, help="epochs over which eps ramps up")
    p.add_argument("--kappa-end", type=float, default=Config.kappa_end, help="clean-loss weight after the ramp")
    p.add_argument("--reg-lambda", type=float, default=Config.reg_lambda, help="warm-up regularizers' weight")
    p.add_argument("--tol", type=float, default=Config.tol, help="warm-up regularizers' tolerance")
    p.add_argument("--decay", type=float, nargs="*", default=list(Config.decay),
                   help="fractions of the epochs at which the learning rate drops x0.2")
    p.add_argument("--lr", type=float, default=Config.lr, help="Adam learning rate")
    p.add_argument("--grad-clip", type=float, default=Config.grad_clip, help="gradient norm clipping")
    p.add_argument("--batch-size", type=int, default=Config.batch_size)
    add_precision(p, Config.precision)
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


def run(config: Config) -> None:
    device = pick_device(config.device)
    splits, loader, steps = training_loader(config, side=config.input_side)
    cnn = CNN7Config(width=config.width, linear=config.linear, side=config.side or config.input_side,
                     input_side=config.input_side)
    model = CNN7(cnn).to(device)
    ibp_init(model)
    model.to(memory_format=memory_format(config.precision))
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    milestones = [round(f * config.epochs) for f in config.decay]
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.2)
    ckpt_path, start_epoch, best, history, spent = config.run_dir / config.out, 0, {"metric": -1.0}, [], 0.0
    ckpt = resume(ckpt_path, model, opt, sched, device) if config.resume else None
    if ckpt and ckpt.get("complete"):
        return
    if ckpt:
        start_epoch, best, history, spent = ckpt["epoch"], ckpt["best"], ckpt["history"], ckpt["train_seconds"]
    log.info("CNN7 width %d: %d parameters, %d epochs in %s on %s", config.width, count_parameters(model),
             config.epochs, config.precision, device)
    val_x, val_y = (t[: config.val_n] for t in splits["val"].tensors)
    train_config = {**{k: str(v) if k in ("root", "workdir", "artifacts") else v for k, v in asdict(config).items()},
                    "method": "IBP", "train_eps": config.train_eps, "test_eps": config.test_eps,
                    "init": "IBP (Shi et al., 2021)", "optimizer": "Adam", "schedule": f"MultiStepLR x0.2 at {milestones}",
                    "selection": f"val IBP-certified accuracy at eps={config.test_eps}", "split_seed": data.SPLIT_SEED}
    ramp_steps, clean_steps = config.ramp_epochs * steps, config.clean_epochs * steps
    with timed(config.run_dir, f"train-{config.out.removesuffix('.ckpt')}", before=spent) as elapsed:
        for epoch in range(start_epoch, config.epochs):
            model.train()
            bar = tqdm(loader, total=steps, desc=f"IBP {config.dataset} epoch {epoch + 1}/{config.epochs}")
            for step, (x, y) in enumerate(bar):
                if step >= steps:
                    break
                progress = (epoch * steps + step - clean_steps) / max(ramp_steps, 1)
                fraction = ramp(progress) if progress >= 0 else 0.0
                eps = config.train_eps * fraction
                kappa = 1.0 - (1.0 - config.kappa_end) * min(max(progress, 0.0), 1.0)
                x, y = x.to(device, memory_format=memory_format(config.precision)), y.to(device)
                with autocast(config.precision, device):
                    eps_t = torch.full((len(x),), eps, device=device)
                    logits, margins, kept = model.propagate(x, eps_t, y, keep=0 < progress < 1 and eps > 1e-6)
                    loss = F.cross_entropy(logits.float(), y)
                    if eps > 0:
                        robust = F.cross_entropy(-margins.float(), y)
                        loss = kappa * loss + (1 - kappa) * robust
                    if kept:  # the warm-up regularizers, from eps 1e-6 (Shi et al.)
                        reg = warmup_regularizers(kept, box(x, eps_t)[1].float(), config.tol)
                        loss = loss + config.reg_lambda * (1 - fraction) * reg
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                opt.step()
                bar.set_postfix(loss=f"{loss.item():.3f}", eps=f"{eps:.3f}")
            sched.step()
            clean, cert = certified_accuracy(model, val_x, val_y, config.test_eps, device)
            log.info("epoch %d: val clean %.4f, IBP-certified at %.2f %.4f", epoch + 1, clean, config.test_eps, cert)
            history.append({"clean": round(clean, 4), "certified": round(cert, 4)})
            # any epoch after the ramp outranks those before it (whose certified accuracy is 0 or rising)
            ramped = epoch + 1 >= config.clean_epochs + config.ramp_epochs
            if (ramped, cert) > (best.get("ramped", False), best["metric"]):
                best = {"metric": cert, "epoch": epoch + 1, "ramped": ramped,
                        "state_dict": copy.deepcopy(model.state_dict())}
            save_checkpoint(ckpt_path, "cnn7", cnn, model, optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                            epoch=epoch + 1, best=best, history=history, train_config=train_config,
                            train_seconds=elapsed())
    model.load_state_dict(best["state_dict"])
    clean, cert = certified_accuracy(model, val_x, val_y, config.test_eps, device)
    save_checkpoint(ckpt_path, "cnn7", cnn, model, complete=True, epoch=config.epochs, best_epoch=best["epoch"],
                    val_metrics={"accuracy": clean, "certified_accuracy": cert, "eps": config.test_eps},
                    history=history, train_config=train_config)


def main(args: argparse.Namespace) -> None:
    run(from_args(Config, args))
