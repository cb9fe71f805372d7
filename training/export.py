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
from dataclasses import dataclass
import platform
from pathlib import Path

import torch
import torchvision

from bounds import CERTIFICATE_METHODS, Bounded
from . import data
from .artifacts import sha256
from .calibrate_radius import calibrate
from .jit import freeze, load, quiet_jit
from .models import INPUT_SHAPE, count_parameters, input_shape
from .runs import load_checkpoint, pick_device, predict, read_timings
from .steps import Common, from_args

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
CLASSIFIER = "classifier"
DEFAULT_PURIFIER = "autoencoder"
# artifact name -> checkpoint name in the run directory
CHECKPOINTS = {CLASSIFIER: "classifier.ckpt", DEFAULT_PURIFIER: "autoencoder.ckpt",
               "autoencoder-fgsm": "autoencoder-fgsm.ckpt", "autoencoder-pgd": "autoencoder-pgd.ckpt"}
DETECTOR_QUANTILE = 0.99  # reconstruction-error threshold: 1% of clean validation images exceed it
SAMPLES = 32  # test images bundled as PNG for the demo, the load test and the e2e tests
CLEAN_FLOOR = {"mnist": 0.985, "fashion-mnist": 0.85}  # the clean accuracy a default pipeline must keep
MEASURED = "measured"  # --default-pipeline measured: pick it by the rule of ``measured_default``


def check_round_trip(eager: torch.nn.Module, path: Path, tol: float = 1e-5) -> float:
    """Reload the saved file and compare with the eager model, latent noise seeded alike (and the margin
    bounds of a certifiable model): the largest difference relative to ``1 + |eager output|`` (freezing folds
    BatchNorm into the layer before it, which rounds differently where outputs are large)."""
    x = torch.rand(8, *input_shape(eager), generator=torch.Generator().manual_seed(1))
    reloaded = load(path)
    with torch.no_grad():
        torch.manual_seed(0)
        want = eager.cpu().eval()(x)
        torch.manual_seed(0)
        got = reloaded(x)
        if isinstance(eager, Bounded):
            eps, labels = torch.full((len(x),), 0.05), want.argmax(1)
            want = torch.cat([want, eager.bounds(x, eps, labels)[1]])
            got = torch.cat([got, reloaded.bounds(x, eps, labels)[1]])
    err = ((want - got).abs() / (1 + want.abs())).max().item()
    if err > tol:
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


@dataclass(frozen=True)
class Config(Common):
    add: tuple[str, ...] = ()  # NAME=CHECKPOINT: freeze one more model into the existing artifact folder
    pipeline: tuple[str, ...] = ()  # NAME=[PURIFIER.pt+]CLASSIFIER.pt: name a served pipeline in the manifest
    default_pipeline: str | None = None  # what /defended-classify runs without ?pipeline=
    method: tuple[str, ...] = ()  # NAME=TEXT: how a pipeline defends, in a few words
    description: tuple[str, ...] = ()  # NAME=TEXT: what a pipeline is, in one line
    retire: tuple[str, ...] = ()  # pipelines to stop serving; a classifier no pipeline uses leaves with its file
    calibrate_radius: bool = False  # recompute every certified model's radius prior


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--add", nargs="+", default=list(Config.add), metavar="NAME=CHECKPOINT",
                   help="freeze these run-directory checkpoints (classifiers or purifiers) into the existing artifacts, keeping the rest")
    p.add_argument("--pipeline", nargs="+", default=list(Config.pipeline), metavar="NAME=[PURIFIER.pt+]CLASSIFIER.pt",
                   help="pipelines to name in the manifest (with --add or on their own)")
    p.add_argument("--default-pipeline", default=Config.default_pipeline,
                   help=f"a pipeline's name, or '{MEASURED}': the best worst case among those that clear the "
                        "clean floor (MNIST 0.985, Fashion-MNIST 0.85)")
    p.add_argument("--method", nargs="+", default=list(Config.method), metavar="NAME=TEXT",
                   help="how a named pipeline defends, in a few words (shown by /models and the README)")
    p.add_argument("--description", nargs="+", default=list(Config.description), metavar="NAME=TEXT",
                   help="what a named pipeline is, in one line")
    p.add_argument("--retire", nargs="+", default=list(Config.retire), metavar="NAME",
                   help="pipelines to stop serving; a classifier no pipeline uses leaves with its file "
                        "(purifiers stay on /purify)")
    p.add_argument("--calibrate-radius", action="store_true",
                   help="recompute every certified model's radius prior (added ones always get one)")


