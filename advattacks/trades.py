"""The TRADES inner maximization: PGD on the KL divergence from the clean prediction."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Attack


class TRADES(Attack):
    """PGD that pushes the prediction away from the clean one: the attack of TRADES training.

    Paper: Zhang et al., 2019, "Theoretically Principled Trade-off between Robustness and Accuracy".
    Norm: l-inf.
    Arguments: ``eps`` budget; ``alpha`` step (None: 2.5 * eps / steps); ``steps``.
    Starts at ``images + 0.001 * N(0, 1)`` and ascends ``KL(f(clean) || f(adv))``, projected onto the
    eps-ball and [0, 1]. The labels are not used: the target is the model's own clean prediction.
    Shapes: images N x C x H x W in [0, 1], labels N; returns the adversarial images, same shape.

    Example::

        adv = TRADES(classifier, eps=0.1, steps=5)(images, labels)
    """

    def __init__(self, model: nn.Module, eps: float | Tensor = 0.1, alpha: float | None = None,
                 steps: int = 10) -> None:
        super().__init__(model, eps)
        self.alpha = alpha
        self.steps = steps

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        eps = self.eps_for(images)
        alpha = 2.5 * eps / self.steps if self.alpha is None else self.alpha
        with torch.no_grad():
            clean = F.log_softmax(self.model(images), dim=1)
        adv = self.project(images + 0.001 * torch.randn_like(images), images, eps)
        for _ in range(self.steps):
            x = adv.detach().requires_grad_(True)
            loss = F.kl_div(F.log_softmax(self.model(x), dim=1), clean, reduction="sum", log_target=True)
            (grad,) = torch.autograd.grad(loss, x)
            adv = self.project(adv + alpha * grad.sign(), images, eps)
        return adv
