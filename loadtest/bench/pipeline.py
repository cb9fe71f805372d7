"""The service's model contract for one dataset, outside the service: what the naive and LitServe apps serve.

Both comparators read the same ``PURIFIER_*`` settings as the service (artifacts, device, threads,
classifier optimization, default dataset, pixel limit), and run the same decode, ``defend`` and
encode code, so the benchmark compares serving engines, not models.
"""

from dataclasses import dataclass

import torch

from service.artifacts import load_dataset, resolve_device
from service.config import Settings
from service.images import Preprocessing, decode_image
from service.inference import Defend, Defended, InferenceModel, branch_executor


@dataclass(frozen=True)
class Pipeline:
    """The default dataset's default pipeline, as ``/defended-classify`` runs it."""

    model: InferenceModel
    operation: Defend
    preprocessing: Preprocessing
    purifier: str  # the manifest's default purifier, timed on its own
    max_pixels: int

    @classmethod
    def load(cls, settings: Settings) -> "Pipeline":
        torch.set_num_threads(settings.num_threads)
        folder = settings.artifacts_dir / settings.default_dataset
        artifacts = load_dataset(folder, resolve_device(settings.device), settings.optimize_classifier)
        model = InferenceModel.served(artifacts, settings, branch_executor(settings))
        operation = Defend(model, artifacts.manifest.default_pipeline)
        return cls(model, operation, artifacts.preprocessing, artifacts.manifest.default_purifier, settings.max_pixels)

    def decode(self, data: bytes) -> torch.Tensor:
        return decode_image(data, self.preprocessing, self.max_pixels)

    def defend(self, images: list[torch.Tensor]) -> list[Defended]:
        return self.operation.predict(images)

    def encode(self, result: Defended, latency_ms: float) -> dict:
        return self.operation.encode(result, latency_ms).model_dump()