def certificate_entry(training: dict, shape: tuple[int, ...]) -> dict:
    """What a certifiable model's manifest entry says of its certificate, for the service and its users."""
    return {"method": training["method"], "eps": training["test_eps"], "train_eps": training["train_eps"],
            "space": f"the model's input: {'x'.join(map(str, shape))} floats in [0, 1], after the resize",
            "methods": list(CERTIFICATE_METHODS)}


def frozen_entry(eager: torch.nn.Module, ckpt: dict, path: Path, kind: str) -> dict:
    """Save ``eager`` as frozen TorchScript at ``path``, check the round trip; its manifest entry."""
    with quiet_jit():
        torch.jit.save(freeze(eager), str(path))
    err = check_round_trip(eager, path)
    log.info("%s: round trip max |diff| %.2e", path, err)
    entry = {"file": path.name, "architecture": type(eager).__name__, "kind": kind, "config": ckpt["config"],
             "parameters": count_parameters(eager), "training": ckpt.get("train_config", {}),
             "validation": ckpt.get("val_metrics", {"accuracy": ckpt.get("val_accuracy")})}
    if input_shape(eager) != INPUT_SHAPE:  # the service resizes this model's input to its own shape
        entry["input_shape"] = list(input_shape(eager))
    if isinstance(eager, Bounded):
        entry["certificate"] = certificate_entry(entry["training"], input_shape(eager))
    return entry


def file_entries(out: Path) -> dict:
    return {str(path.relative_to(out)): {"sha256": sha256(path), "size": path.stat().st_size}
            for path in sorted(p for p in out.rglob("*") if p.is_file() and p.name != "manifest.json")}


def measured_default(manifest: dict) -> str:
    """The pipeline with the highest worst-case accuracy over AutoAttack and the suite, among those whose clean
    accuracy clears the dataset's floor; ties go to the higher clean accuracy."""
    floor = CLEAN_FLOOR[manifest["dataset"]]
    scored = [((m.get("worst_case") or {}).get("accuracy", -1.0), m["clean"]["accuracy"], name)
              for name, p in manifest["pipelines"].items() if (m := p.get("metrics") or {}).get("clean")
              and m["clean"]["accuracy"] >= floor and m.get("worst_case")]
    if not scored:
        raise ValueError(f"no pipeline of {manifest['dataset']} has a measured worst case and clean >= {floor}")
    return max(scored)[2]


def parse_pipeline(text: str) -> tuple[str, dict]:
    """``NAME=PURIFIER.pt+CLASSIFIER.pt`` or ``NAME=CLASSIFIER.pt`` -> (name, manifest entry)."""
    name, _, files = text.partition("=")
    purifier, _, classifier = files.rpartition("+")
    return name, {"purifier": purifier or None, "classifier": classifier, "metrics": {}}


def retire(manifest: dict, names: tuple[str, ...], out: Path, default: str | None) -> None:
    """Drop the pipelines ``names``, and each classifier (with its file) that no pipeline uses any more. The
    manifest's own classifier and every purifier stay: ``/classify`` and ``/purify`` serve them. ``default`` is
    the default pipeline the manifest will have."""
    for name in names:
        if name not in manifest["pipelines"]:
            raise ValueError(f"--retire {name!r}: no pipeline {name!r} in {out / 'manifest.json'}")
        if name == default:
            raise ValueError(f"--retire {name!r}: it is the default pipeline; name another default first")
        del manifest["pipelines"][name]
    used = {p["classifier"] for p in manifest["pipelines"].values()}
    for model, entry in list(manifest["models"].items()):
        if entry.get("kind") == "classifier" and model != manifest["classifier"] and entry["file"] not in used:
            del manifest["models"][model]
            (out / entry["file"]).unlink(missing_ok=True)


