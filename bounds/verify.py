"""Per-image verification of a certifiable model over a dataset, in batches and in float32."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .ibp import certified_margin


@torch.no_grad()
def verify(model: nn.Module, images: Tensor, labels: Tensor, eps: float, device,
           batch_size: int = 500) -> tuple[Tensor, Tensor]:
    """Per image: whether the model classifies it correctly, and whether it provably does so over the l-inf
    ball of radius ``eps`` (``model.bounds``: an eval-mode ``Bounded`` network or its TorchScript export)."""
    correct, certified = [], []
    for i in range(0, len(images), batch_size):
        x, y = images[i:i + batch_size].to(device), labels[i:i + batch_size].to(device)
        logits, margins = model.bounds(x, torch.full((len(x),), eps, device=device), y)
        right = logits.argmax(1) == y
        correct.append(right.cpu())
        certified.append((right & (certified_margin(margins, y) > 0)).cpu())
    return torch.cat(correct), torch.cat(certified)
