"""``python -m loadtest.bench.widths``: what a wider classifier costs to serve, measured side by side.

The VGG-16 of every pipeline, at each width, exported the way training exports it (scripted and frozen)
and loaded the way the service loads it (``PURIFIER_*`` settings: device, threads, classifier
optimization), is timed at batch 1 (a request at concurrency 1) and at batch 64 (per image), the widths
interleaved in rounds so that a drift in the machine's speed moves them alike. The weights are
untrained: dense convolutions take the same time whatever their values, so the figures are those of a
trained model of that width.
"""

import argparse
import io
import time
from pathlib import Path

import torch

from loadtest.stats import summarize
from service.artifacts import load_module, resolve_device
from service.config import Settings
from training.jit import freeze, quiet_jit
from training.models import INPUT_SHAPE, VGG16, VGGConfig

WIDTHS = (0.125, 0.25, 0.5, 1.0)
REFERENCE = 0.25  # the shipped classifiers' width


def served(model: torch.nn.Module, settings: Settings) -> torch.jit.ScriptModule:
    """``model`` as the service runs it: scripted, frozen, saved, loaded and optimized by the service's loader."""
    buffer = io.BytesIO()
    with quiet_jit():
        torch.jit.save(freeze(model), buffer)
    device = resolve_device(settings.device)
    return load_module(buffer.getvalue(), Path("vgg16.pt"), device, settings.optimize_classifier)


def measure(settings: Settings, widths=WIDTHS, repeats: int = 200, rounds: int = 5) -> dict[float, dict]:
    """{width: parameters, batch-1 latency percentiles, batch-64 median per image, and both as ratios to
    the shipped width's (always measured)}."""
    torch.set_num_threads(settings.num_threads)
    device = resolve_device(settings.device)
    widths = tuple(sorted({*widths, REFERENCE}))
    eager = {w: VGG16(VGGConfig(width=w)) for w in widths}
    models = {w: served(model, settings) for w, model in eager.items()}
    batches = {b: torch.rand(b, *INPUT_SHAPE, generator=torch.Generator().manual_seed(0)).to(device) for b in (1, 64)}
    calls = {1: max(repeats // rounds, 1), 64: max(repeats // (8 * rounds), 1)}  # per round
    times: dict[tuple[float, int], list[float]] = {(w, b): [] for w in widths for b in batches}
    with torch.inference_mode():
        for (w, b) in times:  # warm every shape first: TorchScript specializes on its first runs
            for _ in range(3):
                models[w](batches[b]).tolist()
        for _ in range(rounds):
            for (w, b), samples in times.items():
                for _ in range(calls[b]):
                    started = time.perf_counter()
                    models[w](batches[b]).tolist()  # .tolist(): the result reaches the host, as a reply needs
                    samples.append((time.perf_counter() - started) * 1000)
    out = {}
    for w in widths:
        one, many = summarize(times[(w, 1)]), summarize(times[(w, 64)])
        out[w] = {"parameters": sum(p.numel() for p in eager[w].parameters()), "batch1": one,
                  "per_image_ms_at_64": many["p50_ms"] / 64}
    ref = out[REFERENCE]
    for row in out.values():
        row["ratio_batch1_p50"] = row["batch1"]["p50_ms"] / ref["batch1"]["p50_ms"]
        row["ratio_per_image_at_64"] = row["per_image_ms_at_64"] / ref["per_image_ms_at_64"]
    return out


def table(results: dict[float, dict]) -> str:
    lines = ["| width | parameters | batch 1 p50 / p95 ms | x width 0.25 | batch 64, ms per image | x width 0.25 |",
             "|---|---|---|---|---|---|"]
    for w, r in results.items():
        one = r["batch1"]
        lines.append(f"| {w} | {r['parameters'] / 1e6:.2f} M | {one['p50_ms']:.2f} / {one['p95_ms']:.2f} | "
                     f"{r['ratio_batch1_p50']:.2f} | {r['per_image_ms_at_64']:.3f} | {r['ratio_per_image_at_64']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench.widths", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=float, nargs="+", default=list(WIDTHS))
    parser.add_argument("--repeats", type=int, default=200, help="batch-1 calls per width (batch 64: an eighth)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds over the widths")
    args = parser.parse_args(argv)
    settings = Settings()
    print(f"{settings.num_threads} thread(s), device {resolve_device(settings.device)}, "
          f"optimize_for_inference {settings.optimize_classifier}")
    print(table(measure(settings, tuple(args.widths), args.repeats, args.rounds)))


if __name__ == "__main__":
    main()
