"""``export``: freeze the checkpoints to TorchScript under ``artifacts/<dataset>/`` and write manifest.json.

The artifact folder is the whole contract with the service: files, sha256,
input shape, preprocessing, class names, architectures, training configs, the
detector threshold and (after ``evaluate``) the measured metrics.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import platform
from pathlib import Path

import torch
import torchvision

from . import data
from .artifacts import sha256
from .jit import freeze, load, quiet_jit
from .models import INPUT_SHAPE, count_parameters
from .runs import load_checkpoint, pick_device, predict, run_dir

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
CLASSIFIER = "classifier"
DEFAULT_PURIFIER = "autoencoder"
# artifact name -> checkpoint name in the run directory
CHECKPOINTS = {CLASSIFIER: "classifier.ckpt", DEFAULT_PURIFIER: "autoencoder.ckpt",
               "autoencoder-fgsm": "autoencoder-fgsm.ckpt", "autoencoder-pgd": "autoencoder-pgd.ckpt"}
DETECTOR_QUANTILE = 0.99  # reconstruction-error threshold: 1% of clean validation images exceed it
SAMPLES = 32  # test images bundled as PNG for the demo, the load test and the e2e tests


def check_round_trip(eager: torch.nn.Module, path: Path, atol: float = 1e-5) -> float:
    """Reload the saved file and compare with the eager model, latent noise seeded alike."""
    x = torch.rand(8, *INPUT_SHAPE, generator=torch.Generator().manual_seed(1))
    reloaded = load(path)
    with torch.no_grad():
        torch.manual_seed(0)
        want = eager.cpu().eval()(x)
        torch.manual_seed(0)
        got = reloaded(x)
    err = (want - got).abs().max().item()
    if err > atol:
        raise RuntimeError(f"{path}: TorchScript output differs from the eager model by {err:.2e}")
    return err


def calibrate_detector(autoencoder, val_images: torch.Tensor) -> dict:
    """Per-image reconstruction MSE on clean validation images -> the flagging threshold."""
    torch.manual_seed(0)
    mse = ((predict(autoencoder, val_images) - val_images) ** 2).flatten(1).mean(1)
    threshold = torch.quantile(mse, DETECTOR_QUANTILE).item()
    return {"reconstruction_mse_threshold": threshold, "quantile": DETECTOR_QUANTILE,
            "calibration": f"{DETECTOR_QUANTILE:.0%} quantile of per-image MSE on {len(val_images)} "
                           "clean validation images"}


def write_samples(root: Path, dataset: str, out_dir: Path) -> list[dict]:
    """The first test images as PNG at their native 28x28, with labels."""
    ds = data.DATASETS[dataset].tv_class(str(root), train=False, download=False)
    (out_dir / "samples").mkdir(parents=True, exist_ok=True)
    samples = []
    for i in range(SAMPLES):
        image, label = ds[i]
        name = f"samples/{i:03d}.png"
        buf = io.BytesIO()
        image.save(buf, format="PNG", optimize=True)
        (out_dir / name).write_bytes(buf.getvalue())
        samples.append({"file": name, "label": int(label)})
    return samples


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def main(args: argparse.Namespace) -> None:
    run = run_dir(args.workdir, args.dataset)
    out = Path(args.artifacts) / args.dataset
    out.mkdir(parents=True, exist_ok=True)
    spec = data.DATASETS[args.dataset]
    models, files = {}, {}
    for name, ckpt_name in CHECKPOINTS.items():
        eager, ckpt = load_checkpoint(run / ckpt_name, pick_device("cpu"))
        path = out / f"{name}.pt"
        with quiet_jit():
            torch.jit.save(freeze(eager), str(path))
        err = check_round_trip(eager, path)
        log.info("%s: round trip max |diff| %.2e", path, err)
        models[name] = {"file": path.name, "architecture": type(eager).__name__, "config": ckpt["config"],
                        "parameters": count_parameters(eager), "training": ckpt.get("train_config", {}),
                        "validation": ckpt.get("val_metrics", {"accuracy": ckpt.get("val_accuracy")})}
        if name == DEFAULT_PURIFIER:
            val_images = data.load_splits(args.root, args.dataset, limit=args.limit)["val"].tensors[0]
            models[name]["detector"] = calibrate_detector(eager, val_images)
            ablation = run / "ablation.json"
            if ablation.is_file():
                models[name]["selection"] = json.loads(ablation.read_text())
    samples = write_samples(args.root, args.dataset, out)
    for path in sorted(p for p in out.rglob("*") if p.is_file() and p.name != "manifest.json"):
        files[str(path.relative_to(out))] = {"sha256": sha256(path), "size": path.stat().st_size}
    timings = run / "timings.json"
    manifest = {
        "format_version": FORMAT_VERSION,
        "dataset": args.dataset,
        "class_names": list(spec.class_names),
        "input_shape": list(INPUT_SHAPE),
        "value_range": [0.0, 1.0],
        "preprocessing": data.PREPROCESSING,
        "classifier": CLASSIFIER,
        "default_purifier": DEFAULT_PURIFIER,
        "models": models,
        "files": files,
        "samples": samples,
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                     "python": platform.python_version()},
        "training_wall_time_s": json.loads(timings.read_text()) if timings.is_file() else {},
        "metrics": {},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("wrote %s (%d files)", out / "manifest.json", len(files))
