"""Concurrency over real HTTP: micro-batching under 200 concurrent requests; a flood gets 503 and recovers."""

import asyncio
import re
import time

from service.inference import Classify, Defend, metric_label
from tests.e2e.conftest import REAL_ARTIFACTS
from tests.service.tiny_artifacts import brightness_png
from tests.support.client import AsyncPurifierClient, PurifierClient, ServiceHTTPError


def _batches(metrics: str, batcher: str) -> tuple[float, float]:
    """(batches of size 1, all batches) for one batcher, from the Prometheus text."""

    def value(pattern: str) -> float:
        match = re.search(pattern, metrics)
        return float(match.group(1)) if match else 0.0

    ones = value(rf'purifier_batch_size_bucket{{batcher="{batcher}",le="1\.0"}} (\S+)')
    total = value(rf'purifier_batch_size_count{{batcher="{batcher}"}} (\S+)')
    return ones, total


def test_200_concurrent_requests_are_batched_and_all_correct(tiny_server: str) -> None:
    levels = [i % 10 for i in range(200)]

    async def main() -> list:
        async with AsyncPurifierClient(tiny_server, api_key="e2e-key") as client:
            return await asyncio.gather(*(client.defended_classify(brightness_png(level)) for level in levels))

    results = asyncio.run(main())
    assert [r.label for r in results] == levels
    with PurifierClient(tiny_server, api_key="e2e-key") as client:
        ones, total = _batches(client.metrics(), metric_label("mnist", Defend.kind, "autoencoder"))
    assert total > ones, "no batch larger than 1"


def test_a_flood_beyond_the_queue_gets_503_quickly_then_recovers(slow_server: str) -> None:
    async def one(client: AsyncPurifierClient) -> tuple[int, float, str | None]:
        started = time.perf_counter()
        try:
            await client.classify(brightness_png(3))
            return 200, time.perf_counter() - started, None
        except ServiceHTTPError as error:
            return error.status_code, time.perf_counter() - started, error.retry_after

    async def flood() -> list[tuple[int, float, str | None]]:
        async with AsyncPurifierClient(slow_server, timeout=60) as client:
            return await asyncio.gather(*(one(client) for _ in range(150)))

    outcomes = asyncio.run(flood())
    refused = [(seconds, retry) for status, seconds, retry in outcomes if status == 503]
    assert refused, "the flood never filled the queue"
    assert {status for status, _, _ in outcomes} <= {200, 503}
    assert all(retry == "1" for _, retry in refused)
    assert sorted(seconds for seconds, _ in refused)[len(refused) // 2] < 2.0
    with PurifierClient(slow_server) as client:
        assert client.classify(brightness_png(7)).label == 7
        assert 'purifier_rejections_total{reason="overloaded"}' in client.metrics()


def test_200_concurrent_requests_on_the_committed_artifacts(real_server: str) -> None:
    with PurifierClient(real_server) as client:
        datasets = list(client.models().datasets)
    dataset = datasets[0]
    samples = sorted((REAL_ARTIFACTS / dataset / "samples").glob("*.png"))
    pngs = [samples[i % len(samples)].read_bytes() for i in range(200)]
    with PurifierClient(real_server) as client:
        expected = {png: client.classify(png, dataset=dataset).label for png in set(pngs)}

    async def main() -> list:
        async with AsyncPurifierClient(real_server, timeout=60) as client:
            return await asyncio.gather(*(client.classify(png, dataset=dataset) for png in pngs))

    assert [r.label for r in asyncio.run(main())] == [expected[png] for png in pngs]
    with PurifierClient(real_server) as client:
        ones, total = _batches(client.metrics(), metric_label(dataset, Classify.kind))
    assert total > ones, "no batch larger than 1"
