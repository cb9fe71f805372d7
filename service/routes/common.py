"""What every model route does once its inputs are valid: submit, await, time, encode in order."""

import time
from collections.abc import Callable
from typing import Any

from service.deps import Images, Served


async def answer(served: Served, images: Images, operation: str, encode: Callable[[Any, float], Any]) -> Any:
    """One encoded result per image: a list for a JSON batch, else the single result."""
    started = time.perf_counter()
    results = await served.batchers[operation].submit(images.tensors)
    latency_ms = (time.perf_counter() - started) * 1000
    out = [encode(result, latency_ms) for result in results]
    return out if images.is_batch else out[0]
