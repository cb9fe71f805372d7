"""Dynamic micro-batching: collect up to ``max_batch_size`` items or ``max_wait_s``, run off the loop."""

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from service.errors import InferenceTimeout, Overloaded

logger = logging.getLogger(__name__)
Item = TypeVar("Item")
Result = TypeVar("Result")


class BatchObserver(Protocol):
    """Fixed points the batcher reports; implementations must not raise into requests."""

    def queue_depth(self, name: str, depth: int) -> None: ...
    def batch_done(self, name: str, size: int, queue_wait_s: float, predict_s: float) -> None: ...


@dataclass
class _Pending(Generic[Item]):
    item: Item
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


class Batcher(Generic[Item, Result]):
    """One queue and one worker task; ``predict`` maps a list of items to one result each."""

    def __init__(
        self,
        name: str,
        predict: Callable[[list[Item]], Sequence[Result]],
        *,
        max_batch_size: int,
        max_wait_s: float,
        max_queue_size: int,
        timeout_s: float,
        retry_after_s: int = 1,
        executor: Executor | None = None,
        observer: BatchObserver | None = None,
    ) -> None:
        self.name = name
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_queue_size = max_queue_size
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._executor = executor
        self._observer = observer
        self._queue: asyncio.Queue[_Pending[Item]] = asyncio.Queue()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"batcher-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.future.done():
                pending.future.set_exception(self._overloaded("the service is shutting down"))

    async def submit(self, items: Sequence[Item]) -> list[Result]:
        """Enqueue every item at once (or none: 503 when they do not fit) and await the results in order."""
        if self._task is None or self._task.done():
            raise self._overloaded(f"the batcher for {self.name} is not running")
        if self._queue.qsize() + len(items) > self.max_queue_size:
            raise self._overloaded(f"queue for {self.name} is full ({self.max_queue_size} items)")
        loop = asyncio.get_running_loop()
        futures = []
        for item in items:
            future = loop.create_future()
            self._queue.put_nowait(_Pending(item, future))
            futures.append(future)
        self._notify("queue_depth", self.name, self._queue.qsize())
        try:
            return list(await asyncio.wait_for(asyncio.gather(*futures), self.timeout_s))
        except TimeoutError as exc:
            raise InferenceTimeout(f"{self.name} did not answer within {self.timeout_s} s") from exc

    async def _collect(self) -> list[_Pending[Item]]:
        batch = [await self._queue.get()]
        deadline = time.perf_counter() + self.max_wait_s
        while len(batch) < self.max_batch_size:
            remaining = deadline - time.perf_counter()
            if remaining <= 0 and self._queue.empty():
                break
            try:
                batch.append(
                    self._queue.get_nowait() if remaining <= 0 else await asyncio.wait_for(self._queue.get(), remaining)
                )
            except TimeoutError:
                break
        return [pending for pending in batch if not pending.future.done()]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            self._notify("queue_depth", self.name, self._queue.qsize())
            if not batch:
                continue
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self._predict, [p.item for p in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"{self.name}: predict returned {len(results)} results for {len(batch)} items")
            except Exception as exc:
                logger.exception("%s: batch of %d failed", self.name, len(batch))
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                continue
            finished = time.perf_counter()
            for pending, result in zip(batch, results, strict=True):
                if not pending.future.done():
                    pending.future.set_result(result)
            queue_wait = sum(started - p.enqueued for p in batch) / len(batch)
            self._notify("batch_done", self.name, len(batch), queue_wait, finished - started)

    def _overloaded(self, detail: str) -> Overloaded:
        return Overloaded(detail, headers={"Retry-After": str(self.retry_after_s)})

    def _notify(self, event: str, *args: Any) -> None:
        if self._observer is None:
            return
        try:
            getattr(self._observer, event)(*args)
        except Exception:
            logger.exception("metrics observer failed on %s", event)
