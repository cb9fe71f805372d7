"""APGD, l-inf: PGD with momentum and a per-image step size that halves when the loss stops rising."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Attack

MOMENTUM = 0.75  # weight of the new step against the last one (the reference's alpha)
RHO = 0.75  # a window in which the loss rose on fewer than this fraction of steps halves the step


class APGD(Attack):
    """Auto-PGD with the cross-entropy loss, as a drop-in PGD (here: the inner maximization of training).

    Paper: Croce & Hein, 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks" (Algorithm 1; the window lengths and checks follow its reference code).
    Norm: l-inf.
    Arguments: ``eps`` budget; ``steps`` (one forward-backward pass each, plus one at the start);
    ``eot_samples`` draws of a stochastic model each gradient and loss are averaged over; ``random_start``.
    The step starts at ``2 * eps``. Each image keeps its own step and its highest-loss point; at the end of a
    window (22% of the steps, then 3% shorter each time, at least 6%) an image whose loss rose on at most
    ``RHO`` of the window's steps, or whose step was not halved last time and whose best loss did not improve,
    halves its step and restarts from its best point. Unlike fixed-step PGD, which a model can learn to
    resist by its loss surface alone (a step too long for the last few moves), the step adapts per image.
    Returns, per image, the point of highest loss found (what adversarial training wants; an evaluation
    should use the reference AutoAttack, which also keeps misclassified points).
    Shapes: images N x C x H x W in [0, 1], labels N; returns the adversarial images, same shape.

    Example::

        adv = APGD(classifier, eps=0.3, steps=10)(images, labels)
    """

    def __init__(self, model: nn.Module, eps: float | Tensor = 0.3, steps: int = 100, eot_samples: int = 1,
                 random_start: bool = True) -> None:
        super().__init__(model, eps)
        self.steps, self.eot_samples, self.random_start = steps, eot_samples, random_start

    def loss_grad(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """(per-image cross-entropy, its gradient), both averaged over ``eot_samples`` draws."""
        x = images.detach().clone().requires_grad_(True)
        loss = sum(F.cross_entropy(self.model(x), labels, reduction="none") for _ in range(self.eot_samples))
        loss = loss / self.eot_samples
        (grad,) = torch.autograd.grad(loss.sum(), x)
        return loss.detach(), grad

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        n = len(images)
        eps = torch.broadcast_to(self.eps_for(images), (n, 1, 1, 1))
        adv = self.uniform_start(images, eps) if self.random_start else images.detach().clone()
        loss, grad = self.loss_grad(adv, labels)
        step = 2 * eps
        best, best_loss, best_grad = adv.clone(), loss.clone(), grad.clone()
        window, shortest, shrink = (max(int(f * self.steps), 1) for f in (0.22, 0.06, 0.03))
        rises = torch.zeros(n, device=images.device)  # steps of this window on which the loss rose
        in_window, halved_last = 0, torch.ones(n, dtype=torch.bool, device=images.device)
        best_at_check, prev = best_loss.clone(), adv
        for i in range(self.steps):
            moved = self.project(adv + step * grad.sign(), images, eps)
            if i:  # momentum from the second step on
                moved = self.project(adv + MOMENTUM * (moved - adv) + (1 - MOMENTUM) * (adv - prev), images, eps)
            prev, adv = adv, moved
            new_loss, grad = self.loss_grad(adv, labels)
            rises += (new_loss > loss).float()
            loss = new_loss
            better = loss > best_loss
            best[better], best_loss[better], best_grad[better] = adv[better], loss[better], grad[better]
            in_window += 1
            if in_window == window:
                halve = (rises <= RHO * window) | (~halved_last & (best_at_check >= best_loss))
                step[halve] /= 2
                adv[halve], grad[halve] = best[halve], best_grad[halve]
                halved_last, best_at_check = halve, best_loss.clone()
                rises.zero_()
                in_window, window = 0, max(window - shrink, shortest)
        return best
