"""The attack base: owns model mode, gradients, per-image eps, the random start and the projection."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Attack:
    """Base: puts the model in eval mode for the attack and restores its mode after."""

    def __init__(self, model: nn.Module, eps: float | Tensor) -> None:
        self.model = model
        self.eps = eps

    def __call__(self, images: Tensor, labels: Tensor) -> Tensor:
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.enable_grad():
                return self.forward(images, labels).detach()
        finally:
            self.model.train(was_training)

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        raise NotImplementedError

    def eps_for(self, images: Tensor) -> Tensor:
        """``eps`` broadcastable against an N x C x H x W batch."""
        eps = torch.as_tensor(self.eps, dtype=images.dtype, device=images.device)
        return eps.view(-1, 1, 1, 1) if eps.ndim else eps

    def input_grad(self, images: Tensor, labels: Tensor) -> Tensor:
        """d CE(model(x), y) / dx; cross-entropy on logits (not nll on logits, as the reference code did)."""
        x = images.detach().clone().requires_grad_(True)
        loss = F.cross_entropy(self.model(x), labels)
        (grad,) = torch.autograd.grad(loss, x)
        return grad

    @staticmethod
    def uniform_start(images: Tensor, eps: Tensor) -> Tensor:
        """A uniform draw in the eps-ball around ``images``, inside [0, 1]."""
        return (images + (torch.rand_like(images) * 2 - 1) * eps).clamp(0.0, 1.0)

    @staticmethod
    def project(adv: Tensor, images: Tensor, eps: Tensor) -> Tensor:
        """``adv`` clipped to the l-inf eps-ball around ``images`` and to [0, 1]."""
        return torch.min(torch.max(adv, images - eps), images + eps).clamp(0.0, 1.0)
