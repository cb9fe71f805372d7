"""The run directory: checkpoints that rebuild their model, step timings, seeding."""

from __future__ import annotations

import json
import logging
import platform
import random
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from . import data
from .models import CNN7, INPUT_SHAPE, VGG16, AutoencoderConfig, CNN7Config, ConvAutoencoder, VGGConfig

MODEL_KINDS = {"vgg16": (VGG16, VGGConfig), "autoencoder": (ConvAutoencoder, AutoencoderConfig),
               "cnn7": (CNN7, CNN7Config)}
PRECISIONS = ("fp32", "bf16")
log = logging.getLogger(__name__)


def run_dir(workdir: Path, dataset: str) -> Path:
    path = Path(workdir) / dataset
    path.mkdir(parents=True, exist_ok=True)
    return path


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def save_checkpoint(path: Path, kind: str, config, model: nn.Module, **extra) -> None:
    """Weights plus the config that rebuilds the model (nanoGPT's ``model_args``)."""
    tmp = path.with_suffix(".tmp")
    torch.save({"kind": kind, "config": config.to_dict(), "state_dict": model.state_dict(), **extra}, tmp)
    tmp.replace(path)  # never leave a half-written checkpoint behind


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the eval-mode model a checkpoint describes; returns (model, checkpoint)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} is missing; run the training step that writes it first")
    ckpt = torch.load(path, map_location=device, weights_only=False)
    module_cls, config_cls = MODEL_KINDS[ckpt["kind"]]
    model = module_cls(config_cls(**ckpt["config"])).to(device)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt


def training_loader(config, side: int = INPUT_SHAPE[1]) -> tuple[dict, DataLoader, int]:
    """Seed everything, load the splits at ``side`` x ``side``; the shuffled training loader and its steps per epoch
    (1 on a dry run)."""
    seed_everything(config.seed)
    splits = data.load_splits(config.root, config.dataset, limit=config.limit, side=side)
    loader = DataLoader(splits["train"], batch_size=config.batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(config.seed))
    return splits, loader, 1 if config.dry_run else len(loader)


def resume(path: Path, model: nn.Module, opt, sched, device) -> dict | None:
    """The per-epoch checkpoint a resumed run continues from, with the model, optimizer and schedule restored
    from it; None if there is none. A finished run's checkpoint comes back as it is (``complete``)."""
    if not Path(path).is_file():
        return None
    _, ckpt = load_checkpoint(path, device)
    if not ckpt.get("complete"):
        model.load_state_dict(ckpt["state_dict"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        log.info("resuming %s at epoch %d", path, ckpt["epoch"])
    return ckpt


def read_timings(run: Path) -> dict[str, float]:
    """``<run>/timings.json``: wall seconds per training step ({} before the first)."""
    path = Path(run) / "timings.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def record_timing(run: Path, step: str, seconds: float) -> None:
    """Wall time of a training step, merged into ``<run>/timings.json`` for the manifest."""
    path = Path(run) / "timings.json"
    timings = read_timings(run)
    timings[step] = round(seconds, 1)
    path.write_text(json.dumps(timings, indent=2))


@contextmanager
def timed(run: Path, step: str, before: float = 0.0):
    """Record the wall time of a training step, counting ``before`` seconds it ran before a resume; yields the
    step's seconds so far, for its checkpoints to carry over to the next resume."""
    start = time.perf_counter()
    yield lambda: before + time.perf_counter() - start
    record_timing(run, step, before + time.perf_counter() - start)


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 500,
            device: torch.device | str = "cpu") -> torch.Tensor:
    """Batched forward pass returning CPU outputs."""
    outs = [model(images[i:i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(outs)


def autocast(precision: str, device: torch.device | str):
    """The training precision's context: bf16 autocast on the device's type, or nothing for fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16")


def pick_precision(precision: str, step: Callable[[str], None]) -> tuple[str, dict[str, float]]:
    """``precision`` as asked, or for ``auto`` the faster of fp32 and bf16 for ``step(precision)`` on this machine
    (bf16 autocast pays with AMX and on tensor cores; on AVX2 alone it runs several times slower than fp32). Each
    is run once to warm up, then timed once. Returns the precision and the seconds per step measured."""
    if precision != "auto":
        return precision, {}
    seconds = {}
    for name in PRECISIONS:
        step(name)
        start = time.perf_counter()
        step(name)
        seconds[name] = round(time.perf_counter() - start, 3)
    return min(seconds, key=seconds.__getitem__), seconds


def device_name(device: torch.device | str) -> str:
    """The GPU's name, or the CPU's model name from /proc/cpuinfo, with "AMX" where it has AMX-BF16."""
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                platform.machine())
    return f"{name}, AMX" if "amx_bf16" in info else name


def memory_format(precision: str) -> torch.memory_format:
    """channels_last where bf16 autocast runs (the pair measured faster on AMX CPUs and tensor cores)."""
    return torch.channels_last if precision == "bf16" else torch.contiguous_format


def train_epoch(model: nn.Module, loader, loss_fn, opt, device, desc: str, dry_run: bool = False,
                sched=None, precision: str = "fp32") -> None:
    """One pass over ``loader`` of ``(input, *targets)`` batches, minimizing ``loss_fn(model(input), *targets)``
    with the forward pass in ``precision``; only the first batch with ``dry_run``."""
    model.train()
    model.to(memory_format=memory_format(precision))
    steps = 1 if dry_run else len(loader)
    bar = tqdm(loader, total=steps, desc=desc)
    for step, (inputs, *targets) in enumerate(bar):
        if step >= steps:
            break
        with autocast(precision, device):
            fmt = memory_format(precision) if inputs.dim() == 4 else torch.preserve_format
            loss = loss_fn(model(inputs.to(device, memory_format=fmt)), *(t.to(device) for t in targets))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
    model.eval()
