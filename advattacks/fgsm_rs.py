"""FGSM with a random start: the attack of "fast" adversarial training."""

from __future__ import annotations

from torch import Tensor, nn

from .base import Attack


class FGSMRS(Attack):
    """FGSM from a uniform random start: the attack of "fast" adversarial training.

    Paper: Wong, Rice & Kolter, 2020, "Fast is better than free: Revisiting adversarial training".
    Norm: l-inf.
    Arguments: ``eps`` budget; ``alpha`` step (None: the paper's 1.25 * eps).
    ``delta ~ U(-eps, eps)``, ``delta += alpha * sign(grad)``, projected onto the eps-ball and [0, 1].
    Shapes: images N x C x H x W in [0, 1], labels N; returns the adversarial images, same shape.

    Example::

        adv = FGSMRS(classifier, eps=0.3)(images, labels)
    """

    def __init__(self, model: nn.Module, eps: float | Tensor = 0.3, alpha: float | None = None) -> None:
        super().__init__(model, eps)
        self.alpha = alpha

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        eps = self.eps_for(images)
        alpha = 1.25 * eps if self.alpha is None else self.alpha
        start = self.uniform_start(images, eps)
        return self.project(start + alpha * self.input_grad(start, labels).sign(), images, eps)
