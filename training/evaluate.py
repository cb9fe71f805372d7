"""``evaluate``: measure the *exported artifacts* and record the metrics in their manifest.

Clean, attacked and defended test accuracy (Wilson 95% CIs) at the paper's
table points, eps sweeps, the reconstruction-error detector, and in-process
latency of purifier + classifier.  Attacks are oblivious (against the
classifier alone), as in the paper.  Then docs/results.md is rendered.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
import os
import time
from pathlib import Path

import torch

from render import results

from . import data, figures
from .advsets import AdvSetSpec, cached
from .artifacts import load_artifacts
from .jit import load
from .runs import pick_device, predict, run_dir
from .steps import Common, from_args
from .stats import rate

log = logging.getLogger(__name__)
TABLE = {"fgsm-0.6": AdvSetSpec("fgsm", eps=0.6), "pgd-0.15": AdvSetSpec("pgd", eps=0.15)}
FGSM_SWEEP = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
PGD_SWEEP = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]


@dataclass(frozen=True)
class Config(Common):
    pgd_sweep_n: int = 1000  # test images per PGD sweep point
    docs: Path = Path("docs")  # where results.md and figures go
    seed: int = 0  # seed of the purifiers' latent noise
    latency_only: bool = False  # re-measure only the latency (e.g. on a quiet machine), keep the other metrics


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pgd-sweep-n", type=int, default=Config.pgd_sweep_n, help="test images per PGD sweep point")
    p.add_argument("--docs", type=Path, default=Config.docs, help="where results.md and figures go")
    p.add_argument("--seed", type=int, default=Config.seed, help="seed of the purifiers' latent noise")
    p.add_argument("--latency-only", action="store_true",
                   help="re-measure only the latency (e.g. on a quiet machine) and keep the other metrics")


class Evaluator:
    """Accuracy of the classifier, alone or behind a purifier, with the latent noise seeded."""

    def __init__(self, models: dict, manifest: dict, device, seed: int) -> None:
        classifier = manifest["classifier"]
        self.models, self.classifier, self.device, self.seed = models, models[classifier], device, seed
        self.purifiers = [n for n, m in manifest["models"].items() if m.get("kind", "classifier" if n == classifier
                                                                           else "purifier") == "purifier"]

    def purify(self, name: str, images: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(self.seed)
        return predict(self.models[name], images, device=self.device)

    def labels(self, images: torch.Tensor) -> torch.Tensor:
        return predict(self.classifier, images, device=self.device).argmax(1)

    def row(self, images: torch.Tensor, labels: torch.Tensor) -> dict:
        out = {"undefended": rate(self.labels(images) == labels)}
        for name in self.purifiers:
            out[name] = rate(self.labels(self.purify(name, images)) == labels)
        return out

    def flagged(self, name: str, images: torch.Tensor, threshold: float) -> torch.Tensor:
        purified = self.purify(name, images)
        mse = ((purified - images) ** 2).flatten(1).mean(1)
        return (self.labels(purified) != self.labels(images)) | (mse > threshold)


@torch.inference_mode()
def latency(classifier, purifier, images: torch.Tensor, device, singles: int = 300) -> dict:
    """Purifier + classifier forward time: amortized per image at batch 64 (the paper's
    method) over all ``images``, and single-image p50/p95 at batch 1."""
    images = images.to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(10):
        classifier(purifier(images[:64]))
    sync()
    start = time.perf_counter()
    for i in range(0, len(images), 64):
        classifier(purifier(images[i:i + 64]))
    sync()
    per_image = (time.perf_counter() - start) / len(images)
    times = []
    for i in range(min(singles, len(images))):
        t = time.perf_counter()
        classifier(purifier(images[i:i + 1])).cpu()
        times.append(time.perf_counter() - t)
    times = torch.tensor(times)
    return {"device": str(device), "threads": torch.get_num_threads(), "images": len(images),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "batch64_ms_per_image": round(per_image * 1e3, 3),
            "batch1_p50_ms": round(times.quantile(0.5).item() * 1e3, 3),
            "batch1_p95_ms": round(times.quantile(0.95).item() * 1e3, 3)}


def measure_latency(folder: Path, manifest: dict, images: torch.Tensor) -> list[dict]:
    """``latency`` of the default purifier + classifier on the CPU, and on CUDA where present."""
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    files = [folder / manifest["models"][name]["file"] for name in (manifest["classifier"], manifest["default_purifier"])]
    return [latency(*(load(f, d) for f in files), images, d) for d in devices]


def run(args: Config) -> None:
    device = pick_device(args.device)
    folder = Path(args.artifacts) / args.dataset
    manifest, models = load_artifacts(folder, device)
    cache = run_dir(args.workdir, args.dataset) / "adv"
    x, y = data.load_splits(args.root, args.dataset, limit=args.limit)["test"].tensors
    if args.latency_only:
        manifest["metrics"]["latency"] = measure_latency(folder, manifest, x)
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        results.write(Path(args.artifacts), args.docs / "results.md")
        return
    ev = Evaluator(models, manifest, device, args.seed)
    classifier = models[manifest["classifier"]]

    def attacked(spec: AdvSetSpec, n: int | None = None) -> torch.Tensor:
        return cached(cache, classifier, x[:n], y[:n], spec, tag="test0", device=device)

    metrics = {"test_images": len(x), "seed": args.seed, "clean": ev.row(x, y)}
    metrics["table"] = {name: ev.row(attacked(spec), y) for name, spec in TABLE.items()}
    n_pgd = min(args.pgd_sweep_n, len(x))
    metrics["sweep"] = {
        "fgsm": {"n": len(x), "points": {str(e): ev.row(attacked(AdvSetSpec("fgsm", eps=e)), y)
                                         for e in FGSM_SWEEP}},
        "pgd": {"n": n_pgd, "alpha": 0.01, "steps": 40,
                "points": {str(e): ev.row(attacked(AdvSetSpec("pgd", eps=e), n_pgd), y[:n_pgd])
                           for e in PGD_SWEEP}},
    }
    default = manifest["default_purifier"]
    threshold = manifest["models"][default]["detector"]["reconstruction_mse_threshold"]
    metrics["detector"] = {
        "purifier": default, "threshold": threshold,
        "rule": "flag if the defended and undefended labels differ or the reconstruction MSE exceeds the threshold",
        "false_positive_rate_clean": rate(ev.flagged(default, x, threshold)),
        "detection_rate": {name: rate(ev.flagged(default, attacked(spec), threshold)) for name, spec in TABLE.items()},
    }
    metrics["latency"] = measure_latency(folder, manifest, x)
    manifest["metrics"] = metrics
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("%s: metrics written to %s", args.dataset, folder / "manifest.json")

    figures.sweep(manifest, args.docs / "figures" / f"{args.dataset}-sweep.png")
    fgsm, pgd = attacked(TABLE["fgsm-0.6"])[:8], attacked(TABLE["pgd-0.15"])[:8]
    figures.reconstructions(
        {"clean": x[:8], "purified clean": ev.purify(default, x[:8]),
         "FGSM 0.6": fgsm, "purified FGSM": ev.purify(default, fgsm),
         "PGD 0.15": pgd, "purified PGD": ev.purify(default, pgd)},
        args.docs / "figures" / f"{args.dataset}-reconstructions.png")
    results.write(Path(args.artifacts), args.docs / "results.md")


def main(args: argparse.Namespace) -> None:
    run(from_args(Config, args))
