"""White-box attacks on the served classifier, with gradients, outside the batcher. Knows no HTTP.

The attack code is ``advattacks`` (the package training uses). It runs on the classifier artifact
loaded a second time without ``optimize_for_inference`` (whose frozen graph drops autograd), on a
bounded pool of threads: beyond ``limit`` attacks in flight a request is refused at once (503).
"""

import asyncio
import base64
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from advattacks import EOTPGD, Attack, build, defaults
from service import schemas
from service.artifacts import DatasetArtifacts, load_module, verified_bytes
from service.config import Settings
from service.errors import InvalidLabel, Overloaded
from service.images import encode_png
from service.inference import Prediction, encode_prediction, predictions

logger = logging.getLogger(__name__)
LEVELS = 255  # the 8-bit grid every image is decoded from and encoded to


@dataclass(frozen=True)
class AttackSpec:
    """Which attack, and its hyperparameters; ``None`` means the attack's own (the paper's) default."""

    name: str
    eps: float | None = None
    alpha: float | None = None
    steps: int | None = None

    def with_defaults(self) -> "AttackSpec":
        """Every hyperparameter the attack takes, unset ones filled from its constructor's defaults."""
        given = {key: value for key, value in vars(self).items() if key != "name" and value is not None}
        known = {key: value for key, value in defaults(self.name).items() if key in ("eps", "alpha", "steps")}
        return AttackSpec(self.name, **(known | given))

    def build(self, model: torch.nn.Module, eot: int = 1) -> Attack:
        """The attack on ``model``; with ``eot`` > 1, its EOT form (each gradient averaged over that many draws of
        the model's noise: FGSM becomes one EOT step of size eps)."""
        if eot == 1:
            return build(self.name, model, eps=self.eps, alpha=self.alpha, steps=self.steps)
        spec = self.with_defaults()
        steps, alpha = (1, spec.eps) if spec.name == "fgsm" else (spec.steps, spec.alpha)
        return EOTPGD(model, eps=spec.eps, alpha=alpha, steps=steps, eot_samples=eot, random_start=False)


@dataclass(frozen=True)
class Attacked:
    """One adversarial image, on the 8-bit grid inside the eps-ball around ``original``."""

    original: torch.Tensor
    image: torch.Tensor
    label: int
    before: Prediction
    after: Prediction
    l2: float
    linf: float


def quantize(adv: torch.Tensor, images: torch.Tensor, eps: float) -> torch.Tensor:
    """Round ``adv`` to the 1/255 grid, each pixel's change clipped to the largest whole step within ``eps``.

    Inputs come from 8-bit images, so the result encodes to PNG and decodes back bit for bit, and
    ``‖result − images‖∞ ≤ eps`` still holds. An eps below 1/255 leaves the image unchanged.
    """
    steps = int(eps * LEVELS + 1e-6)
    base = (images * LEVELS).round()
    delta = ((adv - images) * LEVELS).round().clamp(-steps, steps)
    return (base + delta).clamp(0, LEVELS) / LEVELS


