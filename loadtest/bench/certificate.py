"""``python -m loadtest.bench.certificate``: what a certificate costs beside the model's own forward pass.

Each certified classifier of the bundled artifacts, loaded the way the service loads it (``PURIFIER_*``
settings: device, threads, optimization, the radius search), is timed on the bundled test images at batch 1 (a
request at concurrency 1) and at batch 64 (per image): its forward pass alone, the certificate at the pipeline's
eps alone (the clean pass and one bound: the ``certified`` boolean) and the certificate with the service's
grey-level radius search. The three are interleaved in rounds, so a drift in the machine's speed moves them alike.
Writes ``docs/certificate-cost.json``.
"""

import argparse
import json
import time
from pathlib import Path

import torch

from bounds import RadiusSearch
from loadtest.machine import machine
from loadtest.stats import summarize
from service.artifacts import load_dataset, resolve_device
from service.config import REPO_ROOT, Settings
from service.images import decode_image
from service.inference import InferenceModel
from service.samples import load_samples

OUT = REPO_ROOT / "docs" / "certificate-cost.json"


def measure(settings: Settings, repeats: int = 200, rounds: int = 5) -> dict[str, dict]:
    """{dataset/pipeline: {batch: {forward, at_eps, certify} latency summaries, certify's median over
    forward's}}."""
    torch.set_num_threads(settings.num_threads)
    device = resolve_device(settings.device)
    out = {}
    for folder in sorted(p for p in settings.artifacts_dir.iterdir() if (p / "manifest.json").is_file()):
        artifacts = load_dataset(folder, device, settings.optimize_classifier)
        manifest, served = artifacts.manifest, InferenceModel.served(artifacts, settings)
        for pipeline in manifest.pipelines:
            certificate = manifest.certificate(pipeline)
            if certificate is None:
                continue
            name = manifest.pipeline_models(pipeline)[1]
            model, search = artifacts.classifiers[name], served.searches[name]
            at_eps = RadiusSearch(certificate.radius_prior, rounds=0)
            calls = {
                "forward": lambda x: model(x).tolist(),
                "at_eps": lambda x: [t.tolist() for t in at_eps.certify(model, x, certificate.eps)],
                "certify": lambda x: [t.tolist() for t in search.certify(model, x, certificate.eps)],
            }
            prep = artifacts.pipeline_preprocessing(pipeline)
            images = [decode_image(s.png, prep, settings.max_pixels) for s in load_samples(folder, manifest)]
            out[f"{manifest.dataset}/{pipeline}"] = _time(calls, torch.stack(images).to(device), repeats, rounds)
    return out


def _time(calls: dict, images: torch.Tensor, repeats: int, rounds: int) -> dict:
    """Batch 1 takes the images in turn (the radius search takes more rounds on some); batch 64, all of them."""
    batches = {1: list(images.split(1)), 64: [images.repeat(-(-64 // len(images)), 1, 1, 1)[:64]]}
    per_round = {1: max(repeats // rounds, 1), 64: max(repeats // (8 * rounds), 1)}
    times: dict[tuple[str, int], list[float]] = {(c, b): [] for b in batches for c in calls}
    with torch.inference_mode():
        for (name, b) in times:  # TorchScript specializes on its first runs
            for x in batches[b][:3]:
                calls[name](x)
        for _ in range(rounds):
            for (name, b), samples in times.items():
                for i in range(per_round[b]):
                    x = batches[b][i % len(batches[b])]
                    started = time.perf_counter()
                    calls[name](x)
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
    search = {"probes": settings.certified_radius_probes, "rounds": settings.certified_radius_rounds}
    args.out.write_text(json.dumps({"command": "python -m loadtest.bench.certificate", "radius_search": search,
                                    "threads": settings.num_threads, "machine": machine(), "models": results},
                                   indent=1) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
