"""The certificate-cost benchmark and the per-pipeline latency measurement, on tiny artifacts."""

from pathlib import Path

import pytest

from loadtest import pipelines
from loadtest.bench import certificate
from loadtest.server import serve
from service.config import Settings
from tests.service.tiny_artifacts import write_dataset


@pytest.fixture(scope="module")
def certified_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("certified")
    write_dataset(root / "mnist", "mnist", pipelines=True)
    return root


def test_the_certificate_benchmark_times_forward_the_certificate_and_the_radius_at_both_batches(certified_artifacts: Path) -> None:
    results = certificate.measure(Settings(artifacts_dir=certified_artifacts, datasets=("mnist",)), repeats=10,
                                  rounds=2)
    assert list(results) == ["mnist/certified"]
    for batch in ("batch1", "batch64"):
        row = results["mnist/certified"][batch]
        assert row["forward"]["p50_ms"] > 0 and row["at_eps"]["p50_ms"] > 0 and row["certify"]["p50_ms"] > 0
        assert row["ratio_p50"] == row["certify"]["p50_ms"] / row["forward"]["p50_ms"]
    assert "| mnist/certified | 64 |" in certificate.table(results)


def test_pipeline_latency_covers_every_pipeline_over_http(certified_artifacts: Path, tmp_path: Path) -> None:
    names = ["certified", "mirror", "autoencoder+mirror"]
    with serve(tmp_path / "service.log", artifacts_dir=str(certified_artifacts), datasets='["mnist"]') as server:
        measured = pipelines.measure(server.url, "mnist", names, requests=20, warmup=2,
                                     samples=pipelines.load_samples("mnist", certified_artifacts))
    assert set(measured) == set(names)
    for row in measured.values():
        assert row["n"] == 20 and 0 < row["p50_ms"] <= row["p95_ms"]


def test_percentiles_are_inclusive() -> None:
    assert pipelines.percentile(list(range(1, 101)), 95) == pytest.approx(95.05)
    assert pipelines.percentile([1.0, 2.0, 3.0], 50) == 2.0
