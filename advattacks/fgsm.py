"""FGSM, l-inf, one step."""

from __future__ import annotations

from torch import Tensor, nn

from .base import Attack


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
