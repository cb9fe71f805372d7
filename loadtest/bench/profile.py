"""py-spy on a running server: raw collapsed stacks, summarized per thread and for frames we reason about."""

import collections
import re
import shutil
import subprocess
import sys
from pathlib import Path

# Frames whose inclusive share of a thread's samples explains where a request's time goes.
FRAMES_OF_INTEREST = {
    "solve_dependencies": "FastAPI dependency resolution (incl. reading and decoding the body)",
    "read_body": "reading the body",
    "Guard.charge": "the client's budget",
    "Guard.screen": "the query-attack detector",
    "Guard._screen_queued": "the query-attack detector, beside the model",
    "Batcher.submit": "queueing and awaiting the batch",
    "run_in_threadpool": "hand-off to the thread pool (image decoding)",
    "decode_image": "PNG decoding",
    "serialize_response": "response validation and JSON",
    "Module._call_impl": "TorchScript forward passes",
    "RequestResponseCycle.send": "writing the response",
    "NativeTelemetry.enabled": "FastAPI's per-request OpenTelemetry check",
    "RequestMetricsMiddleware.__call__": "the request-metrics middleware and everything inside it",
    "_record_request": "recording the request's metrics",
}
# Each sample of the event loop goes to one stage of a request: that of the innermost frame named here (a name,
# or a class for all its methods), else ``LOOP`` or ``OTHER``.
STAGES = {
    "HTTP: uvicorn parsing requests, writing responses": (
        "HttpToolsProtocol",
        "RequestResponseCycle.run_asgi",
        "RequestResponseCycle.send",
        "RequestResponseCycle.receive",
    ),
    "framework: middleware, routing, parameters": (
        "FastAPI.__call__", "model_request", "ModelRequest", "admit", "solve_dependencies",
        "request_params_to_args", "request_response", "get_request_handler", "wrap_app_handling_exceptions",
        "run_endpoint_function", "APIRouter", "_IncludedRouter",
    ),
    "parse: body and content type": ("read_payloads", "read_body"),
    "decode: PNG to tensor": ("decode_image", "pixel_count", "read_images"),
    "guard: budget and query-attack detector": ("Guard",),
    "queue: batching and the hand-off to the inference thread": ("Batcher",),
    "encode: results to JSON": ("Endpoint.answer", "serialize_response"),
    "metrics": ("_record_request", "PrometheusObserver"),
}
STAGE_OF = {frame: stage for stage, frames in STAGES.items() for frame in frames}
OTHER = "the rest: asyncio, the garbage collector, ..."
# Samples in the event loop's own frame: uvloop's C code (callbacks, sockets) and its waits for I/O, which py-spy
# cannot tell apart; the thread's measured CPU time is what bounds them.
LOOP = "uvloop: its C code and its idle waits"
RATE_HZ = 250
_LOCATION = re.compile(r" \((?:.*?site-packages/|.*?/)?([^()]*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


def record(pid: int, seconds: int, out: Path) -> subprocess.Popen | None:
    """Start sampling ``pid`` (and its subprocesses) at 250 Hz for ``seconds``; None when py-spy is missing."""
    binary = py_spy()
    if binary is None:
        return None
    command = [binary, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(RATE_HZ)]
    command += ["--format", "raw", "--output", str(out), "--threads", "--subprocesses", "--nonblocking"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _thread(frame: str) -> str:
    """``thread (123): MainThread`` -> ``MainThread``; numbered pool threads share one name."""
    name = frame.split(": ", 1)[-1]
    return re.sub(r"[_ ]?\d+$", "", name)


def _stage(names: list[str]) -> str:
    """The stage of a sample, from its frames' names (outermost first)."""
    for name in reversed(names):
        stage = STAGE_OF.get(name) or STAGE_OF.get(name.split(".", 1)[0])
        if stage is not None:
            return stage
    return LOOP if names and names[-1] == "Runner.run" else OTHER


def summarize(raw: Path, seconds: float, top: int = 8) -> dict:
    """Per thread: how busy it was (non-idle samples over the samples ``seconds`` hold), share of all samples,
    top self frames, the inclusive share of each frame of interest, and the share of each stage."""
    samples: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    inclusive: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    stages: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    totals: collections.Counter = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if len(frames) < 2 or not count.isdigit():
            continue
        while frames and not frames[0].startswith("thread ("):  # --subprocesses puts "process ..." first
            frames = frames[1:]
        if len(frames) < 2:
            continue
        thread, n = _thread(frames[0]), int(count)
        totals[thread] += n
        samples[thread][_LOCATION.sub(r" (\1)", frames[-1])] += n
        for name in {name for name in FRAMES_OF_INTEREST for frame in frames[1:] if frame.startswith(name + " ")}:
            inclusive[thread][name] += n
        stages[thread][_stage([frame.split(" (", 1)[0] for frame in frames[1:]])] += n
    everything = sum(totals.values()) or 1
    return {
        thread: {
            "busy": round(n / (RATE_HZ * seconds), 3),
            "share": round(n / everything, 3),
            "top_self": [[frame, round(k / n, 3)] for frame, k in samples[thread].most_common(top)],
            "inclusive": {
                name: round(inclusive[thread][name] / n, 3) for name in FRAMES_OF_INTEREST if inclusive[thread][name]
            },
            "stages": {stage: round(k / n, 4) for stage, k in stages[thread].most_common()},
        }
        for thread, n in totals.most_common(4)
    }
