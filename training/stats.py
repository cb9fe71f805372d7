"""Accuracy with a Wilson 95% confidence interval."""

from __future__ import annotations

import math

import torch

Z95 = 1.959963984540054


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (well-behaved near 0 and 1)."""
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def rate(hits: torch.Tensor) -> dict:
    """A boolean tensor -> {accuracy, correct, n, ci95}, JSON-ready."""
    correct, n = int(hits.sum()), hits.numel()
    lo, hi = wilson(correct, n)
    return {"accuracy": round(correct / n, 4) if n else 0.0, "correct": correct, "n": n,
            "ci95": [round(lo, 4), round(hi, 4)]}
