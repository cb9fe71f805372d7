"""Load one dataset's artifact folder: validate the manifest, verify sha256, load TorchScript, warm up."""

import hashlib
import io
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from service.config import PURIFIERS
from service.errors import ArtifactError
from service.images import Preprocessing

logger = logging.getLogger(__name__)
FORMAT_VERSION = 1
JIT_DEPRECATION = r"`torch\.jit\.\w+` is deprecated"


class FileEntry(BaseModel):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="allow")
    file: str
    architecture: str
    detector: dict[str, Any] | None = None


class Manifest(BaseModel):
    """The subset of ``manifest.json`` the service relies on; unknown keys are kept."""

    model_config = ConfigDict(extra="allow")
    format_version: int
    dataset: str
    class_names: list[str] = Field(min_length=2)
    input_shape: list[int] = Field(min_length=3, max_length=3)
    value_range: list[float] = Field(min_length=2, max_length=2)
    preprocessing: dict[str, str]
    classifier: str
    default_purifier: str
    models: dict[str, ModelEntry]
    files: dict[str, FileEntry]
    metrics: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> "Manifest":
        if self.format_version != FORMAT_VERSION:
            raise ValueError(f"format_version {self.format_version} is not {FORMAT_VERSION}")
        for name in (self.classifier, self.default_purifier):
            if name not in self.models:
                raise ValueError(f"model {name!r} is not listed under models")
        for name, entry in self.models.items():
            if entry.file not in self.files:
                raise ValueError(f"model {name!r} file {entry.file!r} has no sha256 under files")
            if name != self.classifier and name not in PURIFIERS:
                raise ValueError(f"purifier {name!r} is not one of the served names {PURIFIERS}")
        if self.detector_threshold(self.default_purifier) is None:
            raise ValueError("default purifier has no detector.reconstruction_mse_threshold")
        return self

    def detector_threshold(self, purifier: str) -> float | None:
        """The purifier's calibrated reconstruction-MSE threshold, if the manifest records one."""
        detector = self.models[purifier].detector or {}
        value = detector.get("reconstruction_mse_threshold")
        return float(value) if isinstance(value, (int, float)) else None


@dataclass
class DatasetArtifacts:
    """Everything the service needs for one dataset, loaded and verified."""

    dataset: str
    manifest: Manifest
    preprocessing: Preprocessing
    classifier: torch.jit.ScriptModule
    purifiers: dict[str, torch.jit.ScriptModule]
    sha256: dict[str, str]
    device: torch.device

    def model_id(self, name: str) -> str:
        """A model's sha256 prefix, the id responses carry."""
        return self.sha256[self.manifest.models[name].file][:12]


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ArtifactError("device 'cuda' was requested but CUDA is not available")
    return torch.device(name)


def read_manifest(folder: Path) -> Manifest:
    path = folder / "manifest.json"
    try:
        return Manifest.model_validate(json.loads(path.read_text()))
    except FileNotFoundError as exc:
        raise ArtifactError(f"{path}: missing") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc})") from exc
    except ValidationError as exc:
        raise ArtifactError(
            f"{path}: invalid manifest ({exc.error_count()} error(s): {exc.errors()[0]['msg']})"
        ) from exc


def verified_bytes(folder: Path, manifest: Manifest, relative: str) -> bytes:
    """The file's bytes once their sha256 matches the manifest (read once: what is checked is what is loaded)."""
    path = folder / relative
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ArtifactError(f"{path}: missing") from exc
    except OSError as exc:
        raise ArtifactError(f"{path}: unreadable ({exc})") from exc
    actual, expected = hashlib.sha256(data).hexdigest(), manifest.files[relative].sha256
    if actual != expected:
        raise ArtifactError(f"{path}: sha256 {actual} does not match the manifest's {expected}")
    return data


@dataclass(frozen=True)
class VerifiedFolder:
    """A validated manifest and every model file's bytes, checked against their sha256."""

    manifest: Manifest
    preprocessing: Preprocessing
    models: dict[str, bytes]


def verify_dataset(folder: Path) -> VerifiedFolder:
    """Validate the manifest and verify every model file; loads nothing into torch."""
    manifest = read_manifest(folder)
    if manifest.dataset != folder.name:
        raise ArtifactError(f"{folder / 'manifest.json'}: dataset {manifest.dataset!r} does not match the folder name")
    try:
        prep = Preprocessing.from_manifest(manifest.input_shape, manifest.preprocessing)
    except ValueError as exc:
        raise ArtifactError(f"{folder / 'manifest.json'}: {exc}") from exc
    models = {name: verified_bytes(folder, manifest, entry.file) for name, entry in manifest.models.items()}
    return VerifiedFolder(manifest, prep, models)


def load_module(data: bytes, path: Path, device: torch.device, optimize: bool) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=JIT_DEPRECATION, category=FutureWarning)
        try:
            module = torch.jit.load(io.BytesIO(data), map_location=device).eval()
            return torch.jit.optimize_for_inference(module) if optimize else module
        except (RuntimeError, ValueError) as exc:
            raise ArtifactError(f"{path}: cannot load TorchScript ({exc})") from exc


def load_dataset(folder: Path, device: torch.device, optimize_classifier: bool = False) -> DatasetArtifacts:
    """Validate, verify, load and warm up every model of one artifact folder."""
    verified = verify_dataset(folder)
    manifest = verified.manifest
    modules = {
        name: load_module(
            data, folder / manifest.models[name].file, device, optimize_classifier and name == manifest.classifier
        )
        for name, data in verified.models.items()
    }
    artifacts = DatasetArtifacts(
        dataset=manifest.dataset,
        manifest=manifest,
        preprocessing=verified.preprocessing,
        classifier=modules.pop(manifest.classifier),
        purifiers=modules,
        sha256={entry.file: manifest.files[entry.file].sha256 for entry in manifest.models.values()},
        device=device,
    )
    warm_up(artifacts, folder)
    logger.info("loaded %s from %s on %s (%d purifiers)", manifest.dataset, folder, device, len(modules))
    return artifacts


def warm_up(
    artifacts: DatasetArtifacts, folder: Path, batch_sizes: tuple[int, ...] = (1, 2, 8), rounds: int = 3
) -> None:
    """Run every model a few times per shape (TorchScript specializes on its first runs); check output shapes."""
    prep = artifacts.preprocessing
    with torch.inference_mode():
        for batch_size in batch_sizes * rounds:
            batch = torch.rand(batch_size, prep.channels, prep.height, prep.width, device=artifacts.device)
            expected = (batch_size, len(artifacts.manifest.class_names))
            logits = artifacts.classifier(batch)
            if tuple(logits.shape) != expected:
                raise ArtifactError(f"{folder}: classifier returns shape {tuple(logits.shape)}, not {expected}")
            for name, purifier in artifacts.purifiers.items():
                if purifier(batch).shape != batch.shape:
                    raise ArtifactError(f"{folder}: purifier {name!r} does not preserve the input shape")
