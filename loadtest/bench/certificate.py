"""``python -m loadtest.bench.certificate``: what a certificate costs beside the model's own forward pass.

Each certified classifier of the bundled artifacts, loaded the way the service loads it (``PURIFIER_*``
settings: device, threads, optimization, the radius search), is timed at batch 1 (a request at concurrency 1)
and at batch 64 (per image): its forward pass alone, ``certify`` without the radius search (the clean pass and
the bounds at the pipeline's eps: the ``certified`` boolean) and ``certify`` with the service's radius search.
The three are interleaved in rounds, so a drift in the machine's speed moves them alike. Writes
``docs/certificate-cost.json``.
"""

import argparse
import json
import time
from pathlib import Path

import torch

from bounds import CERTIFICATE_METHODS
from loadtest.machine import machine
from loadtest.stats import summarize
from service.artifacts import load_module, read_manifest, resolve_device
from service.config import REPO_ROOT, Settings

OUT = REPO_ROOT / "docs" / "certificate-cost.json"


def measure(settings: Settings, repeats: int = 200, rounds: int = 5) -> dict[str, dict]:
    """{dataset/pipeline: {batch: {forward, at_eps, certify} latency summaries, certify's median over
    forward's}}."""
    torch.set_num_threads(settings.num_threads)
    device = resolve_device(settings.device)
    search = (settings.certified_radius_rounds, settings.certified_radius_grid)
    out = {}
    for folder in sorted(p for p in settings.artifacts_dir.iterdir() if (p / "manifest.json").is_file()):
        manifest = read_manifest(folder)
        for pipeline in manifest.pipelines:
            certificate = manifest.certificate(pipeline)
            if certificate is None:
                continue
            file = manifest.pipelines[pipeline].classifier
            model = load_module((folder / file).read_bytes(), folder / file, device, settings.optimize_classifier,
                                CERTIFICATE_METHODS)
            calls = {
                "forward": lambda x: model(x).tolist(),
                "at_eps": lambda x: [t.tolist() for t in model.certify(x, certificate.eps, certificate.max_radius,
                                                                       0, search[1])],
                "certify": lambda x: [t.tolist() for t in model.certify(x, certificate.eps, certificate.max_radius,
                                                                        *search)],
            }
            shape = manifest.pipeline_input_shape(pipeline)
            out[f"{manifest.dataset}/{pipeline}"] = _time(calls, shape, device, repeats, rounds)
    return out


def _time(calls: dict, shape: list[int], device, repeats: int, rounds: int) -> dict:
    batches = {b: torch.rand(b, *shape, generator=torch.Generator().manual_seed(0)).to(device) for b in (1, 64)}
    per_round = {1: max(repeats // rounds, 1), 64: max(repeats // (8 * rounds), 1)}
    times: dict[tuple[str, int], list[float]] = {(c, b): [] for b in batches for c in calls}
    with torch.inference_mode():
        for (name, b) in times:  # TorchScript specializes on its first runs
            for _ in range(3):
                calls[name](batches[b])
        for _ in range(rounds):
            for (name, b), samples in times.items():
                for _ in range(per_round[b]):
                    started = time.perf_counter()
                    calls[name](batches[b])
                    samples.append((time.perf_counter() - started) * 1000)
    result = {}
    for b in batches:
        timed = {name: summarize(times[(name, b)]) for name in calls}
        result[f"batch{b}"] = {**timed, "ratio_p50": timed["certify"]["p50_ms"] / timed["forward"]["p50_ms"]}
    return result


def table(results: dict[str, dict]) -> str:
    lines = ["| model | batch | forward | certificate at eps | with radius | radius / forward |", "|---|---|---|---|---|---|"]
    for name, by_batch in results.items():
        for batch, r in by_batch.items():
            cells = " | ".join(f"{r[k]['p50_ms']:.2f} / {r[k]['p95_ms']:.2f}" for k in ("forward", "at_eps", "certify"))
            lines.append(f"| {name} | {batch.removeprefix('batch')} | {cells} | {r['ratio_p50']:.1f} |")
    return "\n".join(lines)

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench.certificate", description=__doc__)
    parser.add_argument("--repeats", type=int, default=200, help="timed batch-1 calls per model (batch 64: 1/8)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    settings = Settings()
    results = measure(settings, args.repeats)
    search = {"rounds": settings.certified_radius_rounds, "grid": settings.certified_radius_grid}
    args.out.write_text(json.dumps({"command": "python -m loadtest.bench.certificate", "radius_search": search,
                                    "threads": settings.num_threads, "machine": machine(), "models": results},
                                   indent=1) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
