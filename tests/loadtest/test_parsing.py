"""The harness's small parts: SLO and mix syntax, exact percentiles, Locust's rounding that the docs describe."""

import subprocess
import sys

import pytest

from loadtest.bench.engines import parse_variant
from loadtest.mix import parse_mix
from loadtest.slo import Slo, judge
from loadtest.stats import percentile, quantile_curve, summarize


def test_slo_syntax() -> None:
    assert Slo.parse("/defended-classify:p95<=8") == Slo("/defended-classify", 95.0, 8.0)
    assert str(Slo.parse(" /classify : p99.9 <= 12.5 ")) == "/classify:p99.9<=12.5"
    for bad in ("defended-classify:p95<=8", "/classify:p0<=8", "/classify:p101<=8", "/classify:95<=8", "/x:p95<8"):
        with pytest.raises(ValueError):
            Slo.parse(bad)


def test_slo_verdict_both_ways_and_without_data() -> None:
    timings = [float(ms) for ms in range(1, 101)]  # 1..100 ms
    assert judge(Slo.parse("/classify:p95<=96"), timings).passed
    failed = judge(Slo.parse("/classify:p95<=90"), timings)
    assert not failed.passed and failed.measured_ms == pytest.approx(95.05)
    empty = judge(Slo.parse("/classify:p50<=1000"), [])
    assert not empty.passed and empty.measured_ms is None and "no successful requests" in empty.line()


def test_percentiles_are_exact_not_bucketed() -> None:
    timings = [8.4] * 95 + [8.45] * 5
    assert summarize(timings)["p50_ms"] == pytest.approx(8.4)
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    curve = quantile_curve([3.0, 1.0, 2.0], points=3)
    assert curve == [1.0, 2.0, 3.0]
    assert summarize([]) == {"n": 0}


def test_locust_rounds_response_times_as_the_docs_say() -> None:
    """docs/performance.md: whole ms below 100 ms, then 10 ms, 100 ms and 1 s steps (in a subprocess:
    importing Locust monkey-patches the standard library with gevent)."""
    code = (
        "from locust.stats import bucket_response_time as b; print([b(t) for t in (8.4, 8.6, 99.4, 147, 3432, 58760)])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "[8, 9, 99, 150, 3400, 59000]"


def test_endpoint_mix_and_variants() -> None:
    assert parse_mix("defended-classify=2, classify") == {"defended-classify": 2.0, "classify": 1.0}
    for bad in ("", "score=1", "classify=-1", "classify=0"):
        with pytest.raises(ValueError):
            parse_mix(bad)
    assert parse_variant("pool:inline_decode_max_pixels=0,log_level=info") == (
        "pool",
        {"inline_decode_max_pixels": "0", "log_level": "info"},
    )
    for bad in ("pool", ":a=1", "pool:a", "pool:=1"):
        with pytest.raises(ValueError):
            parse_variant(bad)
