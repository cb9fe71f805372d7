"""The model contract: stacked [0,1] tensors in, plain Python results out, encoded to schemas. Knows no HTTP.

``InferenceModel`` runs one dataset's models on a batch; each endpoint is one ``Operation`` (LitServe's
``LitAPI``): ``predict`` maps a list of images to one result each, ``encode`` turns one result into
its response schema.
"""

import base64
import copy
import math
from abc import ABC, abstractmethod
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from bounds import RadiusSearch
from pydantic import BaseModel

from service import schemas
from service.artifacts import DatasetArtifacts
from service.config import Settings
from service.images import encode_png


@dataclass(frozen=True)
class Prediction:
    label: int
    probabilities: list[float]


@dataclass(frozen=True)
class Purified:
    image: torch.Tensor
    l2: float
    linf: float
    mse: float


@dataclass(frozen=True)
class Certified:
    """Whether the label provably holds over the l-inf ball of the pipeline's eps, and the largest radius
    in grey levels (k / 255) at which it provably holds (0: none)."""

    certified: bool
    radius: float


@dataclass(frozen=True)
class Defended:
    defended: Prediction
    undefended: Prediction
    purified: Purified | None
    suspected_adversarial: bool
    certificate: Certified | None = None


def predictions(classifier: torch.nn.Module, batch: torch.Tensor) -> list[Prediction]:
    """The classifier's softmax on a batch, as plain values (the caller picks no_grad or inference_mode)."""
    probabilities = torch.softmax(classifier(batch).float(), dim=1)
    labels = probabilities.argmax(dim=1).tolist()
    return [Prediction(label, probs) for label, probs in zip(labels, probabilities.tolist(), strict=True)]


