"""The certified radius of each image, to one grey level: the largest ``L / levels`` at which the bounds prove
the label (``levels`` 255: an upload is 8-bit), with no cap below the whole input range.

The search keeps a bracket per image: ``lo``, a level the bounds proved (0: none), and ``hi``, a level above it
that they did not (``levels + 1``: none yet). Each round bounds a few levels inside every open bracket in one
batched call of ``bounds``, and the search ends when every bracket is one level wide: proved at ``lo``, not at
``lo + 1``. Any proved level is a proof, whatever the rest of the round says, so the answer is sound even if the
search stops early (``rounds``); only its tightness depends on where the probes go.

Where they go: a trained model's radii cluster (most images of one dataset fall off the same cliff), so the
probes are placed by a prior, how often each radius was the answer on validation images (``radius_prior`` in the
manifest). For a bracket, they are the levels that minimise the expected log2 width of the bracket left (greedily,
one at a time); a typical image then closes in the first round. With a flat prior this is multisection.

After the first round, the bounds' margins say more than proved or not: the certified margin falls as the radius
grows, so the two levels around where the chord through the bracket's ends (their margins known) crosses zero
come first, then the prior's: an image far from its model's usual radius closes in fewer rounds.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import torch
from torch import Tensor

from .ibp import certified_margin

LEVELS = 255  # one grey level of an 8-bit image


class RadiusSearch:
    """Certificates at ``eps`` and certified radii in multiples of ``1 / levels``, ``probes`` levels a round."""

    def __init__(self, prior: Sequence[int] | None = None, probes: int = 2, rounds: int = 16,
                 levels: int = LEVELS) -> None:
        if probes < 1 or rounds < 0:
            raise ValueError(f"a radius search needs probes >= 1 and rounds >= 0, not {probes} and {rounds}")
        counts = list(prior) if prior is not None else [0] * (levels + 1)
        if len(counts) != levels + 1 or min(counts) < 0:
            raise ValueError(f"a radius prior holds {levels + 1} counts >= 0, one per level 0..{levels}")
        floor = max(sum(counts), 1) / (2 * (levels + 1))  # every level keeps some mass: no bracket is left unsplit
        self.cumulative = [0.0]
        for count in counts:
            self.cumulative.append(self.cumulative[-1] + count + floor)
        self.probes, self.rounds, self.levels = probes, rounds, levels
        self.plan = lru_cache(maxsize=8192)(self._plan)
        if rounds > 0:
            self.plan(0, levels + 1)  # the first round's probes, ready before the first request

    def _cost(self, a: int, b: int) -> float:
        """Expected log2 width left by the piece ``[a, b)`` of possible boundaries."""
        return (self.cumulative[b] - self.cumulative[a]) * math.log2(b - a)

    def _plan(self, lo: int, hi: int) -> tuple[int, ...]:
        """The levels to bound inside the bracket (``lo`` proved, ``hi`` not; the boundary lies in [lo, hi)),
        increasing; each is chosen to cut the piece it falls in where the expected width left is smallest."""
        cuts = [lo, hi]
        for _ in range(min(self.probes, hi - lo - 1)):
            best, where = math.inf, 0
            for a, b in zip(cuts, cuts[1:]):
                whole = self._cost(a, b)
                for q in range(a + 1, b):
                    gain = self._cost(a, q) + self._cost(q, b) - whole
                    if gain < best:
                        best, where = gain, q
            cuts.append(where)
            cuts.sort()
        return tuple(cuts[1:-1])

    @torch.no_grad()
    def certify(self, model, x: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
        """Logits, whether the predicted label provably holds over the ball of radius ``eps``, and the certified
        radius in levels (an int64 tensor; 0: none). ``model.bounds``: an eval-mode ``Bounded`` or its export."""
        n, levels = x.size(0), self.levels
        grid = torch.arange(levels + 1, dtype=x.dtype, device=x.device) / levels
        first = torch.tensor(self.plan(0, levels + 1) if self.rounds > 0 else (), dtype=torch.long, device=x.device)
        radii = torch.cat([torch.full([1], eps, dtype=x.dtype, device=x.device), grid[first]])
        logits, margins = model.bounds(x, radii.repeat(n), None)
        labels = logits.argmax(1)
        margin = self._margins(margins, labels, radii.numel())
        proved = margin > 0
        # a ball inside the eps ball is proved with it: every level at or below eps
        under_eps = int((grid <= eps).sum().item()) - 1
        lo = torch.where(proved[:, 0], under_eps, 0)
        hi = torch.full_like(lo, levels + 1)
        lo, hi = self._narrowed(lo, hi, first.expand(n, -1), proved[:, 1:])
        if self.rounds > 1:  # the chord's ends, for the rounds after the first: at level 0 the clean margin
            top2 = logits.topk(min(2, logits.size(1)), 1).values
            ends = Chord(torch.zeros(n, dtype=x.dtype, device=x.device), top2[:, 0] - top2[:, -1])
            ends = ends.moved(torch.cat([radii[:1] * levels, first.to(x.dtype)]).expand(n, -1), margin)
        for _ in range(self.rounds - 1):
            open_ = (hi - lo > 1).nonzero().squeeze(1)
            if open_.numel() == 0:
                break
            guess = ends.root()[open_]
            plans = [self._probes(a, b, g) for a, b, g in
                     zip(lo[open_].tolist(), hi[open_].tolist(), guess.tolist(), strict=True)]
            width = max(len(p) for p in plans)
            probes = torch.tensor([p + p[-1:] * (width - len(p)) for p in plans], device=x.device)
            margin = self._margins(model.bounds(x[open_], grid[probes].flatten(), labels[open_])[1],
                                   labels[open_], width)
            lo[open_], hi[open_] = self._narrowed(lo[open_], hi[open_], probes, margin > 0)
            ends = ends.moved(probes.to(x.dtype), margin, open_)
        certified = proved[:, 0] | (grid[lo] >= eps)
        return logits, certified, lo

    def _probes(self, lo: int, hi: int, guess: float) -> tuple[int, ...]:
        """The levels to bound inside the bracket: the two around the chord's root, when the bracket has an
        unproved end whose margin is known, then the prior's; ``probes`` of them, increasing."""
        known = not math.isnan(guess)
        inside = [q for q in (math.floor(guess), math.floor(guess) + 1) if lo < q < hi] if known else []
        for q in self.plan(lo, hi):
            if q not in inside:
                inside.append(q)
        return tuple(sorted(inside[:self.probes]))

    @staticmethod
    def _margins(margins: Tensor, labels: Tensor, k: int) -> Tensor:
        """Each box's certified margin, one row per image (N x k): > 0 proves the label."""
        return certified_margin(margins, labels.repeat_interleave(k)).reshape(-1, k)

    @staticmethod
    def _narrowed(lo: Tensor, hi: Tensor, probes: Tensor, proved: Tensor) -> tuple[Tensor, Tensor]:
        """The bracket once ``probes`` (N x k levels) are bounded: the highest proved level is the new ``lo``,
        the lowest unproved one above it the new ``hi``."""
        if probes.size(1) == 0:
            return lo, hi
        lo = torch.maximum(lo, torch.where(proved, probes, 0).amax(1))
        above = ~proved & (probes > lo.unsqueeze(1))
        hi = torch.minimum(hi, torch.where(above, probes, hi.unsqueeze(1)).amin(1))
        return lo, hi


