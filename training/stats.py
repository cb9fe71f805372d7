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


def paired_difference(hits: str, reference: str, z: float = Z95) -> tuple[float, float, float]:
    """Accuracy of ``hits`` minus that of ``reference`` on the same images ('1'/'0' per image), with a Wald
    95% CI for paired proportions: only the images on which the two disagree move it."""
    n = len(hits)
    gained = sum(a == "1" and b == "0" for a, b in zip(hits, reference))
    lost = sum(a == "0" and b == "1" for a, b in zip(hits, reference))
    diff = (gained - lost) / n
    half = z * math.sqrt(max(gained + lost - (gained - lost) ** 2 / n, 0.0)) / n
    return diff, diff - half, diff + half
