"""``python -m loadtest`` end to end, a few seconds each: Locust really runs, files are written, the SLO (judged by
the lean client, each endpoint alone) bites."""

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.server import serve
from service.config import REPO_ROOT

ENDPOINTS = {"/classify", "/defended-classify", "/purify"}


def loadtest(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "loadtest", "--duration", "3", "--slo-duration", "2", *args]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def tiny_service(tiny_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(tmp_path_factory.mktemp("loadtest") / "server.log", artifacts_dir=str(tiny_artifacts)) as server:
        yield server.url


def test_a_run_that_starts_the_service_writes_everything_and_passes(tiny_artifacts: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    done = loadtest(
        "--users",
        "2",
        "--spawn-rate",
        "10",
        "--setting",
        f"artifacts_dir={tiny_artifacts}",
        "--slo",
        "/defended-classify:p95<=60000",
        "--slo",
        "/purify:p50<=60000",
        "--results",
        str(results),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((results / "summary.json").read_text())
    assert summary["passed"] and [v["passed"] for v in summary["slo"]] == [True, True]
    for verdict in summary["slo"]:  # the lean client's own requests, not Locust's
        assert verdict["client"] == "lean" and verdict["requests"] == verdict["summary"]["n"] > 0
        quantile = "p95_ms" if "p95" in verdict["slo"] else "p50_ms"
        assert verdict["measured_ms"] == pytest.approx(verdict["summary"][quantile])
    assert set(summary["endpoints"]) == ENDPOINTS
    for name, endpoint in summary["endpoints"].items():
        assert endpoint["requests"] > 0 and endpoint["failures"] == 0, name
        assert endpoint["exact"]["n"] == endpoint["requests"] and 0 < endpoint["exact"]["p50_ms"] <= 60000
        assert endpoint["requests_per_s"] > 0 and "p95_ms" in endpoint["locust_rounded"]
        assert f"{name} " in done.stdout
    assert len(summary["machine"]["load_average"]) == 3 and summary["config"]["users"] == 2
    with (results / "timings.csv").open() as timings:
        rows = list(csv.DictReader(timings))
    assert len(rows) == sum(e["requests"] for e in summary["endpoints"].values())
    assert {row["dataset"] for row in rows} == {"mnist", "fashion-mnist"} and {row["ok"] for row in rows} == {"1"}
    assert (results / "locust_stats.csv").stat().st_size > 0 and (results / "service.log").exists()
    assert "<html" in (results / "locust.html").read_text()[:2000].lower()


def test_an_impossible_slo_against_a_running_host_exits_1(tiny_service: str, tmp_path: Path) -> None:
    results = tmp_path / "results"
    done = loadtest(
        "--host",
        tiny_service,
        "--mix",
        "defended-classify",
        "--datasets",
        "mnist",
        "--slo",
        "/defended-classify:p50<=0.001",
        "--slo",
        "/classify:p50<=1000",
        "--results",
        str(results),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    summary = json.loads((results / "summary.json").read_text())
    defended, classify = summary["slo"]
    assert not defended["passed"] and defended["measured_ms"] > 0.001
    assert classify["passed"] and 0 < classify["measured_ms"] <= 1000  # measured alone, though not in the mix
    assert summary["failures"]["failed"] == 0 and summary["failures"]["passed"]
    assert set(summary["endpoints"]) == {"/defended-classify"} and not (results / "service.log").exists()
    assert "[FAIL] /defended-classify:p50<=0.001" in done.stdout


def test_bad_arguments_are_refused_before_anything_starts(tmp_path: Path) -> None:
    for args in (["--mix", "score=1"], ["--slo", "/classify:p95<8"], ["--datasets", "cifar"]):
        done = loadtest(*args, "--results", str(tmp_path / "never"))
        assert done.returncode == 2 and "error" in done.stderr, args
    assert not (tmp_path / "never").exists()
