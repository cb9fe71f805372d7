"""HopSkipJump (Chen, Jordan & Wainwright, IEEE S&P 2020, "HopSkipJumpAttack: a query-efficient
decision-based attack"), ℓ∞, one image, through an ``Oracle``: labels only.

Start from an image the model already gets wrong (uniform noise), then repeat: binary search to the decision
boundary along the ℓ∞ projection towards ``x``; estimate the boundary's normal from the labels of random
probes around the boundary point; step along its sign (geometric step search) and search back to the
boundary. Success: a misclassified image within ``eps`` of ``x``. One change to the paper: probes and the
binary search's tolerance are no finer than the 8-bit grid the images travel on.
"""

import numpy as np

from loadtest.queryattack.oracle import Oracle, on_grid
from loadtest.queryattack.square import Outcome, Tally

GRID_STEP = 1 / 255
BATCH = 64  # probes per request (the service's largest JSON batch)


class Decisions:
    """``adversarial(images)`` through the oracle, within the query budget; refused queries count as not."""

    def __init__(self, oracle: Oracle, label: int, budget: int) -> None:
        self.oracle, self.label, self.budget, self.tally = oracle, label, budget, Tally()

    @property
    def left(self) -> int:
        return self.budget - self.tally.queries

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = on_grid(images[: max(self.left, 0)])
        out = []
        for start in range(0, len(images), BATCH):
            answers = self.oracle(images[start : start + BATCH])
            self.tally.add(answers)
            out += [a.label is not None and a.label != self.label for a in answers]
        return np.array(out, bool)


def project(x: np.ndarray, perturbed: np.ndarray, alpha: float) -> np.ndarray:
    return np.clip(perturbed, x - alpha, x + alpha)


def boundary(decide: Decisions, x: np.ndarray, adversarial: np.ndarray) -> np.ndarray:
    """The adversarial image closest to ``x`` along the ℓ∞ projection, to the grid's precision."""
    low, high = 0.0, float(np.abs(adversarial - x).max())
    while high - low > GRID_STEP / 2 and decide.left > 0:
        mid = (low + high) / 2
        if decide(project(x, adversarial, mid)[None]).any():
            high = mid
        else:
            low = mid
    return on_grid(project(x, adversarial, high))


def gradient_sign(decide: Decisions, point: np.ndarray, delta: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """The sign of the boundary normal at ``point``, estimated from ``count`` probes' labels."""
    probes = np.clip(point + delta * rng.uniform(-1, 1, size=(count, *point.shape)), 0, 1)
    labels = decide(probes)
    directions = (on_grid(probes[: len(labels)]) - point) / delta
    signs = 2.0 * labels - 1
    if 0 < labels.mean() < 1:
        signs -= signs.mean()
    return np.sign((signs[:, None, None, None] * directions).mean(axis=0)) if len(labels) else np.zeros_like(point)


def hopskipjump(
    oracle: Oracle, x: np.ndarray, label: int, eps: float, budget: int, seed: int = 0, init_evals: int = 100
) -> Outcome:
    rng, decide = np.random.default_rng(seed), Decisions(oracle, label, budget)
    start = None
    while start is None and decide.left > 0:  # uniform noise, ten at a time, until one is misclassified
        noise = rng.uniform(0, 1, size=(10, *x.shape))
        hits = decide(noise)
        start = noise[hits.argmax()] if hits.any() else None
    if start is None:
        return decide.tally.outcome(False)
    point = boundary(decide, x, start)
    distance, step = float(np.abs(point - x).max()), 1
    while distance > eps and decide.left > 0:
        delta = max(0.05 * distance, 2 * GRID_STEP)
        update = gradient_sign(decide, point, delta, int(init_evals * np.sqrt(step)), rng)
        size = distance / np.sqrt(step)
        while size >= GRID_STEP and decide.left > 0 and not decide(np.clip(point + size * update, 0, 1)[None]).any():
            size /= 2
        candidate = on_grid(np.clip(point + size * update, 0, 1))
        point = boundary(decide, x, candidate) if decide.left > 0 else point
        distance, step = float(np.abs(point - x).max()), step + 1
    return decide.tally.outcome(distance <= eps + 1e-9)
