"""Budgets and the query-attack detector in Redis (``PURIFIER_REDIS_URL``): one state for every worker and replica.

A request is admitted by one script call (``guard.lua``): one round trip, atomic per client, on Redis's clock,
pipelined over one connection per process (``service.resp``). A lone image's round trip runs beside its model pass
(``beside_model``): no answer leaves before Redis admits it, and a refused one is dropped. Once Redis refuses a
client a lone image, this process refuses it locally, with no round trip and no model, until that image is due.
The script applies the rules of ``Budgets`` and ``QueryDetector``; its keys expire once they no longer matter
(a bucket once full again, a history once out of the window), so Redis holds only the clients active lately.

Redis unreachable: the service fails closed. A model request is answered 503 ``state_unavailable`` with
``Retry-After`` and a JSON body, within ``redis_timeout_s``, and counted; nothing is admitted unchecked. The
routes that run no model keep answering. Once Redis answers again, the next request uses it.
"""

import logging
import time
from importlib.resources import files

import numpy as np
import torch

from service.config import Settings
from service.errors import StateUnavailable
from service.guard import Client, flag, over_budget
from service.metrics import SHARED_STATE_ERRORS
from service.querydetector import GRID, Verdict, fingerprints
from service.resp import RedisReplyError, RedisUnavailable, ScriptClient

logger = logging.getLogger(__name__)
SCRIPT = files("service").joinpath("guard.lua").read_text()
PREFIX = "purifier"


def keys(client: str) -> list[str]:
    """The client's bucket, history and flag; one hash tag, so a Redis Cluster keeps them on one node."""
    return [f"{PREFIX}:{{{client}}}:{name}" for name in ("budget", "queries", "flagged")]


def packed(images: list[torch.Tensor]) -> tuple[int, bytes]:
    """Cells per fingerprint, and each image's digest (8 bytes) then its cells, back to back."""
    prints = fingerprints(images)
    rows = np.concatenate([prints.digests.astype(">i8").view(np.uint8).reshape(-1, 8), prints.cells], axis=1)
    return prints.cells.shape[1], rows.tobytes()


class SharedGuard:
    """``Guard``'s budgets and detector, kept in Redis."""

    def __init__(self, settings: Settings) -> None:
        self.mode, self.settings = settings.query_defense, settings
        self.script = ScriptClient(settings.redis_url.get_secret_value(), SCRIPT, settings.redis_timeout_s)
        self.refused: dict[str, float] = {}  # client -> when its next image is due (time.monotonic)

    def beside_model(self, images: int) -> bool:
        """A lone image outside ``block`` mode is admitted while the model runs: the round trip then adds no
        latency, and a refusal costs at most one model pass before the local refusals take over. A batch, or a
        query that ``block`` mode may refuse, is admitted before any model runs."""
        return images == 1 and self.mode != "block"

    async def admit(self, client: Client, images: list[torch.Tensor]) -> bool:
        """``Guard.admit``, in one round trip (the detector's verdict comes with the budget's, so nothing is left
        to screen beside the model), or none for a client refused locally (``refuse_until``)."""
        s = self.settings
        due = self.refused.get(client.id)
        if due is not None:
            if (wait := due - time.monotonic()) > 0:
                raise over_budget(s.client_rate, s.client_burst, wait)
            del self.refused[client.id]
        detect = self.mode != "off"
        size, prints = packed(images) if detect else (GRID * GRID, b"")
        args = [len(images), s.client_rate, s.client_burst, int(detect), s.query_history, s.query_window_s,
                s.query_distance * size, s.query_matches, s.query_threshold, size, prints]
        try:
            granted, wait, _, flagged, newly, count = await self.script.run(keys(client.id), args)
        except (RedisUnavailable, RedisReplyError) as exc:  # unreachable, late, or refusing (OOM, LOADING, BUSY)
            SHARED_STATE_ERRORS.inc()
            logger.warning("shared client state unavailable (%s): request refused", exc)
            raise StateUnavailable(
                "the shared client state is unavailable; retry shortly", headers={"Retry-After": "1"}
            ) from None
        if not granted:
            if len(images) == 1:  # no query fits before then: a batch's wait is for more than one image
                self.refuse_until(client.id, float(wait))
            raise over_budget(s.client_rate, s.client_burst, float(wait))
        return flag(Verdict(bool(flagged), bool(newly), int(count)), len(images), self.mode, s.query_window_s)

    def refuse_until(self, client: str, wait: float) -> None:
        """Refuse the client locally for ``wait`` seconds. At most ``max_clients`` are remembered: past that, the
        refusals already due go first, then the oldest."""
        now = time.monotonic()
        if len(self.refused) >= self.settings.max_clients:
            self.refused = {other: due for other, due in self.refused.items() if due > now}
            while len(self.refused) >= self.settings.max_clients:
                del self.refused[next(iter(self.refused))]
        self.refused[client] = now + wait

    async def close(self) -> None:
        await self.script.close()
