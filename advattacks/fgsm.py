"""FGSM, l-inf, one step."""

from __future__ import annotations

from torch import Tensor, nn

from .base import Attack


class FGSM(Attack):
    """Fast Gradient Sign Method, one step.

    Paper: Goodfellow, Shlens & Szegedy, 2015, "Explaining and Harnessing Adversarial Examples".
    Norm: l-inf.
    Arguments: ``eps``, the budget (a float, or one value per image; the paper this project reimplements
    uses 0.6). ``x' = clip(x + eps * sign(grad_x CE), 0, 1)``.
    Shapes: images N x C x H x W in [0, 1], labels N; returns the adversarial images, same shape.

    Example::

        adv = FGSM(classifier, eps=0.6)(images, labels)
    """

    def __init__(self, model: nn.Module, eps: float | Tensor = 0.6) -> None:
        super().__init__(model, eps)

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        step = self.eps_for(images) * self.input_grad(images, labels).sign()
        return (images + step).clamp(0.0, 1.0)
