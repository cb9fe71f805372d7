"""No answer leaves unadmitted. Where the guard allows it (a lone image, its state in Redis), the admission runs
beside the model pass instead of before it, and an answer the guard then refuses is dropped."""

import asyncio
import base64
import threading
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from service.errors import RateLimited
from service.state import Endpoint
from tests.service.tiny_artifacts import brightness_png

PNG = {"content-type": "image/png"}
ROUTES = ["/classify", "/defended-classify", "/purify"]


class Beside:
    """A guard that decides only once the request's model work is under way (or after a second): a route that
    awaited it before starting the model would find the model not started."""

    def __init__(self, verdict: bool | None) -> None:
        self.verdict = verdict  # flagged or not; None refuses
        self.answering, self.cancelled = threading.Event(), threading.Event()
        self.saw_answering: list[bool] = []

    def beside_model(self, images: int) -> bool:
        return images == 1

    async def admit(self, client, images) -> bool:
        if self.beside_model(len(images)):
            for _ in range(200):
                if self.answering.is_set():
                    break
                await asyncio.sleep(0.005)
        self.saw_answering.append(self.answering.is_set())
        if self.verdict is None:
            raise RateLimited("over the query budget", headers={"Retry-After": "1"})
        return self.verdict

    async def close(self) -> None:
        pass


Serving = tuple[TestClient, Beside]


@pytest.fixture
def guarded(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[bool | None], Serving]]:
    """Serves the app with its guard replaced by ``Beside``; every endpoint's answer tells the guard it started."""
    opened: list[TestClient] = []

    def serve(verdict: bool | None) -> Serving:
        guard, answer = Beside(verdict), Endpoint.answer

        async def marked(self, *args, **kwargs):
            guard.answering.set()
            try:
                if guard.verdict is None:  # a slow model pass, which a refusal cancels
                    await asyncio.sleep(2)
            except asyncio.CancelledError:
                guard.cancelled.set()
                raise
            return await answer(self, *args, **kwargs)

        monkeypatch.setattr(Endpoint, "answer", marked)
        opened.append(TestClient(create_app(settings)).__enter__())
        opened[-1].app.state.runtime.guard = guard
        return opened[-1], guard

    yield serve
    for client in opened:
        client.__exit__(None, None, None)


@pytest.mark.parametrize("route", ROUTES)
def test_a_lone_images_admission_runs_beside_its_model_pass(guarded, route: str) -> None:
    client, guard = guarded(False)
    answer = client.post(route, content=brightness_png(3), headers=PNG)
    assert answer.status_code == 200 and guard.saw_answering == [True]
    assert "x-query-attack" not in answer.headers


@pytest.mark.parametrize("route", ROUTES)
def test_an_answer_the_guard_refuses_is_dropped(guarded, route: str) -> None:
    client, guard = guarded(None)
    refused = client.post(route, content=brightness_png(3), headers=PNG)
    assert guard.saw_answering == [True] and guard.cancelled.wait(1)  # the model's work started, then was dropped
    assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
    assert refused.headers["retry-after"] == "1" and refused.headers["content-type"] == "application/json"


@pytest.mark.parametrize("route", ROUTES)
def test_a_flagged_clients_answer_carries_the_header_either_way(guarded, route: str) -> None:
    client, guard = guarded(True)
    lone = client.post(route, content=brightness_png(3), headers=PNG)
    batch = client.post(route, json={"images": [base64.b64encode(brightness_png(1)).decode()] * 2})
    assert lone.status_code == batch.status_code == 200
    assert lone.headers["x-query-attack"] == batch.headers["x-query-attack"] == "suspected"


@pytest.mark.parametrize("route", ROUTES)
def test_a_batch_is_admitted_before_any_model_runs(guarded, route: str) -> None:
    client, guard = guarded(None)
    batch = client.post(route, json={"images": [base64.b64encode(brightness_png(1)).decode()] * 2})
    assert batch.status_code == 429 and guard.saw_answering == [False]
