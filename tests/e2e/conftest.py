"""Real uvicorn subprocesses on free ports: one on the committed artifacts, one on tiny ones, one slow."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from service.client import READY, PurifierClient, ServiceHTTPError
from service.config import DATASETS, REPO_ROOT
from tests.service.tiny_artifacts import write_artifacts

REAL_ARTIFACTS = REPO_ROOT / "artifacts"
START_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def server_process(log: Path, **settings: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """``python -m service`` with ``PURIFIER_*`` settings; yields its base URL and process once ``/readyz`` is 200."""
    port = free_port()
    env = {**os.environ, "PURIFIER_PORT": str(port), "PURIFIER_LOG_LEVEL": "warning"}
    env.update({f"PURIFIER_{key.upper()}": value for key, value in settings.items()})
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "service"], cwd=REPO_ROOT, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with PurifierClient(url, timeout=1) as client:
                    client.send(READY)
                break
            except (httpx.TransportError, ServiceHTTPError):
                pass
            time.sleep(0.2)
        else:
            pytest.fail(f"server not ready after {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def serve(log: Path, **settings: str) -> Iterator[str]:
    """``server_process``'s base URL."""
    with server_process(log, **settings) as (url, _):
        yield url


def real_datasets() -> list[str]:
    return [d for d in DATASETS if (REAL_ARTIFACTS / d / "manifest.json").is_file()]


@pytest.fixture(scope="session")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    datasets = real_datasets()
    if not datasets:
        pytest.skip(f"no committed artifacts under {REAL_ARTIFACTS}; run the training export first")
    log = tmp_path_factory.mktemp("real") / "server.log"
    with serve(log, datasets=str(datasets).replace("'", '"'), default_dataset=datasets[0]) as url:
        yield url


@pytest.fixture(scope="session")
def tiny_server(tmp_path_factory: pytest.TempPathFactory, tiny_artifacts: Path) -> Iterator[str]:
    log = tmp_path_factory.mktemp("tiny") / "server.log"
    with serve(
        log,
        artifacts_dir=str(tiny_artifacts),
        max_batch_size="16",
        max_wait_ms="20",
        max_queue_size="512",
        max_body_bytes=str(256 * 1024),
        max_pixels=str(512 * 512),
        api_keys='["e2e-key"]',
    ) as url:
        yield url


@pytest.fixture(scope="session")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = write_artifacts(tmp_path_factory.mktemp("slow-artifacts"), work=100)
    log = tmp_path_factory.mktemp("slow") / "server.log"
    with serve(log, artifacts_dir=str(root), max_batch_size="4", max_queue_size="8", retry_after_s="1") as url:
        yield url