class Chord:
    """Per image, the highest level known proved and the lowest known unproved (``inf`` until one is), with
    their margins: the certified margin falls with the radius, so its root, the largest proved radius, lies
    between them, near where the chord through them crosses zero."""

    def __init__(self, at: Tensor, margin: Tensor) -> None:
        self.at = torch.stack([at, torch.full_like(at, math.inf)], 1)  # per image: the proved end, the other
        self.margin = torch.stack([margin, torch.full_like(margin, -1.0)], 1)

    def moved(self, at: Tensor, margin: Tensor, rows: Tensor | None = None) -> "Chord":
        """The ends once the levels ``at`` (rows x k) are bounded with ``margin`` (rows: every image)."""
        rows = torch.arange(at.size(0), device=at.device) if rows is None else rows
        for end in (0, 1):  # an end stays where no probe beats it
            where = torch.cat([self.at[rows, end:end + 1], at], 1)
            margins = torch.cat([self.margin[rows, end:end + 1], margin], 1)
            pick = (where.masked_fill(margins <= 0, -math.inf).argmax(1, keepdim=True) if end == 0
                    else where.masked_fill(margins > 0, math.inf).argmin(1, keepdim=True))
            self.at[rows, end] = where.gather(1, pick).squeeze(1)
            self.margin[rows, end] = margins.gather(1, pick).squeeze(1)
        return self

    def root(self) -> Tensor:
        """Where the chord crosses zero (``nan`` without a known unproved end)."""
        (lo, hi), (lo_margin, hi_margin) = self.at.unbind(1), self.margin.unbind(1)
        return torch.where(hi.isinf(), math.nan, lo + (hi - lo) * lo_margin / (lo_margin - hi_margin))


def radius_prior(model, images: Tensor, eps: float, levels: int = LEVELS, batch_size: int = 100) -> list[int]:
    """How often each level was the certified radius of ``images`` (a prior for ``RadiusSearch``)."""
    search = RadiusSearch(probes=15, rounds=2 * levels.bit_length(), levels=levels)
    counts = torch.zeros(levels + 1, dtype=torch.long)
    for i in range(0, len(images), batch_size):
        radius = search.certify(model, images[i:i + batch_size], eps)[2]
        counts += torch.bincount(radius.cpu(), minlength=levels + 1)
    return counts.tolist()
