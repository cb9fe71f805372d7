"""Per-client query budgets: a token bucket per client, refilled at ``rate`` images per second up to ``burst``."""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from service.clients import BoundedTable


@dataclass
class Bucket:
    tokens: float
    updated: float


class Budgets:
    """``take(client, n)`` spends ``n`` images of the client's budget, or says how long until it could.

    Refused requests spend nothing, so a client that waits ``Retry-After`` seconds gets through. A client
    evicted from the table comes back with a full bucket: ``capacity`` must exceed the clients active
    within ``burst / rate`` seconds for the budget to hold against address rotation.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        capacity: int,
        clock: Callable[[], float] = time.monotonic,
        on_evict: Callable[[str], None] | None = None,
    ) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.table: BoundedTable[Bucket] = BoundedTable(capacity, lambda: Bucket(float(burst), clock()), on_evict)

    def _refilled(self, client: str) -> Bucket:
        bucket, now = self.table.get(client), self.clock()
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        return bucket

    def take(self, client: str, n: int = 1) -> tuple[float, float]:
        """``(wait, left)``: wait is 0.0 when the ``n`` images were granted, else the seconds until they would
        be (a request over ``burst`` waits for a full bucket and is still refused: split it); left is the
        budget that remains."""
        bucket = self._refilled(client)
        if bucket.tokens >= n:
            bucket.tokens -= n
            return 0.0, bucket.tokens
        return (min(n, self.burst) - bucket.tokens) / self.rate, bucket.tokens


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))
