"""PGD, l-inf, projected sign-gradient steps."""

from __future__ import annotations

from torch import Tensor, nn

from .base import Attack


class PGD(Attack):
    """Projected Gradient Descent.

    Paper: Madry et al., 2018, "Towards Deep Learning Models Resistant to Adversarial Attacks".
    Norm: l-inf.
    Arguments: ``eps`` budget; ``alpha`` step; ``steps``; ``random_start`` (uniform in the eps-ball).
    Steps of ``alpha * sign(grad)``, projected onto the eps-ball *and* onto [0, 1] (the reference code
    skipped the latter). Defaults are the purifier paper's: eps=0.3, alpha=0.01, 40 steps, no random start.
    Shapes: images N x C x H x W in [0, 1], labels N; returns the adversarial images, same shape.

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
            adv = self.uniform_start(images, eps)
        for _ in range(self.steps):
            adv = self.project(adv + self.alpha * self.input_grad(adv, labels).sign(), images, eps)
        return adv
