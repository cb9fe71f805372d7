"""``python -m training <subcommand>``: the one CLI of the offline pipeline."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

import torch

from .data import DATASETS, DataError, verify
from .steps import Common

# subcommand -> (module, help); each module has Config, add_arguments(parser), run(config) and main(args).
COMMANDS = {
    "fetch-data": ("training.fetch", "download or copy the raw dataset files and verify their sha256"),
    "train-classifier": ("training.train_classifier", "train the VGG-16 classifier"),
    "train-purifier": ("training.train_purifier", "train a purifier (autoencoder) on cached adversarial sets"),
    "select-purifier": ("training.select_purifier", "ablation over latent size and noise; picks autoencoder.ckpt"),
    "train-adversarial": ("training.robustness.train_adversarial",
                          "train a VGG-16 adversarially (FGSM-RS, PGD, TRADES) or on purified inputs (fine-tuning)"),
    "train-certified": ("training.train_certified", "train a certifiable CNN7 with interval bound propagation (IBP)"),
    "certified-runs": ("training.certified_runs", "certified training's per-epoch history, run by run, into docs/"),
    "robustness": ("training.robustness.study", "adaptive (EOT, BPDA), transfer and black-box attacks; docs/robustness.md"),
    "export": ("training.export", "freeze to TorchScript under artifacts/<dataset>/ and write manifest.json"),
    "evaluate": ("training.evaluate", "measure the artifacts: the paper's table, sweeps, latency; write docs"),
    "readme": ("training.readme", "the README's headline tables from the manifests and docs/latency.json"),
    "all": ("training.pipeline", "reproduce one dataset's artifacts end to end"),
}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", choices=sorted(DATASETS), default=Common.dataset)
    p.add_argument("--root", type=Path, default=Common.root, help="dataset root (torchvision layout)")
    p.add_argument("--workdir", type=Path, default=Common.workdir, help="checkpoints, caches, timings")
    p.add_argument("--artifacts", type=Path, default=Common.artifacts, help="exported models and manifests")
    p.add_argument("--device", default=Common.device, help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (use 1 per job when running jobs side by side)")
    p.add_argument("--limit", type=int, default=Common.limit, help="use only the first N images of each split")
    p.add_argument("--dry-run", action="store_true", help="one batch per epoch, for smoke tests")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common(p)
        p.set_defaults(module=module_name)
        importlib.import_module(module_name).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.command not in ("fetch-data", "all", "readme"):  # fail before any work, naming the bad file
            verify(args.root, args.dataset)
        importlib.import_module(args.module).main(args)
    except DataError as exc:
        logging.getLogger("training").error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
