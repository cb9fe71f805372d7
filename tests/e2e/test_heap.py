"""The service keeps the memory its models free: a request reuses it instead of faulting in fresh pages."""

import sys
from pathlib import Path

import httpx
import pytest

from loadtest.samples import load_samples
from tests.e2e.conftest import real_datasets, server_process

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads the page-fault count from /proc")


def page_faults(pid: int) -> int:
    """Minor page faults of every thread of ``pid`` so far (/proc/PID/stat, field 10)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


def ask(client: httpx.Client, dataset: str, pipeline: str, png: bytes) -> None:
    answer = client.post("/defended-classify", params={"dataset": dataset, "pipeline": pipeline}, content=png,
                         headers={"content-type": "image/png"})
    assert answer.status_code == 200, answer.text


def test_requests_reuse_freed_memory(tmp_path: Path) -> None:
    """Without it, each certified-pipeline request faulted in thousands of fresh pages (about 2,900 on MNIST's
    CNN7), in most starts of the service: its model time nearly doubled."""
    datasets = real_datasets()
    if not datasets:
        pytest.skip("no committed artifacts")
    faults = {}
    with server_process(tmp_path / "server.log") as (url, process), httpx.Client(base_url=url) as client:
        served = client.get("/models").json()["datasets"]
        for dataset in datasets:
            pngs = [sample.png for sample in load_samples(dataset)]
            for pipeline in served[dataset]["pipelines"]:
                for i in range(4):  # the first requests may still grow the heap
                    ask(client, dataset, pipeline, pngs[i % len(pngs)])
                before = page_faults(process.pid)
                for i in range(32):
                    ask(client, dataset, pipeline, pngs[i % len(pngs)])
                faults[f"{dataset}/{pipeline}"] = (page_faults(process.pid) - before) / 32
    assert max(faults.values()) < 100, faults