class AttackModel:
    """One dataset's classifiers and purifiers with autograd, attacked by ``advattacks``: the manifest's classifier
    alone, or a whole pipeline (purifier, then classifier; EOT over the purifier's noise)."""

    def __init__(self, modules: dict[str, torch.jit.ScriptModule], artifacts: DatasetArtifacts) -> None:
        self.modules = modules
        self.manifest = artifacts.manifest
        self.device = artifacts.device
        self.num_classes = len(artifacts.manifest.class_names)

    @classmethod
    def load(cls, folder: Path, artifacts: DatasetArtifacts) -> "AttackModel":
        """Every model file, verified again and loaded plain (autograd intact), then warmed up."""
        modules = {}
        for name, entry in artifacts.manifest.models.items():
            data = verified_bytes(folder, artifacts.manifest, entry.file)
            modules[name] = load_module(data, folder / entry.file, artifacts.device, optimize=False)
        model = cls(modules, artifacts)
        prep = artifacts.preprocessing
        for spec in (AttackSpec("fgsm"), AttackSpec("pgd", steps=2)):
            model.attack([torch.rand(prep.channels, prep.height, prep.width)], spec)
        return model

    def target(self, pipeline: str | None) -> tuple[torch.nn.Module, bool]:
        """What the attack differentiates: the classifier, or the pipeline; and whether it is stochastic."""
        if pipeline is None:
            return self.modules[self.manifest.classifier], False
        purifier, classifier = self.manifest.pipeline_models(pipeline)
        if purifier is None:
            return self.modules[classifier], False
        return torch.nn.Sequential(self.modules[purifier], self.modules[classifier]), True

    def _predict(self, model: torch.nn.Module, batch: torch.Tensor) -> list[Prediction]:
        with torch.no_grad():
            return predictions(model, batch)

    def attack(
        self, images: list[torch.Tensor], spec: AttackSpec, label: int | None = None, pipeline: str | None = None,
        eot: int = 8,
    ) -> list[Attacked]:
        """Attack every image away from ``label`` (default: each image's predicted label), against the manifest's
        classifier or, with ``pipeline``, against that pipeline (``eot`` noise draws per gradient)."""
        if label is not None and not 0 <= label < self.num_classes:
            raise InvalidLabel(f"label {label} is not a class index 0..{self.num_classes - 1}")
        spec = spec.with_defaults()
        model, stochastic = self.target(pipeline)
        batch = torch.stack(images).to(self.device)
        before = self._predict(model, batch)
        labels = [label if label is not None else p.label for p in before]
        adv = spec.build(model, eot if stochastic else 1)(batch, torch.tensor(labels, device=self.device))
        adv = quantize(adv, batch, spec.eps)
        after = self._predict(model, adv)
        steps = ((adv - batch) * LEVELS).round().double().flatten(1)  # whole 8-bit steps: exact distances
        l2, linf = (steps.norm(dim=1) / LEVELS).tolist(), (steps.abs().amax(dim=1) / LEVELS).tolist()
        originals, cpu = batch.cpu(), adv.cpu()
        return [
            Attacked(originals[i], cpu[i], labels[i], before[i], after[i], l2[i], linf[i]) for i in range(len(images))
        ]


def encode_attacked(
    result: Attacked, spec: AttackSpec, class_names: list[str], model: str, latency_ms: float, target: str
) -> schemas.AttackResponse:
    spec = spec.with_defaults()
    return schemas.AttackResponse(
        target=target,
        image=base64.b64encode(encode_png(result.image)).decode(),
        original_image=base64.b64encode(encode_png(result.original)).decode(),
        l2=result.l2,
        linf=result.linf,
        label=result.label,
        original=encode_prediction(result.before, class_names),
        adversarial=encode_prediction(result.after, class_names),
        attack=spec.name,
        eps=spec.eps,
        alpha=spec.alpha,
        steps=spec.steps,
        model=model,
        latency_ms=latency_ms,
    )


class AttackPool:
    """At most ``limit`` attacks at once, each on its own thread; one more is refused with 503 at once.

    A slot is freed when the attack's thread finishes, not when its request goes away, so clients
    that disconnect cannot pile up work behind the limit.
    """

    def __init__(self, limit: int, retry_after_s: int) -> None:
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.in_flight = 0
        self._executor = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="attack")

    async def run(self, model: AttackModel, images: list[torch.Tensor], spec: AttackSpec, label: int | None,
                  pipeline: str | None = None, eot: int = 8):
        if self.in_flight >= self.limit:
            raise Overloaded(
                f"{self.limit} attack(s) already running, the limit; retry later",
                headers={"Retry-After": str(self.retry_after_s)},
            )
        loop = asyncio.get_running_loop()
        self.in_flight += 1
        future: Future = self._executor.submit(model.attack, images, spec, label, pipeline, eot)
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self._release))
        return await asyncio.wrap_future(future)

    def _release(self) -> None:
        self.in_flight -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


@dataclass
class Attacks:
    """What ``POST /attack`` needs: one model per served dataset and the shared pool."""

    models: dict[str, AttackModel]
    pool: AttackPool


def build_attacks(settings: Settings, artifacts: dict[str, DatasetArtifacts]) -> Attacks:
    """An attack model per dataset (the classifier loaded again with autograd) and the bounded pool."""
    models = {name: AttackModel.load(settings.artifacts_dir / name, item) for name, item in artifacts.items()}
    logger.info("attacks ready for %s (at most %d at once)", ", ".join(models), settings.max_concurrent_attacks)
    return Attacks(models, AttackPool(settings.max_concurrent_attacks, settings.retry_after_s))
