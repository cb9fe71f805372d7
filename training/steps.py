"""What every step of ``python -m training`` shares: the common options as a frozen config, and the mapping
from the command line (or from another step's config) onto a step's own config dataclass.

Each step module defines ``Config(Common)`` with its options and their defaults, ``add_arguments(parser)``
whose defaults read that dataclass, ``run(config)`` that does the work, and ``main(args)`` that only maps
``args`` onto ``Config``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypeVar

from .runs import PRECISIONS, run_dir

C = TypeVar("C", bound="Common")


@dataclass(frozen=True)
class Common:
    """The options of every step: which dataset, where its files live, the device, and how much to run."""

    dataset: str = "mnist"
    root: Path = Path("data")
    workdir: Path = Path("runs")
    artifacts: Path = Path("artifacts")
    device: str = "auto"
    limit: int | None = None
    dry_run: bool = False
    resume: bool = False

    @property
    def run_dir(self) -> Path:
        """``<workdir>/<dataset>``: checkpoints, caches and timings."""
        return run_dir(self.workdir, self.dataset)

    @property
    def artifact_dir(self) -> Path:
        return Path(self.artifacts) / self.dataset


@dataclass(frozen=True)
class Training(Common):
    """The options of every training step: the forward pass's precision (evaluation and export stay fp32)."""

    precision: str = "fp32"


def add_precision(p: argparse.ArgumentParser, default: str, auto: bool = False) -> None:
    """``--precision``; with ``auto``, also the choice of the faster one on the machine at hand."""
    p.add_argument("--precision", choices=(*PRECISIONS, "auto") if auto else PRECISIONS, default=default,
                   help="training precision: bf16 (autocast, channels_last) or fp32" + (", or auto: the faster"
                   " for one step, timed" if auto else "") + "; evaluation is always fp32")


def from_args(cls: type[C], args: argparse.Namespace) -> C:
    """``cls`` from the parsed command line: every field the parser has, the dataclass's default otherwise."""
    return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})


def derive(cls: type[C], config: Common, **changes) -> C:
    """Another step's config with the same common options (``resume`` on: steps pick up where they stopped)."""
    shared = {f.name: getattr(config, f.name) for f in fields(Common)}
    return cls(**{**shared, "resume": True, **changes})
