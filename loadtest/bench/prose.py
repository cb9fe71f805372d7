"""The fixed text of docs/performance.md; every number in it comes from the benchmark JSON."""

from collections.abc import Callable

from loadtest.bench import analysis

Table = Callable[[list[str], list[list[str]]], str]

NO_GPU = (
    "none in this run, so there is no GPU column; the service runs on CUDA when present (`PURIFIER_DEVICE=auto`), "
    "and `make bench` on a CUDA host adds the GPU column"
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
- **floor**: a bare ASGI app under the same uvicorn, uvloop and httptools, answering a fixed JSON body: what
  HTTP alone costs here (`loadtest/bench/floor_app.py`).
- **floor-model**: the same bare app with the PNG decode and the `defend` call on the event loop, nothing
  else: the least any server can spend around the model.

All but the fixed-body floor run `InferenceModel.defend` with the same settings: the purifier, then the classifier on the
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


def inprocess_ms(summary: dict, case: str) -> float:
    return summary["inprocess"][case]["p50_ms"]


def _concurrency_one(summary: dict, table: Table) -> list[str]:
    ours1 = analysis.point(summary, "ours", 1)
    if not ours1:
        return []
    parts = [
        ("the paper's AE+VGG forward passes (batch 1)", inprocess_ms(summary, "ae_vgg_batch1")),
        (
            (
                "the rest of `defend`: the classifier on the raw image (undefended label, detector) on the branch "
                "thread, the hand-off to it, distances, softmax, `.tolist()`"
            ),
            inprocess_ms(summary, "defend_batch1") - inprocess_ms(summary, "ae_vgg_batch1"),
        ),
        ("PNG decoding", inprocess_ms(summary, "decode")),
        (
            "HTTP, FastAPI, the queue and the thread hand-off: the rest",
            ours1["p50_ms"] - inprocess_ms(summary, "defend_batch1") - inprocess_ms(summary, "decode"),
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
            f"The HTTP overhead (p50 over HTTP − in-process AE+VGG) is {analysis.http_overhead_ms(summary):.2f} ms, but only the last row "
            "is HTTP: the endpoint does more model work than the paper's pipeline, because it also reports the "
            "undefended prediction and the detector's verdict. On one thread that extra work would cost "
            f"{inprocess_ms(summary, 'defend_serial_batch1') - inprocess_ms(summary, 'ae_vgg_batch1'):.2f} ms instead "
            f"(`defend` serial: {inprocess_ms(summary, 'defend_serial_batch1'):.2f} ms)."
        ),
    ]


def _batching(summary: dict) -> list[str]:
    ours, single = analysis.peak(summary, "ours"), analysis.peak(summary, "ours-batch1")
    inprocess = summary["inprocess"]
    one, many = inprocess_ms(summary, "defend_serial_batch1"), inprocess["defend_serial_batch64"]["per_image_ms"]
    paper = inprocess_ms(summary, "ae_vgg_batch1") / inprocess["ae_vgg_batch64"]["per_image_ms"]
    lines = [
        "",
        (
            f"**Batching.** Batching amortizes the model only: in-process, on one thread, `defend` costs {one:.2f} ms "
            f"per image at batch 1 and {many:.2f} ms at batch 64, a {one / many:.1f}× ceiling even if HTTP cost "
            f"nothing (for the paper's AE+VGG alone, {paper:.1f}×), because the classifier runs on twice as many "
            "images as the purifier and VGG-16 gains little from batching on a CPU. Each request's HTTP work is the "
            "same with and without batching, and it shares the two cores with the model, so it pulls the measured "
            f"ratio further below that ceiling. With the branch thread, `defend` takes {inprocess_ms(summary, 'defend_batch1'):.2f} "
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


SETTINGS = """\
## Settings: how their defaults were chosen

Earlier measurements on this 2-core CPU, 1 torch thread, in-process unless stated; `make bench` keeps
measuring the ones that have a variant.

- `PURIFIER_OPTIMIZE_CLASSIFIER`: `torch.jit.optimize_for_inference` on the VGG-16s (median of 200 runs):
  batch 1 even (1.0 / 0.8 ms), batch 2 2.1 → 1.5 ms (MNIST) and 1.7 → 1.3 ms (Fashion-MNIST), batch 8
  5.9 → 3.2 and 4.8 → 3.5 ms, batch 16 11.5 → 7.0 and 8.6 → 6.0 ms. The autoencoder gains nothing (batch 1:
  0.21 → 0.31 ms, batch 32: 2.0 → 2.0 ms), so only classifiers are optimized.
- `PURIFIER_PARALLEL_DEFEND`: `defend` on MNIST, 1 torch thread per branch, median: batch 1 1.73–2.08 →
  1.38–1.41 ms, batch 8 6.9–7.3 → 4.4–4.7 ms, batch 32 21 → 12 ms. It takes a core the event loop may
  want; over HTTP it is the `serial-defend` variant.
- `PURIFIER_MAX_WAIT_MS` = 0 (greedy): sequential `/classify` p50 3.1 ms at 0 against 6.4 ms at 2 ms; at 64
  concurrent requests batches still average 4–5 images and throughput is no lower than with 1, 2 or 5 ms.
- `PURIFIER_MAX_CONCURRENT_ATTACKS` = 1: each attack uses `PURIFIER_NUM_THREADS` torch threads, so one keeps
  attacks to one core beside the inference thread. On the MNIST VGG-16: FGSM 15 ms per image, PGD 8 ms per
  step (40 steps 0.33 s, 100 steps 0.86 s).
- `PURIFIER_INLINE_DECODE_MAX_PIXELS` = 64×64: the hand-off to the thread pool costs ~120 µs of CPU per
  request, more than decoding a 28×28 PNG (~50 µs); a 64×64 RGB decode takes ~110 µs. Over HTTP against 0
  (always the pool), interleaved rounds: server CPU per request −7 % to −20 % at concurrency 32 and 64;
  latencies moved within the noise. Over HTTP it is the `pool-decode` variant.
- `PURIFIER_WORKERS` = 1: two workers (`workers2` variant) at concurrency 64 gave 1046 against 834 req/s and
  p95 82 against 172 ms, level at 32 and below; each worker holds its own models, queues, attack limit and
  `/metrics`, so replicas are the way to scale out."""
