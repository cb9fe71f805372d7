"""Budgets and the query-attack detector in Redis (``PURIFIER_REDIS_URL``): one state for every worker and replica.

A request is admitted by one script call (``guard.lua``): one round trip, atomic per client, on Redis's clock,
pipelined over one connection per process (``service.resp``).
The script applies the rules of ``Budgets`` and ``QueryDetector``; its keys expire once they no longer matter
(a bucket once full again, a history once out of the window), so Redis holds only the clients active lately.

Redis unreachable: the service fails closed. A model request is answered 503 ``state_unavailable`` with
``Retry-After`` and a JSON body, within ``redis_timeout_s``, and counted; nothing is admitted unchecked. The
routes that run no model keep answering. Once Redis answers again, the next request uses it.
"""

import logging
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

    async def admit(self, client: Client, images: list[torch.Tensor]) -> bool:
        """``Guard.admit``, in one round trip, before the model runs (the detector's verdict comes with the
        budget's, so nothing is left to screen beside the model)."""
        s = self.settings
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
            raise over_budget(s.client_rate, s.client_burst, float(wait))
        return flag(Verdict(bool(flagged), bool(newly), int(count)), len(images), self.mode, s.query_window_s)

    async def close(self) -> None:
        await self.script.close()
