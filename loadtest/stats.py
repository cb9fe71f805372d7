"""Exact percentiles of client-side timings (numpy's linear interpolation), in milliseconds."""

from collections.abc import Sequence

import numpy as np

PERCENTILES = (50, 95, 99)


def percentile(values_ms: Sequence[float], q: float) -> float:
    if not len(values_ms):
        raise ValueError("no timings to take a percentile of")
    return float(np.percentile(np.asarray(values_ms, dtype=np.float64), q))


def summarize(values_ms: Sequence[float]) -> dict[str, float]:
    """Count, mean, p50/p95/p99 and max; percentiles are exact, not Locust's rounded buckets."""
    array = np.asarray(values_ms, dtype=np.float64)
    if not array.size:
        return {"n": 0}
    points = np.percentile(array, PERCENTILES)
    return {
        "n": int(array.size),
        "mean_ms": float(array.mean()),
        **{f"p{q}_ms": float(value) for q, value in zip(PERCENTILES, points, strict=True)},
        "max_ms": float(array.max()),
    }


def quantile_curve(values_ms: Sequence[float], points: int = 201) -> list[float]:
    """The latency at ``points`` evenly spaced quantiles from 0 to 1: enough to redraw the CDF."""
    if not len(values_ms):
        return []
    return [float(v) for v in np.quantile(np.asarray(values_ms, dtype=np.float64), np.linspace(0, 1, points))]
