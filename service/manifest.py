"""The manifest of an artifact folder (``manifest.json``): its models, pipelines and certificates, validated."""

import re
from typing import Any, Literal

from bounds import LEVELS
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

FORMAT_VERSION = 1
NAME = re.compile(r"[a-z0-9][a-z0-9._+-]{0,63}")  # model and pipeline names: query values, never paths


class FileEntry(BaseModel):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class Certificate(BaseModel):
    """A certifiable classifier's promise: its exported ``bounds`` prove every answer over an l-inf ball."""

    model_config = ConfigDict(extra="allow")
    method: str
    eps: float = Field(gt=0, description="the radius `certified` answers for")
    space: str
    radius_prior: list[int] | None = Field(
        None,
        min_length=LEVELS + 1,
        max_length=LEVELS + 1,
        description="how often each grey level was the certified radius on validation images: where the radius "
        "search looks first (unset: evenly)",
    )


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
