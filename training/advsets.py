"""Adversarial sets, generated once per (dataset, split, attack, eps, classifier) and cached.

Both attacks are deterministic given the frozen classifier, so the purifier
trains on cached pairs instead of re-attacking every epoch.  A set may use one
eps per image (``eps_range``) so that a mixed-eps set costs a single pass.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm import tqdm

from advattacks import build

from .models import INPUT_SHAPE
from .runs import record_timing

log = logging.getLogger(__name__)
FINGERPRINT_GRID = 0.1  # logit units


@dataclass(frozen=True)
class AdvSetSpec:
    """``attack='none'`` means clean images; ``eps_range=(lo, hi)`` draws eps per image."""

    attack: str = "none"
    eps: float = 0.0
    eps_range: tuple[float, float] | None = None
    alpha: float = 0.01
    steps: int = 40

    def key(self) -> str:
        if self.attack == "none":
            return "clean"
        eps = f"{self.eps_range[0]}to{self.eps_range[1]}" if self.eps_range else f"{self.eps}"
        tail = f"-a{self.alpha}-s{self.steps}" if self.attack == "pgd" else ""
        return f"{self.attack}-eps{eps}{tail}"

    def to_dict(self) -> dict:
        out = {"attack": self.attack}
        if self.attack != "none":
            out["eps"] = list(self.eps_range) if self.eps_range else self.eps
        if self.attack == "pgd":
            out.update(alpha=self.alpha, steps=self.steps, random_start=False)
        return out


def model_fingerprint(model: nn.Module, device: torch.device | str = "cpu",
                      shape: tuple[int, ...] = INPUT_SHAPE) -> str:
    """A short hash of what the model computes on a fixed probe batch, so that a cache never
    outlives the classifier it attacked.  It is the same for an eager module and its frozen
    TorchScript export (which has no state_dict, and whose saved bytes vary between saves), and
    on another CPU: the logits are hashed on a grid of ``FINGERPRINT_GRID``, far coarser than the
    float32 rounding by which those differ (about 1e-6), and far finer than the gap between two
    trained models. ``shape``: the model's input, for a model with its own."""
    probe = torch.rand(16, *shape, generator=torch.Generator().manual_seed(1234))
    with torch.no_grad():
        logits = model(probe.to(device)).cpu()
    cells = torch.round(logits / FINGERPRINT_GRID).to(torch.int64)
    return hashlib.sha256(cells.numpy().tobytes()).hexdigest()[:12]


def generate(classifier: nn.Module, images: Tensor, labels: Tensor, spec: AdvSetSpec, seed: int = 0,
             batch_size: int = 500, device: torch.device | str = "cpu", desc: str = "") -> Tensor:
    """The adversarial images for ``spec`` (CPU tensor, same shape as ``images``)."""
    if spec.attack == "none":
        return images.clone()
    if spec.eps_range:
        lo, hi = spec.eps_range
        eps_all = lo + (hi - lo) * torch.rand(len(images), generator=torch.Generator().manual_seed(seed))
    else:
        eps_all = torch.full((len(images),), spec.eps)
    out = torch.empty_like(images)
    for i in tqdm(range(0, len(images), batch_size), desc=desc or spec.key()):
        sl = slice(i, i + batch_size)
        attack = build(spec.attack, classifier, eps=eps_all[sl].to(device), alpha=spec.alpha, steps=spec.steps)
        out[sl] = attack(images[sl].to(device), labels[sl].to(device)).cpu()
    return out


def cached(cache_dir: Path, classifier: nn.Module, images: Tensor, labels: Tensor, spec: AdvSetSpec,
           tag: str, seed: int = 0, device: torch.device | str = "cpu") -> Tensor:
    """``generate`` behind a file cache keyed by split tag, size, attack and classifier weights."""
    if spec.attack == "none":
        return images
    seeded = f"-seed{seed}" if spec.eps_range else ""  # only a random eps draw depends on the seed
    path = Path(cache_dir) / f"{tag}-n{len(images)}-{spec.key()}{seeded}-{model_fingerprint(classifier, device)}.pt"
    if path.is_file():
        return torch.load(path)
    start = time.perf_counter()
    adv = generate(classifier, images, labels, spec, seed=seed, device=device, desc=f"{tag} {spec.key()}")
    # cache_dir lives in the run directory: generation time is a training step of its own
    record_timing(Path(cache_dir).parent, f"generate {tag} n={len(images)} {spec.key()}", time.perf_counter() - start)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(adv, tmp)
    tmp.replace(path)
    log.info("cached %s", path)
    return adv
