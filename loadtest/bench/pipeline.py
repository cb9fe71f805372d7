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
from service.inference import Defended, InferenceModel, branch_executor, encode_defended


@dataclass(frozen=True)
class Pipeline:
    model: InferenceModel
    preprocessing: Preprocessing
    purifier: str
    class_names: list[str]
    model_id: str
    max_pixels: int

    @classmethod
    def load(cls, settings: Settings) -> "Pipeline":
        torch.set_num_threads(settings.num_threads)
        folder = settings.artifacts_dir / settings.default_dataset
        artifacts = load_dataset(folder, resolve_device(settings.device), settings.optimize_classifier)
        manifest = artifacts.manifest
        return cls(
            InferenceModel(artifacts, branch_executor(settings)),
            artifacts.preprocessing,
            manifest.default_purifier,
            manifest.class_names,
            artifacts.model_id(manifest.classifier),
            settings.max_pixels,
        )

    def decode(self, data: bytes) -> torch.Tensor:
        return decode_image(data, self.preprocessing, self.max_pixels)

    def defend(self, images: list[torch.Tensor]) -> list[Defended]:
        return self.model.defend(images, self.purifier)

    def encode(self, result: Defended, latency_ms: float) -> dict:
        return encode_defended(result, self.class_names, self.model_id, latency_ms).model_dump()
