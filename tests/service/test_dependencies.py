"""One way in: every request takes FastAPI's own routing, so a dependency added the way FastAPI's docs show (for
the whole app, or when a router is included) runs on every API route, before the route's own checks."""

from collections.abc import Callable, Iterator

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from service.routes import api_router
from tests.service.tiny_artifacts import brightness_png


def recorder(calls: list[str]) -> Callable:
    async def record(request: Request) -> None:
        calls.append(request.url.path)

    return record


def api_operations(app: FastAPI, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every (method, path) of the API routes, from the app's own OpenAPI document."""
    for path, operations in app.openapi()["paths"].items():
        if path.startswith(prefix) and path != "/metrics":
            for method in operations:
                yield method.upper(), path


def call_each(client: TestClient, operations: list[tuple[str, str]]) -> None:
    for method, path in operations:
        body = {"content": brightness_png(3), "headers": {"content-type": "image/png"}} if method == "POST" else {}
        response = client.request(method, path.replace("{name}", "x"), **body)
        assert response.status_code < 500, (method, path, response.text)


def test_a_global_dependency_runs_on_every_api_route(settings: Settings) -> None:
    calls: list[str] = []
    app = create_app(settings, dependencies=[Depends(recorder(calls))])
    with TestClient(app) as client:
        operations = list(api_operations(app))
        assert {path for _, path in operations} >= {"/classify", "/purify", "/defended-classify", "/models"}
        call_each(client, operations)
    assert [path.replace("{name}", "x") for _, path in operations] == calls


@pytest.mark.parametrize("prefix", ["/v2"])
def test_an_include_time_dependency_runs_on_every_route_of_that_router(settings: Settings, prefix: str) -> None:
    calls: list[str] = []
    app = create_app(settings)
    app.include_router(api_router, prefix=prefix, dependencies=[Depends(recorder(calls))])
    with TestClient(app) as client:
        shipped = [(method, path) for method, path in api_operations(app) if not path.startswith(prefix)]
        call_each(client, shipped)  # the API as shipped: the dependency is not theirs
        assert calls == []
        operations = list(api_operations(app, prefix))
        assert {path for _, path in operations} >= {f"{prefix}/classify", f"{prefix}/defended-classify"}
        call_each(client, operations)
    assert [path.replace("{name}", "x") for _, path in operations] == calls
