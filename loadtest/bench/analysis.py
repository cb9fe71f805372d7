"""Ratios and targets, derived from a benchmark's JSON alone (so a re-run regenerates every figure)."""

from dataclasses import dataclass

PAPER_MS = 8.0  # the paper's amortized AE+VGG time per image (batch 64, Tesla T4)
COMPARE_AT = 32  # the concurrency of the LitServe comparison


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    measured: str
    met: bool | None  # None: not measured in this run


def point(summary: dict, engine: str, concurrency: int) -> dict | None:
    for entry in summary["engines"].get(engine, {}).get("points", []):
        if entry["concurrency"] == concurrency and entry.get("n"):
            return entry
    return None


def peak(summary: dict, engine: str) -> dict | None:
    points = [p for p in summary["engines"].get(engine, {}).get("points", []) if p.get("n")]
    return max(points, key=lambda p: p["throughput_rps"], default=None)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def ratios(summary: dict) -> dict[str, float | None]:
    ours1, lit = point(summary, "ours", 1), point(summary, "litserve", COMPARE_AT)
    ours_at, ours_peak, batch1_peak = (
        point(summary, "ours", COMPARE_AT),
        peak(summary, "ours"),
        peak(summary, "ours-batch1"),
    )
    return {
        f"ours / LitServe throughput at c={COMPARE_AT}": _ratio(
            ours_at and ours_at["throughput_rps"], lit and lit["throughput_rps"]
        ),
        f"ours / LitServe p95 at c={COMPARE_AT}": _ratio(ours_at and ours_at["p95_ms"], lit and lit["p95_ms"]),
        "batching / max_batch_size=1, peak throughput": _ratio(
            ours_peak and ours_peak["throughput_rps"], batch1_peak and batch1_peak["throughput_rps"]
        ),
        "ours p50 at c=1 / the paper's 8 ms": _ratio(ours1 and ours1["p50_ms"], PAPER_MS),
        "ours p95 at c=1 / the paper's 8 ms": _ratio(ours1 and ours1["p95_ms"], PAPER_MS),
        **variant_ratios(summary),
    }


def variants(summary: dict) -> list[str]:
    """The ``ours-<name>`` engines that differ from ``ours`` by a setting (``--variant``)."""
    return [f"ours-{name}" for name in summary["config"].get("variants", {}) if f"ours-{name}" in summary["engines"]]


def variant_ratios(summary: dict) -> dict[str, float | None]:
    """Per variant and concurrency: ours over the variant, in throughput and in server CPU per request."""
    out = {}
    for key in variants(summary):
        for concurrency in summary["config"]["concurrency"]:
            ours, other = point(summary, "ours", concurrency), point(summary, key, concurrency)
            out[f"ours / {key} throughput at c={concurrency}"] = _ratio(
                ours and ours["throughput_rps"], other and other["throughput_rps"]
            )
            out[f"ours / {key} server CPU per request at c={concurrency}"] = _ratio(
                ours and ours["server_cpu_ms_per_request"], other and other["server_cpu_ms_per_request"]
            )
    return out


def http_overhead_ms(summary: dict) -> float | None:
    """p50 over HTTP at c=1 minus the in-process AE+VGG p50 at batch 1 (the performance target's definition)."""
    ours1 = point(summary, "ours", 1)
    return ours1["p50_ms"] - summary["inprocess"]["ae_vgg_batch1"]["p50_ms"] if ours1 else None


def _fmt(value: float | None, spec: str = ".2f", unit: str = "") -> str:
    return "not measured" if value is None else f"{value:{spec}}{unit}"


def targets(summary: dict) -> list[Target]:
    ours1, lit = point(summary, "ours", 1), point(summary, "litserve", COMPARE_AT)
    ours_at = point(summary, "ours", COMPARE_AT)
    speedup = ratios(summary)["batching / max_batch_size=1, peak throughput"]
    overhead = http_overhead_ms(summary)
    vs_lit = _ratio(ours_at and ours_at["throughput_rps"], lit and lit["throughput_rps"])
    p95_ok = ours_at["p95_ms"] <= lit["p95_ms"] if ours_at and lit else None
    return [
        Target(
            "/defended-classify p95 at concurrency 1",
            "≤ 8 ms",
            _fmt(ours1 and ours1["p95_ms"], unit=" ms"),
            ours1["p95_ms"] <= PAPER_MS if ours1 else None,
        ),
        Target(
            "HTTP overhead at concurrency 1 (p50 − in-process AE+VGG p50, batch 1)",
            "≤ 1 ms",
            _fmt(overhead, unit=" ms"),
            overhead <= 1.0 if overhead is not None else None,
        ),
        Target(
            "peak throughput, batching / max_batch_size=1",
            "≥ 3×",
            _fmt(speedup, unit="×"),
            speedup >= 3.0 if speedup is not None else None,
        ),
        Target(
            f"throughput at c={COMPARE_AT}, ours / LitServe, with p95 no worse",
            "≥ 1.5×, p95 ≤ LitServe's",
            f"{_fmt(vs_lit, unit='×')}, p95 {_fmt(ours_at and ours_at['p95_ms'])} vs {_fmt(lit and lit['p95_ms'])} ms",
            (vs_lit >= 1.5 and p95_ok) if vs_lit is not None and p95_ok is not None else None,
        ),
    ]