def extend(config: Config) -> None:
    """Add classifiers and pipelines to an exported folder; every other file and measured metric stays."""
    out = config.artifact_dir
    manifest = json.loads((out / "manifest.json").read_text())
    for item in config.add:
        name, _, ckpt_name = item.partition("=")
        eager, ckpt = load_checkpoint(config.run_dir / ckpt_name, pick_device("cpu"))
        kind = "purifier" if ckpt["kind"] == "autoencoder" else "classifier"
        manifest["models"][name] = frozen_entry(eager, ckpt, out / f"{name}.pt", kind)
    manifest.setdefault("pipelines", {})
    for item in config.pipeline:
        name, entry = parse_pipeline(item)
        old = manifest["pipelines"].get(name, {})
        same = (old.get("purifier"), old.get("classifier")) == (entry["purifier"], entry["classifier"])
        kept = old if same else {}  # a pipeline given other files loses what was measured or said of it
        manifest["pipelines"][name] = {**kept, **entry, "metrics": kept.get("metrics", {})}
    for field, items in (("method", config.method), ("description", config.description)):
        for item in items:
            name, _, text = item.partition("=")
            if name not in manifest["pipelines"]:
                raise ValueError(f"--{field} {item!r}: no pipeline {name!r} in {out / 'manifest.json'}")
            manifest["pipelines"][name][field] = text
    retire(manifest, config.retire, out, manifest.get("default_pipeline") if config.default_pipeline in (None, MEASURED)
           else config.default_pipeline)
    calibrate(manifest, out, config.root, config.limit, every=config.calibrate_radius)
    if config.default_pipeline:
        manifest["default_pipeline"] = (measured_default(manifest) if config.default_pipeline == MEASURED
                                        else config.default_pipeline)
    timings = config.run_dir / "timings.json"
    if timings.is_file():  # the added models' training time joins the earlier steps'
        manifest["training_wall_time_s"] = {**manifest.get("training_wall_time_s", {}),
                                            **json.loads(timings.read_text())}
    manifest["files"] = file_entries(out)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("updated %s (%d models, %d pipelines)", out / "manifest.json", len(manifest["models"]),
             len(manifest["pipelines"]))


def run(args: Config) -> None:
    if (args.add or args.pipeline or args.default_pipeline or args.method or args.description or args.retire
            or args.calibrate_radius):
        extend(args)
        return
    run = args.run_dir
    out = Path(args.artifacts) / args.dataset
    out.mkdir(parents=True, exist_ok=True)
    spec = data.DATASETS[args.dataset]
    models = {}
    for name, ckpt_name in CHECKPOINTS.items():
        eager, ckpt = load_checkpoint(run / ckpt_name, pick_device("cpu"))
        models[name] = frozen_entry(eager, ckpt, out / f"{name}.pt", "classifier" if name == CLASSIFIER else "purifier")
        if name == DEFAULT_PURIFIER:
            val_images = data.load_splits(args.root, args.dataset, limit=args.limit)["val"].tensors[0]
            models[name]["detector"] = calibrate_detector(eager, val_images)
            ablation = run / "ablation.json"
            if ablation.is_file():
                models[name]["selection"] = json.loads(ablation.read_text())
    samples = write_samples(args.root, args.dataset, out)
    files = file_entries(out)
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
        "pipelines": {name: {"purifier": f"{name}.pt", "classifier": f"{CLASSIFIER}.pt", "metrics": {}}
                      for name in CHECKPOINTS if name != CLASSIFIER},
        "default_pipeline": DEFAULT_PURIFIER,
        "files": files,
        "samples": samples,
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                     "python": platform.python_version()},
        "training_wall_time_s": read_timings(run),
        "metrics": {},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("wrote %s (%d files)", out / "manifest.json", len(files))


def main(args: argparse.Namespace) -> None:
    run(from_args(Config, args))
