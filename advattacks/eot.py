"""EOT-PGD: PGD whose gradient is averaged over draws of a stochastic model (adaptive attack)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Attack


class EOTPGD(Attack):
    """PGD with Expectation over Transformation, for randomized defenses (an adaptive attack).

    Paper: Athalye, Carlini & Wagner, 2018, "Obfuscated Gradients Give a False Sense of Security"; the PGD
    of Madry et al., 2018.
    Norm: l-inf.
    Arguments: ``eps`` budget; ``alpha`` step (None: ``2.5 * eps / steps``); ``steps``; ``eot_samples``, the
    draws of the model's randomness (here: the purifier's latent noise) each gradient is averaged over;
    ``random_start``; ``restarts`` from new starts on the images not yet fooled; ``stop_when_fooled``
    freezes an image once all draws of a step misclassify it (it saves most of the cost once an attack
    succeeds). Each step follows ``sign(mean_j grad_x CE(model_j(x), y))``, so the attacker differentiates
    *through* the purifier instead of ignoring it. ``steps=1, alpha=eps, random_start=False`` is EOT-FGSM.
    Shapes: images N x C x H x W in [0, 1], labels N; returns the adversarial images, same shape.

    Example::

        defended = nn.Sequential(purifier, classifier)
        adv = EOTPGD(defended, eps=0.3, steps=50, eot_samples=8)(images, labels)
    """

    def __init__(self, model: nn.Module, eps: float | Tensor = 0.3, alpha: float | None = None, steps: int = 50,
                 eot_samples: int = 8, random_start: bool = True, restarts: int = 1,
                 stop_when_fooled: bool = True) -> None:
        super().__init__(model, eps)
        self.alpha, self.steps, self.eot_samples = alpha, steps, eot_samples
        self.random_start, self.restarts, self.stop_when_fooled = random_start, restarts, stop_when_fooled

    def eot_grad(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """(mean over draws of d CE / dx, whether every draw misclassifies each image)."""
        x = images.detach().clone().requires_grad_(True)
        loss = torch.zeros((), device=images.device)
        fooled = torch.ones(len(images), dtype=torch.bool, device=images.device)
        for _ in range(self.eot_samples):
            logits = self.model(x)
            loss = loss + F.cross_entropy(logits, labels)
            fooled &= logits.argmax(1) != labels
        (grad,) = torch.autograd.grad(loss / self.eot_samples, x)
        return grad, fooled

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        n = len(images)
        eps = torch.broadcast_to(self.eps_for(images), (n, 1, 1, 1))
        if self.alpha is None:
            alpha = 2.5 * eps / self.steps
        else:
            alpha = torch.as_tensor(self.alpha, dtype=images.dtype, device=images.device)
            alpha = torch.broadcast_to(alpha.view(-1, 1, 1, 1) if alpha.ndim else alpha, (n, 1, 1, 1))
        best = images.detach().clone()
        done = torch.zeros(n, dtype=torch.bool, device=images.device)
        for _ in range(self.restarts):
            idx = (~done).nonzero().squeeze(1)
            if len(idx) == 0:
                break
            x0, y, e, a = images[idx], labels[idx], eps[idx], alpha[idx]
            adv = x0.detach().clone()
            if self.random_start:
                adv = self.uniform_start(x0, e)
            for _ in range(self.steps):
                grad, fooled = self.eot_grad(adv, y)
                if self.stop_when_fooled and fooled.any():
                    best[idx[fooled]], done[idx[fooled]] = adv[fooled], True
                    keep = ~fooled
                    idx, x0, y, e, a, adv, grad = (t[keep] for t in (idx, x0, y, e, a, adv, grad))
                    if len(idx) == 0:
                        break
                adv = self.project(adv + a * grad.sign(), x0, e)
            best[idx] = adv
        return best
