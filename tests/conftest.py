"""Fixtures shared by the service and end-to-end tests: tiny exported artifacts, settings on them, a TestClient."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from tests.service.tiny_artifacts import write_artifacts
from loadtest.redis_server import RedisServer


@pytest.fixture(scope="session")
def tiny_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mnist/`` and ``fashion-mnist/`` artifact folders made from tiny TorchScript models."""
    return write_artifacts(tmp_path_factory.mktemp("artifacts"))


@pytest.fixture
def settings(tiny_artifacts: Path) -> Settings:
    return Settings(artifacts_dir=tiny_artifacts, max_wait_ms=2, max_body_bytes=256 * 1024, max_pixels=512 * 512)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app on the tiny artifacts, lifespan running (loaded, verified, warmed up)."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh, empty redis-server of the test's own."""
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


MEASURED: dict[str, dict] = {}


@pytest.fixture(scope="session")
def measured() -> dict[str, dict]:
    """Numbers the HTTP tests measure, printed in pytest's terminal summary."""
    return MEASURED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if MEASURED:
        terminalreporter.section("measured over HTTP")
        for name, numbers in MEASURED.items():
            terminalreporter.write_line(f"{name}: {json.dumps(numbers)}")
