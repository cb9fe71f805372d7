"""Start a server as a subprocess on a free port, wait until it answers its readiness path, stop it cleanly.

Shared by the load-test runner, the benchmark and the end-to-end tests, so every one of them starts
``python -m service`` the same way.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from service.config import REPO_ROOT

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0


class ServerStartError(RuntimeError):
    """The server exited or never became ready; the message ends with the tail of its log."""


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(process: subprocess.Popen, url: str, log: Path, timeout_s: float, in_a_row: int = 20) -> None:
    """Ready once ``in_a_row`` fresh connections in a row answer 200: with several worker processes sharing
    the socket, the first 200 may come from one of them while another is still loading."""
    deadline, answered = time.monotonic() + timeout_s, 0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            answered = answered + 1 if httpx.get(url, timeout=1.0).status_code == 200 else 0
        except httpx.TransportError:
            answered = 0
        if answered >= in_a_row:
            return
        if not answered:
            time.sleep(0.2)
    raise ServerStartError(f"server not ready after {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's own process group (LitServe forks workers), SIGKILL if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, STOP_TIMEOUT_S)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def running(
    command: Sequence[str],
    log: Path,
    *,
    port: int,
    ready_path: str,
    env: Mapping[str, str] | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> Iterator[Server]:
    """Run ``command`` (which must listen on ``port``) in its own session; yield once ``ready_path`` answers 200."""
    url = f"http://127.0.0.1:{port}"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command), cwd=REPO_ROOT, env=dict(env or os.environ), stdout=out, stderr=out, start_new_session=True
        )
    try:
        _wait_ready(process, url + ready_path, log, timeout_s)
        yield Server(url, process, log)
    finally:
        _stop(process)


def service_env(port: int, **settings: str) -> dict[str, str]:
    """This process's environment plus the port, a quiet log and ``PURIFIER_*`` settings (``max_batch_size="1"``)."""
    env = {**os.environ, "PURIFIER_PORT": str(port), "PURIFIER_LOG_LEVEL": "warning"}
    return env | {f"PURIFIER_{key.upper()}": value for key, value in settings.items()}


@contextmanager
def serve(log: Path, **settings: str) -> Iterator[Server]:
    """``python -m service`` with ``PURIFIER_*`` settings, ready on ``/readyz``."""
    port = free_port()
    env = service_env(port, **settings)
    with running([sys.executable, "-m", "service"], log, port=port, ready_path="/readyz", env=env) as server:
        yield server
