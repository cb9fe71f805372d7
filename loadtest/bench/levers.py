"""The "Levers" section of docs/performance.md: what was tried to make serving faster, each with its figure."""

from loadtest.bench import analysis
from loadtest.bench.prose import inprocess_ms


def _profile_share(summary: dict, frame: str) -> float | None:
    """The inclusive share of ``frame`` in the event loop's samples, from the first profiled point."""
    for engine in summary["engines"].values():
        for point in engine["points"]:
            loop = point.get("profile", {}).get("MainThread")
            if loop:
                return loop["inclusive"].get(frame, 0.0)
    return None


def _serving_levers(summary: dict) -> list[str]:
    """The HTTP side: event loop, decoding, the run's variants, serialization."""
    packages = summary["machine"].get("packages", {})
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
    return [
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
    ]


def _model_levers(summary: dict) -> list[str]:
    """The model side: parallel branches, fusing, dependencies, threads, other runtimes."""
    glue = inprocess_ms(summary, "defend_serial_batch1") - inprocess_ms(summary, "defend_forwards_batch1")
    return [
            (
                "- **The two branches of `defend` in parallel** (`PURIFIER_PARALLEL_DEFEND`, on by default): the raw "
                "images are classified on a second thread while the purifier and the classifier on the purified "
                f"images run. In-process at batch 1: {inprocess_ms(summary, 'defend_serial_batch1'):.2f} → "
                f"{inprocess_ms(summary, 'defend_batch1'):.2f} ms; at batch 64: "
                f"{summary['inprocess']['defend_serial_batch64']['p50_ms']:.1f} → "
                f"{summary['inprocess']['defend_batch64']['p50_ms']:.1f} ms. Over HTTP, against the `serial-defend` "
                "variant when the run has it (ratios above)."
            ),
            (
                f"- **One fused TorchScript module for AE + VGG**: at most the Python around the forward passes, "
                f"{glue:.2f} ms of the {inprocess_ms(summary, 'defend_serial_batch1'):.2f} ms of serial `defend` at batch 1. "
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
                "(measured below, under Settings). More uvicorn worker processes (`PURIFIER_WORKERS`) each hold a "
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


def levers(summary: dict) -> str:
    return "\n".join(["## Levers", "", *_serving_levers(summary), *_model_levers(summary)])
