"""The hostile-image corpus over real HTTP: every case gets its specific answer, and after the whole corpus
several times over the server's memory, file descriptors and readiness are where they were."""

import io
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from PIL import Image

from service.config import REPO_ROOT
from tests.reliability import hostile
from tests.reliability.conftest import Server, metric, server_metrics, settled_fds
from tests.reliability.schemathesis_hooks import TRACE_MARKERS

CASES = [(case, endpoint) for case in hostile.corpus() for endpoint in case.endpoints]
ROUNDS = 3


def check(response: httpx.Response, case: hostile.Case, endpoint: str) -> None:
    assert response.status_code == case.status, f"{case.name} on {endpoint}: {response.text[:300]}"
    assert not any(marker in response.content for marker in TRACE_MARKERS), response.text[:300]
    if case.status != 200:
        body = response.json()
        assert body["error"] == case.error and body["detail"], body
    elif endpoint == "/purify":
        assert response.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(response.content)).size == (32, 32)
        assert hostile.PAYLOAD not in response.content  # re-encoded: nothing of the input's extra bytes survives
    else:
        assert response.json()["label"] == case.label, response.text[:300]


def test_the_corpus_is_large_and_varied() -> None:
    cases = hostile.corpus()
    assert len(cases) >= 20 and len({case.name for case in cases}) == len(cases)
    assert {case.status for case in cases} >= {200, 413, 415, 422}


@pytest.mark.parametrize("case, endpoint", CASES, ids=[f"{c.name}:{e.strip('/')}" for c, e in CASES])
def test_hostile_input_gets_its_answer(hostile_server: Server, case: hostile.Case, endpoint: str) -> None:
    with hostile_server.client() as client:
        check(client.post(endpoint, **case.request()), case, endpoint)


def test_the_corpus_leaves_memory_descriptors_and_readiness_intact(hostile_server: Server, measured: dict) -> None:
    def run_corpus() -> None:
        with hostile_server.client() as client:
            for case, endpoint in CASES:
                check(client.post(endpoint, **case.request()), case, endpoint)

    run_corpus()  # a first pass loads decoders and fills allocator pools
    before = server_metrics(hostile_server.url)
    for _ in range(ROUNDS):
        run_corpus()
    after = server_metrics(hostile_server.url)
    rss = [metric(text, "process_resident_memory_bytes") / 2**20 for text in (before, after)]
    fds = [metric(before, "process_open_fds"), settled_fds(hostile_server.url, metric(before, "process_open_fds"))]
    measured[f"hostile corpus, {len(CASES)} requests x {ROUNDS}"] = {
        "rss_mib": [round(value, 1) for value in rss],
        "rss_growth": round(rss[1] / rss[0] - 1, 4),
        "open_fds": fds,
    }
    assert rss[1] < rss[0] * 1.10, f"RSS grew from {rss[0]:.0f} to {rss[1]:.0f} MiB"
    with hostile_server.client() as client:
        assert client.get("/readyz").json() == {"status": "ready"}
        response = client.post(
            "/classify", content=hostile.encode(hostile.gray(6)), headers={"content-type": "image/png"}
        )
        assert response.json()["label"] == 6


def test_the_generator_script_writes_every_case(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tests.reliability.hostile", str(tmp_path / "corpus")]
    subprocess.run(command, check=True, cwd=REPO_ROOT, capture_output=True, timeout=60)
    index = json.loads((tmp_path / "corpus" / "index.json").read_text())
    cases = hostile.corpus()
    assert [entry["name"] for entry in index] == [case.name for case in cases]
    for entry, case in zip(index, cases, strict=True):
        assert (tmp_path / "corpus" / entry["file"]).read_bytes() == case.body
        assert (entry["status"], entry["error"]) == (case.status, case.error)
