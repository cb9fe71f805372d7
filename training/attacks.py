"""White-box l-inf attacks on a classifier, torchattacks-style: one small class each.

Pixels are in [0, 1] at every interface.  ``eps`` may be a float or a tensor of
one value per image (used to build mixed-epsilon training sets in one pass).
"""

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


class FGSM(Attack):
    """Fast Gradient Sign Method (Goodfellow et al., 2015), l-inf.

    ``x' = clip(x + eps * sign(grad_x CE), 0, 1)``; the paper's eps is 0.6.

    Example::

        adv = FGSM(classifier, eps=0.6)(images, labels)   # N x 1 x 32 x 32 in [0, 1]
    """

    def __init__(self, model: nn.Module, eps: float | Tensor = 0.6) -> None:
        super().__init__(model, eps)

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        step = self.eps_for(images) * self.input_grad(images, labels).sign()
        return (images + step).clamp(0.0, 1.0)


class PGD(Attack):
    """Projected Gradient Descent (Madry et al., 2018), l-inf.

    Steps of ``alpha * sign(grad)``, projected onto the eps-ball around the
    input *and* onto [0, 1] (the reference code skipped the latter).  The
    paper's settings: eps=0.3, alpha=0.01, 40 steps, no random start.

    Example::

        adv = PGD(classifier, eps=0.15)(images, labels)
    """

    def __init__(self, model: nn.Module, eps: float | Tensor = 0.3, alpha: float = 0.01,
                 steps: int = 40, random_start: bool = False) -> None:
        super().__init__(model, eps)
        self.alpha = alpha
        self.steps = steps
        self.random_start = random_start

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        eps = self.eps_for(images)
        adv = images.detach().clone()
        if self.random_start:
            adv = (adv + (torch.rand_like(adv) * 2 - 1) * eps).clamp(0.0, 1.0)
        for _ in range(self.steps):
            adv = adv + self.alpha * self.input_grad(adv, labels).sign()
            adv = torch.min(torch.max(adv, images - eps), images + eps).clamp(0.0, 1.0)
        return adv


ATTACKS = {"fgsm": FGSM, "pgd": PGD}
