"""The committed test images (``artifacts/<dataset>/samples/*.png``) with their labels, for load."""

import json
from dataclasses import dataclass
from pathlib import Path

from service.config import REPO_ROOT

ARTIFACTS = REPO_ROOT / "artifacts"


@dataclass(frozen=True)
class Sample:
    dataset: str
    png: bytes
    label: int


def load_samples(dataset: str, artifacts: Path = ARTIFACTS) -> list[Sample]:
    """Every sample the dataset's manifest lists; an error naming the folder when there are none."""
    manifest_path = artifacts / dataset / "manifest.json"
    try:
        entries = json.loads(manifest_path.read_text())["samples"]
    except (OSError, ValueError, KeyError) as exc:
        raise FileNotFoundError(f"{manifest_path}: no readable 'samples' list ({exc})") from exc
    samples = [Sample(dataset, (artifacts / dataset / e["file"]).read_bytes(), int(e["label"])) for e in entries]
    if not samples:
        raise FileNotFoundError(f"{manifest_path}: lists no samples")
    return samples
