"""The model contract: stacked [0,1] tensors in, plain Python results out, encoded to schemas. Knows no HTTP."""

import base64
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass

import torch

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
class Defended:
    defended: Prediction
    undefended: Prediction
    purified: Purified
    suspected_adversarial: bool


class InferenceModel:
    """One dataset's classifier and purifiers, batched (LitServe's ``predict``).

    ``thresholds`` holds each purifier's calibrated reconstruction-MSE threshold; a purifier without
    one flags only a disagreement between the defended and undefended labels.

    With a ``branch`` executor, ``defend`` classifies the raw images there while the purifier and the
    classifier on the purified images run on the calling thread: the two branches are independent, so
    a lone request waits for the longer one instead of both.
    """

    def __init__(self, artifacts: DatasetArtifacts, branch: Executor | None = None) -> None:
        self.artifacts = artifacts
        self.branch = branch
        self.thresholds = {name: artifacts.manifest.detector_threshold(name) for name in artifacts.purifiers}

    def _stack(self, images: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(images).to(self.artifacts.device)

    def _predictions(self, batch: torch.Tensor) -> list[Prediction]:
        probabilities = torch.softmax(self.artifacts.classifier(batch).float(), dim=1)
        labels = probabilities.argmax(dim=1).tolist()
        return [Prediction(label, probs) for label, probs in zip(labels, probabilities.tolist(), strict=True)]

    def _purified(self, batch: torch.Tensor, purifier: str) -> tuple[torch.Tensor, list[Purified]]:
        purified = self.artifacts.purifiers[purifier](batch).clamp(0, 1)
        delta = (purified - batch).flatten(1)
        l2, linf, mse = delta.norm(dim=1).tolist(), delta.abs().amax(dim=1).tolist(), delta.pow(2).mean(dim=1).tolist()
        cpu = purified.cpu()
        return purified, [Purified(cpu[i], l2[i], linf[i], mse[i]) for i in range(len(cpu))]

    def _classified(self, batch: torch.Tensor) -> list[Prediction]:
        with torch.inference_mode():
            return self._predictions(batch)

    def classify(self, images: list[torch.Tensor]) -> list[Prediction]:
        return self._classified(self._stack(images))

    def purify(self, images: list[torch.Tensor], purifier: str) -> list[Purified]:
        with torch.inference_mode():
            return self._purified(self._stack(images), purifier)[1]

    def defend(self, images: list[torch.Tensor], purifier: str) -> list[Defended]:
        """Purify, classify both the raw and the purified image, flag disagreement or a large reconstruction error."""
        threshold = self.thresholds[purifier]
        batch = self._stack(images)
        if self.branch is None:
            with torch.inference_mode():
                purified, details = self._purified(batch, purifier)
                predictions = self._predictions(torch.cat([batch, purified]))
            raw, defended = predictions[: len(images)], predictions[len(images) :]
        else:
            raw_future = self.branch.submit(self._classified, batch)
            with torch.inference_mode():
                purified, details = self._purified(batch, purifier)
                defended = self._predictions(purified)
            raw = raw_future.result()
        return [
            Defended(d, u, p, d.label != u.label or (threshold is not None and p.mse > threshold))
            for d, u, p in zip(defended, raw, details, strict=True)
        ]


def branch_executor(settings: Settings) -> ThreadPoolExecutor | None:
    """The second thread ``defend`` classifies raw images on, when ``parallel_defend`` is set."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference-branch") if settings.parallel_defend else None


def encode_prediction(prediction: Prediction, class_names: list[str]) -> schemas.Prediction:
    return schemas.Prediction(
        label=prediction.label, class_name=class_names[prediction.label], probabilities=prediction.probabilities
    )


def encode_classified(
    prediction: Prediction, class_names: list[str], model: str, latency_ms: float
) -> schemas.ClassifyResponse:
    return schemas.ClassifyResponse(
        **encode_prediction(prediction, class_names).model_dump(), model=model, latency_ms=latency_ms
    )


def encode_defended(
    result: Defended, class_names: list[str], model: str, latency_ms: float
) -> schemas.DefendedResponse:
    return schemas.DefendedResponse(
        **encode_classified(result.defended, class_names, model, latency_ms).model_dump(),
        undefended=encode_prediction(result.undefended, class_names),
        suspected_adversarial=result.suspected_adversarial,
        reconstruction_mse=result.purified.mse,
    )


def encode_purified(result: Purified, model: str, latency_ms: float) -> schemas.PurifyResponse:
    return schemas.PurifyResponse(
        image=base64.b64encode(encode_png(result.image)).decode(),
        l2=result.l2,
        linf=result.linf,
        model=model,
        latency_ms=latency_ms,
    )
