"""Per client: the query budget, and the query-attack detector (``query_defense``); no answer leaves unadmitted.

``Guard`` keeps both in this process; ``service.shared_guard.SharedGuard`` keeps them in Redis for every worker and
replica. Both admit a request with ``admit`` and refuse it with the same errors."""

import asyncio
from dataclasses import dataclass
from itertools import groupby

import torch

from service.budgets import Budgets, retry_after
from service.config import Detail, Settings
from service.errors import QueryAttackSuspected, RateLimited
from service.metrics import CLIENT_BUDGET, FLAGGED_CLIENTS, FLAGGED_QUERIES, TRACKED_CLIENTS, forget_client
from service.querydetector import Fingerprints, QueryDetector, Verdict, fingerprints

FLAG_HEADER = {"X-Query-Attack": "suspected"}


@dataclass(frozen=True)
class Client:
    """Who is asking: ``key:<key id>`` with API keys on, else ``addr:<address>``; and what it may see."""

    id: str
    detail: Detail


class Guard:
    """Budgets (when ``client_rate`` > 0) and the detector (unless ``query_defense`` is ``off``), per client."""

    def __init__(self, settings: Settings) -> None:
        self.mode = settings.query_defense
        self._queued: list[tuple[Client, list[torch.Tensor]]] = []  # screened beside the model, in one pass
        self.tracked = {table: TRACKED_CLIENTS.labels(table) for table in ("budgets", "query_detector")}
        self.budgets = (
            Budgets(settings.client_rate, settings.client_burst, settings.max_clients, on_evict=forget_client)
            if settings.client_rate > 0
            else None
        )
        self.detector = (
            None
            if self.mode == "off"
            else QueryDetector(
                settings.query_history,
                settings.query_window_s,
                settings.query_distance,
                settings.query_threshold,
                settings.max_clients,
                settings.query_matches,
            )
        )

    def beside_model(self, images: int) -> bool:
        """Admitted before any model runs: the budget costs microseconds here, and ``screen_later`` already
        moves a lone image's screening beside the model."""
        return False

    async def admit(self, client: Client, images: list[torch.Tensor]) -> bool:
        """Charge the client's budget and show the images to the detector (now, or while the model runs:
        ``screen_later``); True when the client is flagged. Raises ``RateLimited`` or, in ``block`` mode,
        ``QueryAttackSuspected``."""
        self.charge(client, len(images))
        if self.screen_later(client, len(images)):
            self.screen_beside_model(client, images)
            return False
        return self.screen(client, images)

    async def close(self) -> None:
        """Nothing to release: the state lives and dies with the process."""

    def charge(self, client: Client, images: int) -> None:
        """Spend ``images`` of the client's budget; raises ``RateLimited`` when it is over."""
        if self.budgets is None:
            return
        wait, left = self.budgets.take(client.id, images)
        CLIENT_BUDGET.labels(client.id).set(left)
        self.tracked["budgets"].set(len(self.budgets.table))
        if wait:
            raise over_budget(self.budgets.rate, self.budgets.burst, wait)

    def screen_later(self, client: Client, images: int) -> bool:
        """May this query be screened while the model runs? Only a single image, in ``flag`` mode, from a client
        not flagged already (whose answer must carry the header): the detector's cost then hides behind the
        model's, and a client it tips over is flagged from the next answer on. A batch is screened first, so the
        header is never a whole batch late; so is every query in ``block`` mode, which must decide first."""
        return self.mode == "flag" and images == 1 and not self.detector.flagged(client.id)

    def screen_beside_model(self, client: Client, images: list[torch.Tensor]) -> None:
        """Queue the images for the detector, screened in one pass two turns of the event loop later: the
        request queues its batch in this turn, and in the next the batcher hands it to the inference thread, so
        the screening runs on the loop while the model runs on its thread, and a burst of requests costs one
        vectorised fingerprint."""
        self._queued.append((client, images))
        if len(self._queued) == 1:
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, self._screen_queued)

    def _screen_queued(self) -> None:
        """The queue in its order, one fingerprint pass per run of same-shaped images (datasets may differ)."""
        queued, self._queued = self._queued, []
        for _, run in groupby(queued, key=lambda item: item[1][0].shape):
            run = list(run)
            prints, start = fingerprints([image for _, images in run for image in images]), 0
            for client, images in run:
                self._record(client, prints.slice(start, start + len(images)))
                start += len(images)

    def screen(self, client: Client, images: list[torch.Tensor]) -> bool:
        """Record the client's queries with the detector (after any still queued, to keep their order); True
        when it is flagged (``flag`` mode). Raises ``QueryAttackSuspected`` for a flagged client in ``block``
        mode."""
        if self.detector is None:
            return False
        if self._queued:
            self._screen_queued()
        return self._record(client, fingerprints(images))

    def _record(self, client: Client, prints: Fingerprints) -> bool:
        verdict = self.detector.observe(client.id, prints)
        self.tracked["query_detector"].set(len(self.detector.table))
        return flag(verdict, len(prints.digests), self.mode, self.detector.window_s)


def over_budget(rate: float, burst: int, wait: float) -> RateLimited:
    return RateLimited(
        f"over the query budget of {rate:g} images/s (burst {burst})", headers={"Retry-After": retry_after(wait)}
    )


def flag(verdict: Verdict, images: int, mode: str, window_s: float) -> bool:
    """Count a flagged client's queries; True when flagged. Raises ``QueryAttackSuspected`` in ``block`` mode."""
    if not verdict.flagged:
        return False
    FLAGGED_CLIENTS.inc(verdict.newly_flagged)
    FLAGGED_QUERIES.inc(images)
    if mode == "block":
        raise QueryAttackSuspected(
            f"{verdict.near_duplicates} of this client's recent queries are near-duplicates of earlier ones",
            headers=FLAG_HEADER | {"Retry-After": retry_after(window_s)},
        )
    return True
