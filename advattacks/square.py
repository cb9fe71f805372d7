"""Square Attack: score-based black-box l-inf attack by random square updates."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .base import Attack

# Fraction of n_queries (in 1/10000) after which the square's area halves (Andriushchenko et al.'s schedule).
_SCHEDULE = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


class Square(Attack):
    """Square Attack: score-based black box, untargeted, margin loss.

    Paper: Andriushchenko et al., 2020, "Square Attack: a query-efficient black-box adversarial attack via
    random search".
    Norm: l-inf.
    Arguments: ``eps`` budget; ``n_queries`` per image (including the initial one); ``p_init``, the initial
    fraction of pixels a square covers; ``seed``. Uses only output scores, one forward pass per query, so
    it needs no gradient and is blind to gradient masking. Starts from random vertical stripes of +/-eps,
    then proposes, per image and query, a random square window with a new +/-eps value and keeps it if the
    margin ``logit_y - max_{j != y} logit_j`` drops; an image stops once its margin is negative (fooled on
    that query's draw of a randomized model).
    Shapes: images N x C x H x W in [0, 1], labels N; returns the adversarial images, same shape.

    Example::

        adv = Square(defended, eps=0.3, n_queries=1000)(images, labels)
    """

    def __init__(self, model: nn.Module, eps: float | Tensor = 0.3, n_queries: int = 1000, p_init: float = 0.8,
                 seed: int = 0) -> None:
        super().__init__(model, eps)
        self.n_queries, self.p_init, self.seed = n_queries, p_init, seed

    def margin(self, images: Tensor, labels: Tensor) -> Tensor:
        with torch.no_grad():
            logits = self.model(images)
        true = logits.gather(1, labels[:, None]).squeeze(1)
        other = logits.scatter(1, labels[:, None], float("-inf")).amax(1)
        return true - other

    def side(self, query: int, height: int) -> int:
        """Side of the square at ``query``: sqrt(p * H * W), p halving along the schedule."""
        p = self.p_init / 2 ** sum(int(query / self.n_queries * 10000) > t for t in _SCHEDULE)
        return min(max(int(round(math.sqrt(p * height * height))), 1), height - 1)

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        gen = torch.Generator(device=images.device).manual_seed(self.seed)
        n, c, h, w = images.shape
        eps = torch.broadcast_to(self.eps_for(images), (n, 1, 1, 1))
        stripes = torch.randint(0, 2, (n, c, 1, w), generator=gen, device=images.device) * 2 - 1
        adv = (images + eps * stripes).clamp(0.0, 1.0)
        margin = self.margin(adv, labels)
        rows = torch.arange(h, device=images.device).view(1, 1, h, 1)
        cols = torch.arange(w, device=images.device).view(1, 1, 1, w)
        for query in range(1, self.n_queries):
            idx = (margin > 0).nonzero().squeeze(1)
            if len(idx) == 0:
                break
            x, cur, e = images[idx], adv[idx], eps[idx]
            s = self.side(query, h)
            top = torch.randint(0, h - s + 1, (len(idx), 1, 1, 1), generator=gen, device=images.device)
            left = torch.randint(0, w - s + 1, (len(idx), 1, 1, 1), generator=gen, device=images.device)
            window = (rows >= top) & (rows < top + s) & (cols >= left) & (cols < left + s)
            sign = (torch.randint(0, 2, (len(idx), c, 1, 1), generator=gen, device=images.device) * 2 - 1).to(x)
            proposal = torch.where(window, (x + e * sign).clamp(0.0, 1.0), cur)
            unchanged = ((proposal - cur).abs() < 1e-7).flatten(1).all(1).view(-1, 1, 1, 1)
            proposal = torch.where(window & unchanged, (x - e * sign).clamp(0.0, 1.0), proposal)  # always move
            new_margin = self.margin(proposal, labels[idx])
            better = new_margin < margin[idx]
            adv[idx[better]], margin[idx[better]] = proposal[better], new_margin[better]
        return adv
