"""Real uvicorn subprocesses on free ports: one on the committed artifacts, one on tiny ones, one slow."""

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from loadtest.server import free_port
from loadtest.server import serve as serve_service
from service.config import DATASETS, REPO_ROOT
from tests.service.tiny_artifacts import write_artifacts

REAL_ARTIFACTS = REPO_ROOT / "artifacts"
__all__ = ["free_port", "serve", "server_process"]  # also used by tests/reliability


@contextmanager
def server_process(log: Path, **settings: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """``python -m service`` with ``PURIFIER_*`` settings; yields its base URL and process once ``/readyz`` is 200."""
    with serve_service(log, **settings) as server:
        yield server.url, server.process


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
