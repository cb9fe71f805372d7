"""A stateful detector of query attacks (after Chen, Carlini & Wagner 2019, "Stateful Detection of Black-Box
Adversarial Attacks", and Blacklight, Li et al. 2022).

Black-box attacks probe one image many times: Square's random search sends the current best image plus one
new square, HopSkipJump sends a boundary point plus small noise. So an attacking client's queries are
near-duplicates of its recent ones, while a benign client mostly sends different images.

Each preprocessed input becomes a fingerprint: its mean over a ``grid``×``grid`` grid of cells, on the 8-bit
scale (64 bytes for 32×32 grey images). A query is a near-duplicate when some fingerprint the client sent
within ``window_s`` seconds, among its last ``history``, is within ``distance`` (mean absolute difference per
cell, 8-bit units) of at least ``matches`` of them: one benign edit of an image (a crop, a brightness
change) is close to that one image only, while attack probes are close to many. A client is flagged while at least ``threshold`` of those kept queries are
near-duplicates. An exact copy of a kept image (same pixels) is a retry, not a near-duplicate: it teaches
an attacker nothing, and users resend. Averaging cells keeps the fingerprint stable under the small, scattered changes attacks
make, and the distance test costs one vectorised pass over at most ``history`` × 64 bytes per image.
"""

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch

from service.clients import BoundedTable

GRID = 8


@dataclass(frozen=True)
class Fingerprints:
    cells: np.ndarray  # (n, C·grid²) uint8 cell means
    digests: np.ndarray  # (n,) int64 hashes of the 8-bit pixels, to tell retries from near-duplicates (the same
    # in every process: a retry sent to another worker or replica is still a retry)

    def slice(self, start: int, stop: int) -> "Fingerprints":
        return Fingerprints(self.cells[start:stop], self.digests[start:stop])


@lru_cache(maxsize=8)
def pooling(size: int, grid: int) -> np.ndarray:
    """``(grid, size)``: row ``i`` averages the pixels of cell ``i``, with adaptive pooling's cell bounds."""
    matrix = np.zeros((grid, size), np.float32)
    for i in range(grid):
        start, end = (i * size) // grid, -((-(i + 1) * size) // grid)
        matrix[i, start:end] = 1 / (end - start)
    return matrix


def fingerprints(images: Sequence[torch.Tensor], grid: int = GRID) -> Fingerprints:
    """``(C, H, W)`` CPU images in [0, 1] (a list, or an ``(n, C, H, W)`` batch) to their fingerprints. NumPy
    all the way: on arrays this small, each torch call (even ``torch.stack``) costs more than the arithmetic.
    Cell means are two small matrix products."""
    levels = np.rint(np.stack([image.numpy() for image in images]) * 255)  # the 8-bit values, as float32
    n, _, height, width = levels.shape
    cells = np.rint(pooling(height, grid) @ levels @ pooling(width, grid).T).astype(np.uint8).reshape(n, -1)
    pixels = levels.astype(np.uint8).reshape(n, -1)
    digests = b"".join(hashlib.blake2b(row.tobytes(), digest_size=8).digest() for row in pixels)
    return Fingerprints(cells, np.frombuffer(digests, np.int64))


@dataclass
class History:
    """One client's last ``history`` fingerprints (a ring), when each came, and which were near-duplicates."""

    prints: np.ndarray
    digests: np.ndarray
    times: np.ndarray
    near: np.ndarray
    next: int = 0
    flagged: bool = False

    @classmethod
    def empty(cls, history: int, size: int) -> "History":
        zeros = np.zeros(history, np.int64)
        return cls(np.zeros((history, size), np.uint8), zeros, np.full(history, -np.inf), np.zeros(history, bool))


@dataclass(frozen=True)
class Verdict:
    flagged: bool
    newly_flagged: bool
    near_duplicates: int


@dataclass
class QueryDetector:
    """Per-client histories in a ``BoundedTable`` of ``capacity`` clients (each about ``history`` × 81 bytes)."""

    history: int
    window_s: float
    distance: float
    threshold: int
    capacity: int
    matches: int = 2
    clock: Callable[[], float] = time.monotonic
    table: BoundedTable[History] = field(init=False)

    def __post_init__(self) -> None:
        self.table = BoundedTable(self.capacity, lambda: History.empty(self.history, GRID * GRID))

    def flagged(self, client: str) -> bool:
        """Was ``client`` flagged at its last query? (Neither creates nor refreshes its history.)"""
        state = self.table.peek(client)
        return state is not None and state.flagged

    def observe(self, client: str, prints: Fingerprints) -> Verdict:
        """Record the client's new queries (one fingerprint per image, in order); is it flagged now?"""
        size, now = prints.cells.shape[1], self.clock()
        state = self.table.get(client)
        if state.prints.shape[1] != size:  # another dataset's input shape: a fresh history
            state = History.empty(self.history, size)
            self.table.put(client, state)
        cutoff, limit = now - self.window_s, self.distance * size
        recent, kept = state.times > cutoff, state.prints.astype(np.int16)
        for cells, digest in zip(prints.cells.astype(np.int16), prints.digests, strict=True):
            near = False
            if recent.any() and not (recent & (state.digests == digest)).any():
                gaps = np.abs(kept - cells).sum(axis=1)
                near = np.count_nonzero(recent & (gaps <= limit)) >= self.matches
            slot = state.next % self.history
            state.prints[slot], state.digests[slot], state.times[slot], state.near[slot] = cells, digest, now, near
            kept[slot], recent[slot] = cells, True
            state.next += 1
        count = int(np.count_nonzero(state.near & recent))
        was, state.flagged = state.flagged, count >= self.threshold
        return Verdict(state.flagged, state.flagged and not was, count)
