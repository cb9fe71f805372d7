"""Artifact files: their sha256, and a folder's manifest with its TorchScript models, checked against it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .jit import load


def sha256(path: Path) -> str:
    """The file's sha256, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_artifacts(folder: Path, device) -> tuple[dict, dict]:
    """(manifest, {model name: TorchScript module}) after checking every file's sha256."""
    manifest = json.loads((folder / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        if sha256(folder / name) != entry["sha256"]:
            raise RuntimeError(f"{folder / name}: sha256 differs from the manifest; re-run export")
    return manifest, {name: load(folder / m["file"], device) for name, m in manifest["models"].items()}
