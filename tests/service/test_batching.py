import asyncio
import threading
import time

import pytest

from service.batching import Batcher
from service.errors import InferenceTimeout, Overloaded


class Recorder:
    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.depths: list[int] = []

    def queue_depth(self, name: str, depth: int) -> None:
        self.depths.append(depth)

    def batch_done(self, name: str, size: int, queue_wait_s: float, predict_s: float) -> None:
        self.sizes.append(size)


def make(predict, **overrides) -> Batcher:
    options = {"max_batch_size": 8, "max_wait_s": 0.02, "max_queue_size": 64, "timeout_s": 5.0, "observer": Recorder()}
    return Batcher("test", predict, **{**options, **overrides})


def run(coro):
    return asyncio.run(coro)


def held_until(release: threading.Event):
    """A predict that blocks its batch until ``release`` is set."""

    def predict(items):
        release.wait(5)
        return items

    return predict


def test_results_come_back_in_order_and_batched() -> None:
    async def main() -> None:
        batcher = make(lambda items: [item * 10 for item in items])
        batcher.start()
        results = await asyncio.gather(*(batcher.submit([i, i + 100]) for i in range(20)))
        await batcher.stop()
        assert results == [[i * 10, (i + 100) * 10] for i in range(20)]
        sizes = batcher._observer.sizes
        assert max(sizes) > 1 and max(sizes) <= 8 and sum(sizes) == 40

    run(main())


def test_a_lone_request_waits_at_most_max_wait() -> None:
    async def main() -> None:
        batcher = make(lambda items: items, max_wait_s=0.05)
        batcher.start()
        started = time.perf_counter()
        assert await batcher.submit(["x"]) == ["x"]
        assert time.perf_counter() - started < 1.0
        await batcher.stop()

    run(main())


def test_full_queue_is_refused_immediately_with_retry_after() -> None:
    release = threading.Event()

    async def main() -> None:
        batcher = make(held_until(release), max_batch_size=1, max_queue_size=3, retry_after_s=2)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit([0]))
        await asyncio.sleep(0.05)  # the worker holds item 0; the queue is empty again
        waiting = asyncio.ensure_future(batcher.submit([1, 2, 3]))
        await asyncio.sleep(0)
        started = time.perf_counter()
        with pytest.raises(Overloaded) as refused:
            await batcher.submit([4])
        assert time.perf_counter() - started < 0.1
        assert refused.value.headers == {"Retry-After": "2"}
        release.set()
        assert await first == [0] and await waiting == [1, 2, 3]
        assert await batcher.submit([5]) == [5]  # recovered
        await batcher.stop()

    run(main())


def test_timeout_answers_the_waiter_and_the_batcher_survives() -> None:
    release = threading.Event()

    async def main() -> None:
        batcher = make(held_until(release), timeout_s=0.1)
        batcher.start()
        with pytest.raises(InferenceTimeout):
            await batcher.submit([1])
        release.set()
        batcher.timeout_s = 5.0
        assert await batcher.submit([2]) == [2]
        await batcher.stop()

    run(main())


@pytest.mark.parametrize("predict", [lambda items: 1 / 0, lambda items: items[:-1]], ids=["raises", "short"])
def test_a_failed_batch_answers_every_waiter(predict) -> None:
    async def main() -> None:
        batcher = make(predict)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit([i]) for i in range(5)), return_exceptions=True)
        assert all(isinstance(r, Exception) for r in results)
        await batcher.stop()

    run(main())


def test_a_failing_observer_never_fails_a_request() -> None:
    class Broken(Recorder):
        def batch_done(self, *args) -> None:
            raise RuntimeError("metrics down")

    async def main() -> None:
        batcher = make(lambda items: items, observer=Broken())
        batcher.start()
        assert await batcher.submit([1, 2]) == [1, 2]
        await batcher.stop()

    run(main())


def test_submit_before_start_is_refused_with_retry_after() -> None:
    with pytest.raises(Overloaded) as refused:
        run(make(lambda items: items, retry_after_s=3).submit([1]))
    assert refused.value.headers == {"Retry-After": "3"}
