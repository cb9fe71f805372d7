"""The bundled test images (``samples`` in ``manifest.json``), verified and held in memory for the demo page."""

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, TypeAdapter, ValidationError

from service.artifacts import verified_bytes
from service.manifest import Manifest
from service.errors import ArtifactError


class SampleEntry(BaseModel):
    file: str
    label: int


@dataclass(frozen=True)
class Sample:
    label: int
    png: bytes


def load_samples(folder: Path, manifest: Manifest) -> list[Sample]:
    """Every listed sample, checked against its sha256; a manifest without ``samples`` has none."""
    try:
        entries = TypeAdapter(list[SampleEntry]).validate_python((manifest.model_extra or {}).get("samples", []))
    except ValidationError as exc:
        raise ArtifactError(f"{folder / 'manifest.json'}: invalid samples ({exc.errors()[0]['msg']})") from exc
    samples = []
    for entry in entries:
        if entry.file not in manifest.files:
            raise ArtifactError(f"{folder / 'manifest.json'}: sample {entry.file!r} has no sha256 under files")
        if not 0 <= entry.label < len(manifest.class_names):
            raise ArtifactError(f"{folder / 'manifest.json'}: sample {entry.file!r} has label {entry.label}")
        samples.append(Sample(entry.label, verified_bytes(folder, manifest, entry.file)))
    return samples
