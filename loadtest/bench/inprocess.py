"""Model time without HTTP, on the committed artifacts and sample images, with the service's thread setting.

``ae_vgg`` is the paper's measurement: one autoencoder and one VGG forward pass, at batch 1 and
amortized per image at batch 64. ``defend`` is what ``/defended-classify`` runs per batch, as the
settings configure it (with ``parallel_defend``, the raw images are classified on a second thread
while the purifier runs); ``defend_serial`` is the same on one thread (the purifier, then the
classifier on the raw and the purified images together, plus the distances), ``defend_forwards`` its
forward passes alone, and ``decode`` the PNG decoding of one request. Each case also gets its CPU time per
image (every thread of this process), what the model costs a server besides its wall time.
"""

import time
from collections.abc import Callable

import torch

from loadtest.bench.analysis import batch_sizes, defend_case
from loadtest.bench.pipeline import Pipeline
from loadtest.samples import Sample
from loadtest.stats import summarize


def _times_ms(run: Callable[[], object], repeats: int) -> tuple[list[float], float]:
    """Wall time of each call, and the process's CPU time over all of them (every thread), in ms."""
    times, cpu = [], time.process_time()
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return times, (time.process_time() - cpu) * 1000


def _per_batch(times_ms: list[float], cpu_ms: float, batch_size: int) -> dict[str, float]:
    """Latency percentiles of the call, its median per image (the amortized figure) and its CPU per image."""
    stats = summarize(times_ms)
    return {**stats, "batch_size": batch_size, "per_image_ms": stats["p50_ms"] / batch_size,
            "cpu_ms_per_image": cpu_ms / (len(times_ms) * batch_size)}


def measure(
    pipeline: Pipeline, samples: list[Sample], repeats: int, max_batch_size: int = 64, rounds: int = 10
) -> dict[str, dict[str, float]]:
    """Warm every shape first (TorchScript specializes on its first runs), then time ``repeats`` calls of each,
    interleaved in ``rounds`` (a drift in the machine's speed then moves every case alike, not one of them).
    ``defend`` is also timed at each power of two up to ``max_batch_size``, the largest batch the servers run
    (their ceiling): the model's CPU at the batches a server actually ran."""
    images = [pipeline.decode(sample.png) for sample in samples]
    one = torch.stack(images[:1])
    many = torch.stack([images[i % len(images)] for i in range(64)])
    artifacts = pipeline.model.artifacts
    purifier, classifier = artifacts.purifiers[pipeline.purifier], artifacts.classifier
    serial = pipeline.model.serial()

    def ae_vgg(batch: torch.Tensor) -> Callable[[], object]:
        def run() -> object:
            with torch.inference_mode():
                return classifier(purifier(batch)).tolist()

        return run

    def forwards(batch: torch.Tensor) -> object:
        """The forward passes ``defend`` makes: the purifier on the batch, the classifier on twice as many."""
        with torch.inference_mode():
            return classifier(torch.cat([batch, purifier(batch)])).tolist()

    cases = {
        "decode": (lambda: pipeline.decode(samples[0].png), 1, repeats),
        "ae_vgg_batch1": (ae_vgg(one), 1, repeats),
        "ae_vgg_batch64": (ae_vgg(many), 64, max(repeats // 10, 5)),
        "defend_forwards_batch1": (lambda: forwards(one), 1, repeats),
        "defend_batch1": (lambda: pipeline.defend(images[:1]), 1, repeats),
        "defend_batch64": (lambda: pipeline.defend(list(many)), 64, max(repeats // 10, 5)),
        **{
            defend_case(size): (lambda size=size: pipeline.defend(list(many[:size])), size, max(repeats * 2 // size, 5))
            for size in batch_sizes(max_batch_size)
        },
        "defend_serial_batch1": (lambda: serial.defend(images[:1], pipeline.operation.name), 1, repeats),
        "defend_serial_batch64": (lambda: serial.defend(list(many), pipeline.operation.name), 64, max(repeats // 10, 5)),
    }
    for run, _, _ in cases.values():
        _times_ms(run, 10)
    times: dict[str, list[float]] = {name: [] for name in cases}
    cpu = dict.fromkeys(cases, 0.0)
    for _ in range(rounds):
        for name, (run, _, count) in cases.items():
            wall, spent = _times_ms(run, max(count // rounds, 1))
            times[name] += wall
            cpu[name] += spent
    return {name: _per_batch(times[name], cpu[name], size) for name, (_, size, _) in cases.items()}
