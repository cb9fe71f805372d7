"""Real uvicorn servers for the reliability tests: one on tiny artifacts whose classifier can be made to fail,
one with a slow model and a small queue; helpers that read the server's own metrics."""

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.client import HEALTH, PurifierClient
from tests.e2e.conftest import serve
from tests.reliability import hostile
from tests.reliability.poisoned import write_poisoned_artifacts
from tests.service.tiny_artifacts import write_artifacts

KEY = "reliability-key-7f3a9c"
SLOW_WORK = 100  # 256x256 matmuls per batch in the slow classifier


@dataclass(frozen=True)
class Server:
    url: str
    log: Path
    settings: dict[str, str]

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"x-api-key": KEY}, timeout=30, **kwargs)


def metric(text: str, name: str, **labels: str) -> float:
    """One sample of the Prometheus text format (0 when absent)."""
    selector = ",".join(f'{key}="{value}"' for key, value in labels.items())
    match = re.search(rf"^{name}{{{re.escape(selector)}}} (\S+)$" if labels else rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def server_metrics(url: str) -> str:
    with PurifierClient(url, timeout=10) as client:
        client.send(HEALTH)
        return client.metrics()


def wait_for(condition: Callable[[], bool], timeout_s: float = 20, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached within {timeout_s} s")
        time.sleep(0.05)


def settled_fds(url: str, baseline: float, slack: int = 2) -> float:
    """The server's open descriptors once it has released closed connections; fails if they stay above baseline."""

    def fds() -> float:
        return metric(server_metrics(url), "process_open_fds")

    wait_for(lambda: fds() <= baseline + slack, 10, f"open file descriptors back to {baseline:.0f} (+{slack})")
    return fds()


@pytest.fixture(scope="session")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Tiny, poisonable artifacts; an API key; the limits the hostile corpus assumes; logs at debug level."""
    root = write_poisoned_artifacts(tmp_path_factory.mktemp("poisoned-artifacts"))
    log = tmp_path_factory.mktemp("hostile") / "server.log"
    settings = {
        "artifacts_dir": str(root),
        "max_wait_ms": "2",
        "max_body_bytes": str(hostile.MAX_BODY_BYTES),
        "max_pixels": str(hostile.MAX_PIXELS),
        "max_images_per_request": str(hostile.MAX_IMAGES),
        "body_timeout_s": "2",
        "api_keys": f'["{KEY}"]',
        "log_level": "debug",
    }
    with serve(log, **settings) as url:
        yield Server(url, log, settings)


def slow_settings(root: Path) -> dict[str, str]:
    return {
        "artifacts_dir": str(root),
        "max_batch_size": "4",
        "max_queue_size": "8",
        "retry_after_s": "2",
        "log_level": "info",
    }


@pytest.fixture(scope="session")
def slow_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_artifacts(tmp_path_factory.mktemp("slow-artifacts"), work=SLOW_WORK)


@pytest.fixture(scope="session")
def slow_server(tmp_path_factory: pytest.TempPathFactory, slow_artifacts: Path) -> Iterator[Server]:
    """A classifier that burns CPU per batch, batches of 4, a queue of 8: easy to overload."""
    log = tmp_path_factory.mktemp("slow") / "server.log"
    settings = slow_settings(slow_artifacts)
    with serve(log, **settings) as url:
        yield Server(url, log, settings)
