"""Ratios and targets, derived from a benchmark's JSON alone (so a re-run regenerates every figure)."""

from dataclasses import dataclass
from math import log2, nan

from loadtest.bench.profile import LOOP

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
        "ours p50 at c=1 / the floor with the model (floor-model)": _ratio(
            ours1 and ours1["p50_ms"], (floor := point(summary, "floor-model", 1)) and floor["p50_ms"]
        ),
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
    """p50 over HTTP at c=1 minus the in-process p50 of the same work at batch 1 (decode and ``defend``)."""
    ours1, inprocess = point(summary, "ours", 1), summary["inprocess"]
    return ours1["p50_ms"] - inprocess["defend_batch1"]["p50_ms"] - inprocess["decode"]["p50_ms"] if ours1 else None


PEERS = ("litserve", "ray", "bentoml")  # the engines a user would pick instead, when the run has them


def defend_case(batch_size: int) -> str:
    """The in-process case of ``defend`` at ``batch_size``."""
    return f"defend_batch{batch_size}"


def batch_sizes(max_batch_size: int) -> list[int]:
    """The batches ``defend`` is timed at in-process besides 1 and 64: powers of two, then the largest."""
    return sorted({2**k for k in range(1, max_batch_size.bit_length()) if 2**k < max_batch_size} | {max_batch_size})


def ceiling(summary: dict) -> dict:
    """In-process ``defend`` at the servers' largest batch: the most the same work gives without HTTP."""
    return summary["inprocess"][defend_case(summary["config"]["max_batch_size"])]


def model_cpu_ms(summary: dict, batch_size: float) -> float:
    """In-process ``defend`` CPU per image at a (mean) batch size: interpolated in log2 of the batch between the
    sizes timed, which bracket every batch a server runs."""
    measured = sorted(
        (case["batch_size"], case["cpu_ms_per_image"])
        for name, case in summary["inprocess"].items()
        if name.startswith("defend_batch")
    )
    below = max(((b, c) for b, c in measured if b <= batch_size), default=measured[0])
    above = min(((b, c) for b, c in measured if b >= batch_size), default=measured[-1])
    if below[0] == above[0]:
        return below[1]
    share = (log2(batch_size) - log2(below[0])) / (log2(above[0]) - log2(below[0]))
    return below[1] + share * (above[1] - below[1])


def cpu_outside_model_ms(summary: dict, concurrency: int) -> float | None:
    """Server CPU per request at ``concurrency`` less the model's CPU for the same batches (in-process decode,
    and ``defend`` at the point's mean batch size), per request."""
    ours = point(summary, "ours", concurrency)
    if not ours or not ours.get("mean_batch_size"):
        return None
    model = model_cpu_ms(summary, ours["mean_batch_size"]) + summary["inprocess"]["decode"]["cpu_ms_per_image"]
    return ours["server_cpu_ms_per_request"] - model


def best_peer(summary: dict, concurrency: int) -> tuple[str, dict] | None:
    """The peer with the highest throughput at ``concurrency``."""
    measured = [(key, p) for key in PEERS if (p := point(summary, key, concurrency))]
    return max(measured, key=lambda kp: kp[1]["throughput_rps"], default=None)


def _fmt(value: float | None, spec: str = ".2f", unit: str = "") -> str:
    return "not measured" if value is None else f"{value:{spec}}{unit}"


