"""Direct dispatch answers every request exactly as FastAPI's own routing and dependency solving do."""

import base64
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import fastapi.routing
import pytest
import torch
from fastapi.testclient import TestClient
from pydantic import SecretStr

from service.app import create_app
from service.config import Settings
from service.dispatch import DirectRoutes
from tests.service.tiny_artifacts import brightness_png

KEY = "parity-key"
PNG = {"content-type": "image/png"}
_png = brightness_png(6)
_b64 = base64.b64encode(_png).decode()

# (method, path, query, headers, body): each answered by both apps and compared.
REQUESTS: list[tuple[str, str, dict, dict, Any]] = [
    ("POST", "/defended-classify", {}, PNG, _png),
    ("POST", "/defended-classify", {"dataset": "fashion-mnist"}, PNG, _png),
    ("POST", "/defended-classify", {"purifier": "autoencoder-fgsm"}, PNG, _png),
    ("POST", "/defended-classify", {"pipeline": "no-such-pipeline"}, PNG, _png),  # the route's own 422
    ("POST", "/defended-classify", {"pipeline": "bad name!"}, PNG, _png),  # the pattern fails: FastAPI's 422
    ("POST", "/defended-classify", {"dataset": "cifar10"}, PNG, _png),  # not a served literal
    ("POST", "/defended-classify", {"pipeline": "a", "purifier": "b"}, PNG, _png),
    ("POST", "/defended-classify", {}, {"content-type": "application/json"}, {"images": [_b64, _b64]}),
    ("POST", "/defended-classify", {}, {"content-type": "application/json"}, {"images": []}),
    ("POST", "/defended-classify", {}, {"content-type": "text/plain"}, b"hello"),
    ("POST", "/defended-classify", {}, PNG, b"not an image"),
    ("POST", "/defended-classify", {}, PNG, b""),
    ("POST", "/classify", {}, PNG, _png),
    ("POST", "/classify", {}, {"content-type": "application/octet-stream"}, _png),
    ("POST", "/purify", {}, PNG, _png),  # PNG out
    ("POST", "/purify", {}, {**PNG, "accept": "application/json"}, _png),
    ("POST", "/purify", {"purifier": "autoencoder-pgd"}, {**PNG, "accept": "application/json"}, _png),
    ("GET", "/models", {}, {}, None),
    ("GET", "/readyz", {}, {}, None),
    ("GET", "/samples", {"dataset": "mnist"}, {}, None),
    ("GET", "/defended-classify", {}, {}, None),  # a method the route does not take: 405 from FastAPI
    ("POST", "/defended-classify/", {}, PNG, _png),  # a path no plan has: FastAPI's router decides
]
KEYED: list[tuple[str, str, dict, dict, Any]] = [
    ("POST", "/defended-classify", {}, PNG, _png),  # no key: 401
    ("POST", "/defended-classify", {}, {**PNG, "x-api-key": "wrong"}, _png),
    ("POST", "/defended-classify", {}, {**PNG, "x-api-key": KEY}, _png),
    ("POST", "/classify", {}, {**PNG, "authorization": f"Bearer {KEY}"}, _png),
]


def _answer(client: TestClient, method: str, path: str, query: dict, headers: dict, body: Any) -> tuple:
    """Status, headers but the date, and the body with its timing (``latency_ms``) taken out. The tiny purifier's
    bottleneck is noisy: each request starts from the same seed."""
    torch.manual_seed(0)
    kwargs = {"json": body} if isinstance(body, dict) else {"content": body}
    response = client.request(method, path, params=query, headers=headers, **kwargs)
    kept = sorted((k, v) for k, v in response.headers.items() if k not in ("date", "content-length"))
    if response.headers.get("content-type") != "application/json":
        return response.status_code, kept, response.content
    content = response.json()
    for item in content if isinstance(content, list) else [content]:
        if isinstance(item, dict):
            item.pop("latency_ms", None)
    return response.status_code, kept, content


@pytest.fixture
def solves(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths FastAPI solved dependencies for: empty while every request took the direct path."""
    seen: list[str] = []
    original = fastapi.routing.solve_dependencies

    async def counted(**kwargs: Any) -> Any:
        seen.append(kwargs["request"].url.path)
        return await original(**kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    return seen


def _pair(settings: Settings) -> Iterator[tuple[TestClient, TestClient]]:
    with ExitStack() as stack:
        direct = stack.enter_context(TestClient(create_app(settings)))
        routed = stack.enter_context(TestClient(create_app(settings.model_copy(update={"direct_routes": False}))))
        yield direct, routed


@pytest.fixture
def pair(settings: Settings) -> Iterator[tuple[TestClient, TestClient]]:
    yield from _pair(settings)


@pytest.fixture
def keyed_pair(settings: Settings) -> Iterator[tuple[TestClient, TestClient]]:
    yield from _pair(settings.model_copy(update={"api_keys": (SecretStr(KEY),)}))


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: f"{r[0]} {r[1]} {r[2]} {str(r[4])[:20]}")
def test_direct_dispatch_answers_as_fastapi(pair: tuple[TestClient, TestClient], request_: tuple) -> None:
    direct, routed = pair
    assert _answer(direct, *request_) == _answer(routed, *request_)


@pytest.mark.parametrize("request_", KEYED, ids=lambda r: f"{r[1]} {sorted(r[3])}")
def test_direct_dispatch_checks_keys_as_fastapi(keyed_pair: tuple[TestClient, TestClient], request_: tuple) -> None:
    direct, routed = keyed_pair
    assert _answer(direct, *request_) == _answer(routed, *request_)


def test_valid_requests_skip_fastapis_dependency_solving(client: TestClient, solves: list[str]) -> None:
    for query in ({}, {"dataset": "fashion-mnist"}, {"purifier": "autoencoder-fgsm"}):
        assert client.post("/defended-classify", content=_png, headers=PNG, params=query).status_code == 200
    assert client.post("/classify", content=_png, headers=PNG).status_code == 200
    assert client.get("/models").status_code == 200
    assert solves == []
    # a parameter that fails validation goes to FastAPI, which answers with its own error
    invalid = client.post("/defended-classify", content=_png, headers=PNG, params={"pipeline": "bad name!"})
    assert invalid.status_code == 422
    assert solves == ["/defended-classify"]


def test_the_model_routes_are_planned_and_off_means_fastapi(settings: Settings, solves: list[str]) -> None:
    app = create_app(settings)
    stack = app.build_middleware_stack()
    while not isinstance(stack, DirectRoutes):
        stack = stack.app
    assert {("POST", "/defended-classify"), ("POST", "/classify"), ("POST", "/purify")} <= set(stack.plans)
    with TestClient(create_app(settings.model_copy(update={"direct_routes": False}))) as routed:
        assert routed.post("/classify", content=_png, headers=PNG).status_code == 200
    assert solves == ["/classify"]


def test_request_metrics_name_the_route_on_both_paths(pair: tuple[TestClient, TestClient]) -> None:
    direct, _ = pair

    def count() -> float:
        lines = direct.get("/metrics").text.splitlines()
        prefix = 'purifier_requests_total{endpoint="/defended-classify",method="POST",status="200"} '
        return next((float(line.removeprefix(prefix)) for line in lines if line.startswith(prefix)), 0.0)

    before = count()
    direct.post("/defended-classify", content=_png, headers=PNG)
    assert count() == before + 1
