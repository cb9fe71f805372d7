"""Load one dataset's artifact folder: validate the manifest, verify sha256, load TorchScript, warm up."""

import hashlib
import io
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import ValidationError

from bounds import CERTIFICATE_METHODS, prepared
from service.errors import ArtifactError
from service.images import Preprocessing
from service.manifest import Manifest

logger = logging.getLogger(__name__)
JIT_DEPRECATION = r"`torch\.jit\.\w+` is deprecated"


@dataclass
class DatasetArtifacts:
    """Everything the service needs for one dataset, loaded and verified."""

    dataset: str
    manifest: Manifest
    preprocessing: Preprocessing
    classifiers: dict[str, torch.jit.ScriptModule]
    purifiers: dict[str, torch.jit.ScriptModule]
    sha256: dict[str, str]
    device: torch.device

    @property
    def classifier(self) -> torch.jit.ScriptModule:
        """The manifest's (undefended) classifier."""
        return self.classifiers[self.manifest.classifier]

    def model_id(self, name: str) -> str:
        """A model's sha256 prefix, the id responses carry."""
        return self.sha256[self.manifest.models[name].file][:12]

    def preprocessing_for(self, model: str) -> Preprocessing:
        """How images reach ``model``: the manifest's preprocessing, at the model's own input shape."""
        return self.preprocessing.at(self.manifest.input_shape_of(model))

    def pipeline_preprocessing(self, pipeline: str) -> Preprocessing:
        """How images reach a pipeline (or a ``?purifier=`` composition): at its first model's input shape."""
        return self.preprocessing.at(self.manifest.pipeline_input_shape(pipeline))


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
        for name in manifest.models:  # a model's own shape must suit the preprocessing too
            prep.at(manifest.input_shape_of(name))
    except ValueError as exc:
        raise ArtifactError(f"{folder / 'manifest.json'}: {exc}") from exc
    models = {name: verified_bytes(folder, manifest, entry.file) for name, entry in manifest.models.items()}
    return VerifiedFolder(manifest, prep, models)


def load_module(
    data: bytes, path: Path, device: torch.device, optimize: bool, methods: tuple[str, ...] = ()
) -> torch.jit.ScriptModule:
    """Load TorchScript (a certifiable export builds its derived layouts: ``bounds.prepared``); ``optimize``
    applies ``optimize_for_inference``, keeping the exported ``methods``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=JIT_DEPRECATION, category=FutureWarning)
        try:
            module = prepared(torch.jit.load(io.BytesIO(data), map_location=device).eval())
            missing = [name for name in methods if not hasattr(module, name)]
            if missing:
                raise ArtifactError(f"{path}: the manifest names a certificate but the file lacks {missing}")
            return torch.jit.optimize_for_inference(module, list(methods)) if optimize else module
        except (RuntimeError, ValueError) as exc:
            raise ArtifactError(f"{path}: cannot load TorchScript ({exc})") from exc


def load_dataset(folder: Path, device: torch.device, optimize_classifier: bool = False) -> DatasetArtifacts:
    """Validate, verify, load and warm up every model of one artifact folder."""
    verified = verify_dataset(folder)
    manifest = verified.manifest
    classifiers = set(manifest.names("classifier"))
    modules = {
        name: load_module(
            data,
            folder / manifest.models[name].file,
            device,
            optimize_classifier and name in classifiers,
            CERTIFICATE_METHODS if manifest.models[name].certificate else (),
        )
        for name, data in verified.models.items()
    }
    artifacts = DatasetArtifacts(
        dataset=manifest.dataset,
        manifest=manifest,
        preprocessing=verified.preprocessing,
        classifiers={name: module for name, module in modules.items() if name in classifiers},
        purifiers={name: module for name, module in modules.items() if name not in classifiers},
        sha256={entry.file: manifest.files[entry.file].sha256 for entry in manifest.models.values()},
        device=device,
    )
    warm_up(artifacts, folder)
    logger.info(
        "loaded %s from %s on %s (%d classifiers, %d purifiers, %d pipelines)",
        manifest.dataset, folder, device, len(artifacts.classifiers), len(artifacts.purifiers), len(manifest.pipelines),
    )
    return artifacts


def warm_up(
    artifacts: DatasetArtifacts, folder: Path, batch_sizes: tuple[int, ...] = (1, 2, 8), rounds: int = 3
) -> None:
    """Run every model a few times per shape (TorchScript specializes on its first runs); check output shapes."""
    shapes = {name: artifacts.manifest.input_shape_of(name) for name in artifacts.manifest.models}
    with torch.inference_mode():
        for batch_size in batch_sizes * rounds:
            expected = (batch_size, len(artifacts.manifest.class_names))
            batches = {name: torch.rand(batch_size, *shape, device=artifacts.device) for name, shape in shapes.items()}
            for name, classifier in artifacts.classifiers.items():
                batch = batches[name]
                shape = tuple(classifier(batch).shape)
                if shape != expected:
                    raise ArtifactError(f"{folder}: classifier {name!r} returns shape {shape}, not {expected}")
                certificate = artifacts.manifest.models[name].certificate
                if certificate is not None:
                    classifier.bounds(batch, torch.full((batch_size,), certificate.eps, device=batch.device), None)
            for name, purifier in artifacts.purifiers.items():
                batch = batches[name]
                if purifier(batch).shape != batch.shape:
                    raise ArtifactError(f"{folder}: purifier {name!r} does not preserve the input shape")
