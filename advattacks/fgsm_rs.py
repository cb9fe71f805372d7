"""FGSM with a random start: the attack of "fast" adversarial training."""

from __future__ import annotations

from torch import Tensor, nn

from .base import Attack


class FGSMRS(Attack):
    """FGSM from a uniform random start in the eps-ball (Wong, Rice & Kolter, 2020, "Fast is better
    than free"), l-inf.

    ``delta ~ U(-eps, eps)``, ``delta += alpha * sign(grad)``, projected onto the eps-ball and [0, 1].
    The paper's step is ``alpha = 1.25 * eps`` (the default when ``alpha`` is None).

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
