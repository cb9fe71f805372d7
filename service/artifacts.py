"""Load one dataset's artifact folder: validate the manifest, verify sha256, load TorchScript, warm up."""

import hashlib
import io
import json
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from bounds import CERTIFICATE_METHODS
from service.errors import ArtifactError
from service.images import Preprocessing

logger = logging.getLogger(__name__)
FORMAT_VERSION = 1
NAME = re.compile(r"[a-z0-9][a-z0-9._+-]{0,63}")  # model and pipeline names: query values, never paths
JIT_DEPRECATION = r"`torch\.jit\.\w+` is deprecated"


class FileEntry(BaseModel):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class Certificate(BaseModel):
    """A certifiable classifier's promise: its exported ``certify`` bounds every answer over an l-inf ball."""

    model_config = ConfigDict(extra="allow")
    method: str
    eps: float = Field(gt=0, description="the radius `certified` answers for")
    max_radius: float = Field(gt=0, description="how far the certified radius is searched")
    space: str

    @model_validator(mode="after")
    def _search_covers_eps(self) -> "Certificate":
        if self.max_radius < self.eps:
            raise ValueError(f"certificate max_radius {self.max_radius} is below its eps {self.eps}")
        return self


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="allow")
    file: str
    architecture: str
    kind: Literal["classifier", "purifier"] | None = Field(
        None, description="what the model does; unset: the manifest's classifier, else a purifier"
    )
    detector: dict[str, Any] | None = None
    certificate: Certificate | None = None
    input_shape: list[int] | None = Field(
        None, min_length=3, max_length=3, description="the model's own input shape; unset: the manifest's"
    )


class PipelineEntry(BaseModel):
    """A served defence: an optional purifier file, then a classifier file."""

    model_config = ConfigDict(extra="allow")
    purifier: str | None
    classifier: str


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
    pipelines: dict[str, PipelineEntry] = Field(default_factory=dict)
    default_pipeline: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    # a purifier no named pipeline puts before the manifest's classifier: that pair, unlisted, for ?purifier=
    _compositions: dict[str, PipelineEntry] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> "Manifest":
        if self.format_version != FORMAT_VERSION:
            raise ValueError(f"format_version {self.format_version} is not {FORMAT_VERSION}")
        for name in (self.classifier, self.default_purifier):
            if name not in self.models:
                raise ValueError(f"model {name!r} is not listed under models")
        for name, entry in self.models.items():
            if not NAME.fullmatch(name):
                raise ValueError(f"model name {name!r} is not of the form {NAME.pattern}")
            if entry.file not in self.files:
                raise ValueError(f"model {name!r} file {entry.file!r} has no sha256 under files")
            entry.kind = entry.kind or ("classifier" if name == self.classifier else "purifier")
        for name, kind in ((self.classifier, "classifier"), (self.default_purifier, "purifier")):
            if self.models[name].kind != kind:
                raise ValueError(f"model {name!r} is named as the {kind} but its kind is {self.models[name].kind}")
        if self.detector_threshold(self.default_purifier) is None:
            raise ValueError("default purifier has no detector.reconstruction_mse_threshold")
        self._complete_pipelines()
        return self

    def _complete_pipelines(self) -> None:
        """Check the named pipelines and the default (else the default purifier's pipeline); compose each purifier
        that no named pipeline puts before the classifier. A manifest that names none serves every purifier
        before the classifier as a pipeline of its own name."""
        standard = self.models[self.classifier].file
        if not self.pipelines:
            self.pipelines = {name: PipelineEntry(purifier=self.models[name].file, classifier=standard)
                              for name in self.names("purifier")}
        for name, pipeline in self.pipelines.items():
            if not NAME.fullmatch(name):
                raise ValueError(f"pipeline name {name!r} is not of the form {NAME.pattern}")
            for kind, file in (("purifier", pipeline.purifier), ("classifier", pipeline.classifier)):
                model = self.model_name(file)
                if file is not None and (model is None or self.models[model].kind != kind):
                    raise ValueError(f"pipeline {name!r}: {file!r} is not the file of a {kind} under models")
            self._check_shapes(name, pipeline)
        for name in self.names("purifier"):
            if self.pipeline_for_purifier(name) is None:
                if name in self.pipelines:
                    raise ValueError(
                        f"pipeline {name!r} is also a purifier's name but does not put it before the classifier")
                self._compositions[name] = PipelineEntry(purifier=self.models[name].file, classifier=standard)
                self._check_shapes(name, self._compositions[name])
        self.default_pipeline = self.default_pipeline or self.pipeline_for_purifier(self.default_purifier)
        if self.default_pipeline not in self.pipelines:
            raise ValueError(f"default_pipeline {self.default_pipeline!r} is not listed under pipelines")

    def _check_shapes(self, name: str, pipeline: PipelineEntry) -> None:
        if pipeline.purifier is None:
            return
        purifier, classifier = self.model_name(pipeline.purifier), self.model_name(pipeline.classifier)
        if self.input_shape_of(purifier) != self.input_shape_of(classifier):
            raise ValueError(f"pipeline {name!r}: purifier {purifier!r} makes {self.input_shape_of(purifier)} images, "
                             f"classifier {classifier!r} takes {self.input_shape_of(classifier)}")

    def input_shape_of(self, model: str) -> list[int]:
        """The shape a model takes: its own, else the manifest's."""
        return self.models[model].input_shape or self.input_shape

    def pipeline_input_shape(self, pipeline: str) -> list[int]:
        """The shape a pipeline's images are resized to: its first model's."""
        purifier, classifier = self.pipeline_models(pipeline)
        return self.input_shape_of(purifier or classifier)

    def names(self, kind: str) -> list[str]:
        """The models of one kind (``classifier`` or ``purifier``), in manifest order."""
        return [name for name, entry in self.models.items() if entry.kind == kind]

    def model_name(self, file: str | None) -> str | None:
        """The model a pipeline's file belongs to."""
        return next((name for name, entry in self.models.items() if entry.file == file), None)

    @property
    def compositions(self) -> list[str]:
        """The purifiers that ``?purifier=`` puts before the classifier outside the named pipelines."""
        return list(self._compositions)

    def pipeline_models(self, pipeline: str) -> tuple[str | None, str]:
        """The (purifier or None, classifier) model names of a pipeline or a composition."""
        entry = self.pipelines.get(pipeline) or self._compositions[pipeline]
        return self.model_name(entry.purifier), self.model_name(entry.classifier)

    def certificate(self, pipeline: str) -> Certificate | None:
        """The certificate of a pipeline that feeds the input straight to a certifiable classifier."""
        purifier, classifier = self.pipeline_models(pipeline)
        return self.models[classifier].certificate if purifier is None else None

    def pipeline_for_purifier(self, purifier: str) -> str | None:
        """The named pipeline of ``purifier`` before the manifest's classifier, if any."""
        wanted = (self.models[purifier].file, self.models[self.classifier].file)
        return next((name for name, p in self.pipelines.items() if (p.purifier, p.classifier) == wanted), None)

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
    """Load TorchScript; ``optimize`` applies ``optimize_for_inference``, keeping the exported ``methods``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=JIT_DEPRECATION, category=FutureWarning)
        try:
            module = torch.jit.load(io.BytesIO(data), map_location=device).eval()
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
                    classifier.certify(batch, certificate.eps, certificate.max_radius)
            for name, purifier in artifacts.purifiers.items():
                batch = batches[name]
                if purifier(batch).shape != batch.shape:
                    raise ArtifactError(f"{folder}: purifier {name!r} does not preserve the input shape")