class InferenceModel:
    """One dataset's classifiers, purifiers and pipelines, batched (LitServe's ``predict``).

    ``thresholds`` holds each purifier's calibrated reconstruction-MSE threshold; a purifier without
    one flags only a disagreement between the defended and undefended labels.

    With a ``branch`` executor, ``defend`` classifies the raw images there while the purifier and the
    pipeline's classifier run on the calling thread: the two branches are independent, so a lone
    request waits for the longer one instead of both.
    """

    def __init__(self, artifacts: DatasetArtifacts, branch: Executor | None, probes: int, rounds: int) -> None:
        self.artifacts = artifacts
        self.branch = branch
        self.searches = {  # the certified-radius search of each certifiable classifier, placed by its prior
            name: RadiusSearch(entry.certificate.radius_prior, probes, rounds)
            for name, entry in artifacts.manifest.models.items()
            if entry.certificate is not None
        }
        self.thresholds = {name: artifacts.manifest.detector_threshold(name) for name in artifacts.purifiers}

    @classmethod
    def served(
        cls, artifacts: DatasetArtifacts, settings: Settings, branch: Executor | None = None
    ) -> "InferenceModel":
        """As the service runs it: the certified-radius search as ``settings`` say."""
        return cls(artifacts, branch, settings.certified_radius_probes, settings.certified_radius_rounds)

    def serial(self) -> "InferenceModel":
        """The same models and radius searches, with both branches of ``defend`` on the calling thread."""
        model = copy.copy(self)
        model.branch = None
        return model

    def _stack(self, images: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(images).to(self.artifacts.device)

    def _purified(self, batch: torch.Tensor, purifier: str) -> tuple[torch.Tensor, list[Purified]]:
        purified = self.artifacts.purifiers[purifier](batch).clamp(0, 1)
        delta = (purified - batch).flatten(1)
        l2, linf, mse = delta.norm(dim=1).tolist(), delta.abs().amax(dim=1).tolist(), delta.pow(2).mean(dim=1).tolist()
        cpu = purified.cpu()
        return purified, [Purified(cpu[i], l2[i], linf[i], mse[i]) for i in range(len(cpu))]

    def _undefended_input(self, batch: torch.Tensor) -> torch.Tensor:
        """The batch at the undefended classifier's input shape: a pipeline that takes another shape has its images
        resized (bilinear, antialiased, as PIL resizes an upload) for the comparison."""
        manifest = self.artifacts.manifest
        shape = manifest.input_shape_of(manifest.classifier)
        if list(batch.shape[1:]) == shape:
            return batch
        return F.interpolate(batch, size=shape[1:], mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)

    def _classified(self, batch: torch.Tensor, classifier: str | None = None) -> list[Prediction]:
        with torch.inference_mode():
            return predictions(self.artifacts.classifiers[classifier or self.artifacts.manifest.classifier], batch)

    def classify(self, images: list[torch.Tensor], classifier: str | None = None) -> list[Prediction]:
        return self._classified(self._stack(images), classifier)

    def purify(self, images: list[torch.Tensor], purifier: str) -> list[Purified]:
        with torch.inference_mode():
            return self._purified(self._stack(images), purifier)[1]

    def _certified(self, batch: torch.Tensor, pipeline: str) -> tuple[list[Prediction], list[Certified]]:
        """The pipeline's certifiable classifier: predictions and their certificates, from one radius search."""
        certificate = self.artifacts.manifest.certificate(pipeline)
        name = self.artifacts.manifest.pipeline_models(pipeline)[1]
        search = self.searches[name]
        with torch.inference_mode():
            logits, certified, levels = search.certify(self.artifacts.classifiers[name], batch, certificate.eps)
            probabilities = torch.softmax(logits.float(), dim=1)
            labels = probabilities.argmax(dim=1).tolist()
            radii = (level / search.levels for level in levels.tolist())
            found = [Certified(c, r) for c, r in zip(certified.tolist(), radii, strict=True)]
            return [Prediction(label, p) for label, p in zip(labels, probabilities.tolist(), strict=True)], found

    def _defended_branch(
        self, batch: torch.Tensor, pipeline: str
    ) -> tuple[list[Prediction], list[Purified] | None, list[Certified] | None]:
        """The pipeline's answers, with what the purifier did or the certificates, where it has them."""
        purifier, classifier = self.artifacts.manifest.pipeline_models(pipeline)
        if self.artifacts.manifest.certificate(pipeline) is not None:
            defended, certificates = self._certified(batch, pipeline)
            return defended, None, certificates
        if purifier is None:
            return self._classified(batch, classifier), None, None
        with torch.inference_mode():
            purified, details = self._purified(batch, purifier)
            return predictions(self.artifacts.classifiers[classifier], purified), details, None

    def defend(self, images: list[torch.Tensor], pipeline: str) -> list[Defended]:
        """Run the pipeline (purify, then classify) and the undefended classifier; flag disagreement or a
        reconstruction error above the purifier's threshold."""
        manifest = self.artifacts.manifest
        purifier, classifier = manifest.pipeline_models(pipeline)
        batch = self._stack(images)
        certificates = None
        if self.branch is not None:
            raw_future = self.branch.submit(self._classified, self._undefended_input(batch))
            defended, details, certificates = self._defended_branch(batch, pipeline)
            raw = raw_future.result()
        elif purifier is not None and classifier == manifest.classifier:  # one classifier call on both
            with torch.inference_mode():
                purified, details = self._purified(batch, purifier)
                both = predictions(self.artifacts.classifier, torch.cat([batch, purified]))
            raw, defended = both[: len(images)], both[len(images) :]
        else:
            defended, details, certificates = self._defended_branch(batch, pipeline)
            raw = self._classified(self._undefended_input(batch))
        threshold = self.thresholds[purifier] if purifier is not None else None
        none = [None] * len(images)
        return [
            Defended(d, u, p, d.label != u.label or (threshold is not None and p is not None and p.mse > threshold), c)
            for d, u, p, c in zip(defended, raw, details or none, certificates or none, strict=True)
        ]


def branch_executor(settings: Settings) -> ThreadPoolExecutor | None:
    """The second thread ``defend`` classifies raw images on, when ``parallel_defend`` is set."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference-branch") if settings.parallel_defend else None


def metric_label(dataset: str, kind: str, name: str | None = None) -> str:
    """The ``batcher`` label of an operation in ``/metrics``, e.g. ``mnist/defend:autoencoder``."""
    return f"{dataset}/{kind}" + (f":{name}" if name else "")


class Operation(ABC):
    """One endpoint's model work: ``predict`` a list of images (one result each), ``encode`` one result."""

    kind: str

    def __init__(self, model: InferenceModel, name: str | None = None) -> None:
        self.model, self.name = model, name
        self.class_names = model.artifacts.manifest.class_names

    @property
    def label(self) -> str:
        return metric_label(self.model.artifacts.dataset, self.kind, self.name)

    @abstractmethod
    def predict(self, images: list[torch.Tensor]) -> list[Any]: ...

    @abstractmethod
    def encode(self, result: Any, latency_ms: float) -> BaseModel: ...


def encode_prediction(prediction: Prediction, class_names: list[str]) -> schemas.Prediction:
    return schemas.Prediction(
        label=prediction.label, class_name=class_names[prediction.label], probabilities=prediction.probabilities
    )


class Classify(Operation):
    """The manifest's classifier on the image as given."""

    kind = "classify"

    def predict(self, images: list[torch.Tensor]) -> list[Prediction]:
        return self.model.classify(images)

    def encode(self, result: Prediction, latency_ms: float) -> schemas.ClassifyResponse:
        artifacts = self.model.artifacts
        return schemas.ClassifyResponse(
            **encode_prediction(result, self.class_names).model_dump(exclude_unset=True),
            model=artifacts.model_id(artifacts.manifest.classifier),
            latency_ms=latency_ms,
        )


class Purify(Operation):
    """One purifier; ``name`` is the purifier."""

    kind = "purify"

    def predict(self, images: list[torch.Tensor]) -> list[Purified]:
        return self.model.purify(images, self.name)

    def encode(self, result: Purified, latency_ms: float) -> schemas.PurifyResponse:
        return schemas.PurifyResponse(
            image=base64.b64encode(encode_png(result.image)).decode(),
            l2=result.l2,
            linf=result.linf,
            model=self.model.artifacts.model_id(self.name),
            latency_ms=latency_ms,
        )


class Defend(Operation):
    """One pipeline beside the undefended classifier; ``name`` is the pipeline."""

    kind = "defend"

    def predict(self, images: list[torch.Tensor]) -> list[Defended]:
        return self.model.defend(images, self.name)

    def __init__(self, model: InferenceModel, name: str) -> None:
        super().__init__(model, name)
        self.model_id = model.artifacts.model_id(model.artifacts.manifest.pipeline_models(name)[1])

    def encode(self, result: Defended, latency_ms: float) -> schemas.DefendedResponse:
        return schemas.DefendedResponse(
            **encode_prediction(result.defended, self.class_names).model_dump(exclude_unset=True),
            model=self.model_id,
            latency_ms=latency_ms,
            pipeline=self.name,
            undefended=encode_prediction(result.undefended, self.class_names),
            suspected_adversarial=result.suspected_adversarial,
            reconstruction_mse=None if result.purified is None else result.purified.mse,
            **certificate_fields(result.certificate),
        )


def certificate_fields(certificate: Certified | None) -> dict:
    """The response fields of a certificate; none for a pipeline without one (absent, not null)."""
    if certificate is None:
        return {}
    # float32 to 6 decimals, rounded down: a smaller radius still holds
    return {"certified": certificate.certified, "certified_radius": math.floor(certificate.radius * 1e6) / 1e6}