def targets(summary: dict) -> list[Target]:
    ours1, most = point(summary, "ours", 1), 1000 / ceiling(summary)["per_image_ms"]
    ours_at = point(summary, "ours", COMPARE_AT)
    overhead = http_overhead_ms(summary)
    share = ours_at and ours_at["throughput_rps"] / most
    out = [
        Target(
            "/defended-classify p95 at concurrency 1",
            "≤ 8 ms",
            _fmt(ours1 and ours1["p95_ms"], unit=" ms"),
            ours1["p95_ms"] <= PAPER_MS if ours1 else None,
        ),
        Target(
            "HTTP overhead at concurrency 1 (p50 − in-process decode + defend p50, batch 1)",
            "≤ 0.75 ms",
            _fmt(overhead, unit=" ms"),
            overhead <= 0.75 if overhead is not None else None,
        ),
        Target(
            f"server CPU per request outside the model at c={COMPARE_AT} (less in-process decode + defend CPU at "
            f"the same mean batch, {(ours_at or {}).get('mean_batch_size') or 0:.1f})",
            "≤ 0.5 core-ms",
            _fmt(outside := cpu_outside_model_ms(summary, COMPARE_AT), unit=" core-ms"),
            outside <= 0.5 if outside is not None else None,
        ),
        Target(
            f"throughput at c={COMPARE_AT} / in-process defend throughput at the largest batch "
            f"({summary['config']['max_batch_size']}, {most:.0f} images/s)",
            "≥ 65 %",
            _fmt(share and 100 * share, ".0f", " %"),
            share >= 0.65 if share is not None else None,
        ),
    ]
    for concurrency in summary["config"]["concurrency"]:
        ours, peer = point(summary, "ours", concurrency), best_peer(summary, concurrency)
        ratio = _ratio(ours and ours["throughput_rps"], peer and peer[1]["throughput_rps"])
        p95_ok = ours["p95_ms"] <= peer[1]["p95_ms"] if ours and peer else None
        out.append(Target(
            f"throughput at c={concurrency}, ours / the best peer, with p95 no worse",
            "≥ 1.2×, p95 ≤ the peer's",
            f"{_fmt(ratio, unit='×')} of {peer[0] if peer else '–'}, p95 {_fmt(ours and ours['p95_ms'])} vs "
            f"{_fmt(peer and peer[1]['p95_ms'])} ms",
            (ratio >= 1.2 and p95_ok) if ratio is not None and p95_ok is not None else None,
        ))
    return out


def stage_ms(measured: dict) -> dict[str, float]:
    """A point's CPU per request (core-ms) by stage, from its profiled window: a thread ``busy`` for a fraction of
    the window spends ``busy / throughput`` core-seconds per request. The event loop's stages (but uvloop's own
    frame, where py-spy sees CPU and idle waits alike), their sum, the event loop thread's CPU time measured over
    the point's unprofiled windows, and the inference threads."""
    found = measured["profile"]
    threads, rps = found["threads"], found["throughput_rps"]
    loop = threads.get("MainThread", {"busy": 0.0, "stages": {}})
    out = {stage: 1000 * loop["busy"] * share / rps for stage, share in loop["stages"].items() if stage != LOOP}
    out["event loop: the stages above"] = sum(out.values())
    out[LOOP] = 1000 * loop["busy"] * loop["stages"].get(LOOP, 0.0) / rps
    main = measured["cpu"].get("server_main_thread_cores")
    out["event loop thread: CPU time measured"] = 1000 * main / measured["throughput_rps"] if main is not None else nan
    out["model: the inference threads (py-spy)"] = sum(
        1000 * t["busy"] / rps for name, t in threads.items() if name.startswith("inference")
    )
    return out


def quoted(summary: dict) -> dict:
    """The figures the pages' sentences quote, derived from the run (``docs/performance-figures.json``)."""
    ours1 = point(summary, "ours", 1)
    lead, peers = {}, {}
    for concurrency in summary["config"]["concurrency"]:
        ours, peer = point(summary, "ours", concurrency), best_peer(summary, concurrency)
        if ours and peer:
            lead[str(concurrency)] = ours["throughput_rps"] / peer[1]["throughput_rps"]
            peers[str(concurrency)] = peer[0]
    return {"paper_ms": PAPER_MS, "cpu": summary["machine"]["cpu"], "logical_cpus": summary["machine"]["logical_cpus"],
            "ours_p95_ms_at_1": ours1 and ours1["p95_ms"], "lead_over_best_peer": lead, "best_peer": peers}
