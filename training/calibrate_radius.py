"""The radius prior of each certified model: how often each grey level was the certified radius of the
validation images. The service places its radius search by it (``bounds.radius``); it moves the search's
speed, never its answer."""

from __future__ import annotations

import logging
from pathlib import Path

from bounds import radius_prior
from . import data
from .jit import load

log = logging.getLogger(__name__)
PRIOR_IMAGES = 1000  # validation images per prior


def calibrate(manifest: dict, out: Path, root: Path, limit: int | None, every: bool = False) -> None:
    """Fill ``certificate.radius_prior`` of each certified model in ``manifest`` that has none (``every``: all)."""
    for name, entry in manifest["models"].items():
        certificate = entry.get("certificate")
        if certificate is None or ("radius_prior" in certificate and not every):
            continue
        side = entry.get("input_shape", manifest["input_shape"])[-1]
        images = data.load_splits(root, manifest["dataset"], limit=limit, side=side)["val"].tensors[0][:PRIOR_IMAGES]
        certificate["radius_prior"] = radius_prior(load(out / entry["file"]), images, certificate["eps"])
        certificate["radius_prior_images"] = len(images)
        log.info("%s: radius prior from %d validation images", name, len(images))
