"""The typed runtime the routes read: served datasets, their operations bound to batchers, and the limits."""

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from service.artifacts import DatasetArtifacts
from service.attacking import Attacks
from service.batching import Batcher
from service.config import Settings
from service.guard import Guard
from service.images import Preprocessing
from service.inference import InferenceModel, Operation
from service.samples import Sample
from service.shared_guard import SharedGuard


@dataclass
class Endpoint:
    """An operation, the batcher that runs its ``predict``, and how its images are decoded (at its model's input
    shape)."""

    operation: Operation
    batcher: Batcher
    preprocessing: Preprocessing

    async def answer(self, images: list[torch.Tensor], is_batch: bool, encode: Any = None) -> Any:
        """One encoded result per image (``encode`` defaults to the operation's): a list for a batch, else one."""
        started = time.perf_counter()
        results = await self.batcher.submit(images)
        latency_ms = (time.perf_counter() - started) * 1000
        out = [(encode or self.operation.encode)(result, latency_ms) for result in results]
        return out if is_batch else out[0]


@dataclass
class Served:
    """One dataset as served: its artifacts and model, with an endpoint per operation and model."""

    artifacts: DatasetArtifacts
    model: InferenceModel
    classify: Endpoint
    purify: dict[str, Endpoint]
    defend: dict[str, Endpoint]
    compose: dict[str, Endpoint]  # ?purifier= before the classifier, for purifiers without a named pipeline

    def endpoints(self) -> list[Endpoint]:
        return [self.classify, *self.purify.values(), *self.defend.values(), *self.compose.values()]


@dataclass
class Runtime:
    """What the lifespan loads and the routes read; ``ready`` once everything is loaded and warm."""

    settings: Settings
    served: dict[str, Served] = field(default_factory=dict)
    attacks: Attacks | None = None
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    ready: bool = False
    guard: Guard | SharedGuard = field(init=False)

    def __post_init__(self) -> None:
        self.guard = SharedGuard(self.settings) if self.settings.redis_url else Guard(self.settings)

    def names(self, attribute: str) -> list[str]:
        """Every served purifier (``purify``) or pipeline (``defend``) name, over all datasets."""
        return sorted({name for served in self.served.values() for name in getattr(served, attribute)})
