"""``all``: one dataset end to end: fetch -> classifier -> purifiers -> ablation -> export -> evaluate.

Steps whose checkpoint already exists are kept, so an interrupted run resumes
where it stopped (``--resume`` is implied).
"""

from __future__ import annotations

import argparse
import logging
from copy import copy

from . import evaluate, export, fetch, select_purifier, train_classifier, train_purifier
from .runs import run_dir

log = logging.getLogger(__name__)
# checkpoint -> (recipe, max epochs). The PGD set is 5k pairs (not the paper's 50k), so it gets
# 40 epochs: 3.1k optimizer steps, still fewer than the paper's 10 epochs over 50k (7.8k).
PAPER_PURIFIERS = {"autoencoder-fgsm.ckpt": ("paper-fgsm", 10), "autoencoder-pgd.ckpt": ("paper-pgd", 40)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    evaluate.add_arguments(p)


def _with_defaults(args: argparse.Namespace, module) -> argparse.Namespace:
    """``args`` plus the step's own defaults for the options ``args`` lacks."""
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    merged = copy(args)
    for key, value in vars(parser.parse_args([])).items():
        if not hasattr(merged, key):
            setattr(merged, key, value)
    merged.resume = True
    return merged


def main(args: argparse.Namespace) -> None:
    run = run_dir(args.workdir, args.dataset)
    fetch.main(_with_defaults(args, fetch))
    train_classifier.main(_with_defaults(args, train_classifier))  # resumes, or returns if complete
    for out, (recipe, epochs) in PAPER_PURIFIERS.items():
        if not (run / out).is_file():
            step = _with_defaults(args, train_purifier)
            step.recipe, step.out, step.epochs = recipe, out, epochs
            train_purifier.main(step)
    select_purifier.main(_with_defaults(args, select_purifier))
    export.main(_with_defaults(args, export))
    evaluate.main(_with_defaults(args, evaluate))
