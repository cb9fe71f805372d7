"""PURIFIER_WORKERS: several uvicorn processes behind one port; each answers, and SIGTERM stops them all cleanly."""

import signal
from pathlib import Path

import httpx
import psutil

from tests.e2e.conftest import server_process
from tests.service.tiny_artifacts import brightness_png


def test_two_workers_serve_and_stop_cleanly(tiny_artifacts: Path, tmp_path: Path) -> None:
    with server_process(tmp_path / "server.log", artifacts_dir=str(tiny_artifacts), workers="2") as (url, process):
        workers = [p for p in psutil.Process(process.pid).children() if "spawn_main" in " ".join(p.cmdline())]
        assert len(workers) == 2, [p.cmdline() for p in workers]
        labels = []
        for level in range(10):  # a fresh connection each: the kernel hands them to either worker
            answer = httpx.post(f"{url}/classify", content=brightness_png(level), headers={"content-type": "image/png"})
            assert answer.status_code == 200, answer.text
            labels.append(answer.json()["label"])
        assert labels == list(range(10))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in workers)
