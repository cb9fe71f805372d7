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


def _target(name: str, goal: str, measured: float | None, met: bool | None, unit: str = " ms") -> Target:
    return Target(name, goal, _fmt(measured, unit=unit), met if measured is not None else None)


def above(summary: dict, engine: str, base: str, concurrency: int, key: str) -> float | None:
    """``engine``'s figure ``key`` less ``base``'s at ``concurrency``, when the run measured both."""
    one, other = point(summary, engine, concurrency), point(summary, base, concurrency)
    return one[key] - other[key] if one and other else None


REDIS_ONE, REDIS_WORKERS = "ours-redis", "ours-redis-workers"  # the variants ``make bench`` names


def ceiling_share(summary: dict) -> tuple[float | None, float]:
    """Ours at ``COMPARE_AT`` clients as a share of the in-process ceiling (None: not measured), and the
    ceiling in images/s."""
    most, ours_at = 1000 / ceiling(summary)["per_image_ms"], point(summary, "ours", COMPARE_AT)
    return (ours_at["throughput_rps"] / most if ours_at else None), most


def redis_workers_scale(summary: dict) -> tuple[float | None, dict | None, dict | None]:
    """At the highest concurrency: one worker a core with Redis over one worker in process, in throughput, and
    the two points."""
    top = max(summary["config"]["concurrency"])
    ours_top, spread = point(summary, "ours", top), point(summary, REDIS_WORKERS, top)
    return _ratio(spread and spread["throughput_rps"], ours_top and ours_top["throughput_rps"]), spread, ours_top


def targets(summary: dict) -> list[Target]:
    ours1, ours_at = point(summary, "ours", 1), point(summary, "ours", COMPARE_AT)
    share, most = ceiling_share(summary)
    top = max(summary["config"]["concurrency"])
    outside = cpu_outside_model_ms(summary, COMPARE_AT)
    over_floor = above(summary, "ours", "floor-model", 1, "p50_ms")
    redis_cost = above(summary, REDIS_ONE, "ours", 1, "p50_ms")
    scale, spread, ours_top = redis_workers_scale(summary)
    out = [
        _target("/defended-classify p95 at concurrency 1", "≤ 8 ms", ours1 and ours1["p95_ms"],
                bool(ours1) and ours1["p95_ms"] <= PAPER_MS),
        _target("p50 above the floor with the model (floor-model) at concurrency 1", "≤ 0.3 ms", over_floor,
                over_floor is not None and over_floor <= 0.3),
        _target(f"server CPU per request outside the model at c={COMPARE_AT} (less in-process decode + defend CPU "
                f"at the same mean batch, {(ours_at or {}).get('mean_batch_size') or 0:.1f})", "≤ 0.45 core-ms",
                outside, outside is not None and outside <= 0.45, " core-ms"),
        _target(f"throughput at c={COMPARE_AT} / in-process defend throughput at the largest batch "
                f"({summary['config']['max_batch_size']}, {most:.0f} images/s)", "≥ 65 %", share and 100 * share,
                share is not None and share >= 0.65, " %"),
        _target("Redis's cost at concurrency 1: p50 of one worker with Redis less in process", "≤ 0.1 ms",
                redis_cost, redis_cost is not None and redis_cost <= 0.1),
        Target(
            f"throughput at c={top}, one worker a core with Redis / one worker in process, p95 no higher",
            "≥ 1.25×, p95 ≤ in process",
            f"{_fmt(scale, unit='×')}, p95 {_fmt(spread and spread['p95_ms'])} vs "
            f"{_fmt(ours_top and ours_top['p95_ms'])} ms",
            scale >= 1.25 and spread["p95_ms"] <= ours_top["p95_ms"] if scale is not None else None,
        ),
    ]
    for concurrency in summary["config"]["concurrency"]:
        ours, peer = point(summary, "ours", concurrency), best_peer(summary, concurrency)
        ratio = _ratio(ours and ours["throughput_rps"], peer and peer[1]["throughput_rps"])
        out.append(Target(
            f"throughput at c={concurrency}, ours / the best peer, with p95 no worse",
            "≥ 1.3×, p95 ≤ the peer's",
            f"{_fmt(ratio, unit='×')} of {peer[0] if peer else '–'}, p95 {_fmt(ours and ours['p95_ms'])} vs "
            f"{_fmt(peer and peer[1]['p95_ms'])} ms",
            ratio >= 1.3 and ours["p95_ms"] <= peer[1]["p95_ms"] if ratio is not None else None,
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
    """The figures the pages' sentences quote, derived from the run (``docs/performance-figures.json``): every
    engine's points by concurrency, and the targets' own figures."""
    lead, peers = {}, {}
    for concurrency in summary["config"]["concurrency"]:
        ours, peer = point(summary, "ours", concurrency), best_peer(summary, concurrency)
        if ours and peer:
            lead[str(concurrency)] = ours["throughput_rps"] / peer[1]["throughput_rps"]
            peers[str(concurrency)] = peer[0]
    keys = ("throughput_rps", "p50_ms", "p95_ms", "server_cpu_ms_per_request", "mean_batch_size")
    points = {
        engine: {str(p["concurrency"]): {k: p[k] for k in keys if p.get(k) is not None} for p in found["points"]
                 if p.get("n")}
        for engine, found in summary["engines"].items()
    }
    share, most = ceiling_share(summary)
    return {
        "paper_ms": PAPER_MS, "cpu": summary["machine"]["cpu"], "logical_cpus": summary["machine"]["logical_cpus"],
        "lead_over_best_peer": lead, "best_peer": peers, "points": points,
        "p50_over_floor_model_ms_at_1": above(summary, "ours", "floor-model", 1, "p50_ms"),
        "redis_p50_cost_ms_at_1": above(summary, REDIS_ONE, "ours", 1, "p50_ms"),
        "redis_workers_over_one_at_top": redis_workers_scale(summary)[0],
        f"cpu_outside_model_ms_at_{COMPARE_AT}": cpu_outside_model_ms(summary, COMPARE_AT),
        "ceiling_images_per_s": most,
        "inprocess_p50_ms": {case: found["p50_ms"] for case, found in summary["inprocess"].items()},
        f"ceiling_share_at_{COMPARE_AT}": share,
    }
