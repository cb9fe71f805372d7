"""The model's CPU at the batches a server ran, from the in-process cases; what is left is the server's."""

import pytest

from loadtest.bench.analysis import batch_sizes, cpu_outside_model_ms, model_cpu_ms, targets

SUMMARY = {
    "inprocess": {
        "decode": {"batch_size": 1, "cpu_ms_per_image": 0.1},
        "defend_batch1": {"batch_size": 1, "cpu_ms_per_image": 3.2},
        "defend_batch16": {"batch_size": 16, "cpu_ms_per_image": 0.8},
        "defend_batch32": {"batch_size": 32, "cpu_ms_per_image": 0.7, "per_image_ms": 0.5},
        "defend_serial_batch32": {"batch_size": 32, "cpu_ms_per_image": 9.9},  # another case: never read here
    },
    "engines": {
        "ours": {"points": [{"concurrency": 32, "n": 1000, "server_cpu_ms_per_request": 1.4, "mean_batch_size": 16}]}
    },
}


def test_the_timed_batches_bracket_every_batch_a_server_runs() -> None:
    assert batch_sizes(32) == [2, 4, 8, 16, 32]
    assert batch_sizes(24) == [2, 4, 8, 16, 24]


def test_model_cpu_is_interpolated_in_log_batch() -> None:
    assert model_cpu_ms(SUMMARY, 16) == pytest.approx(0.8)
    assert model_cpu_ms(SUMMARY, 16 * 2**0.5) == pytest.approx(0.75)  # halfway between 16 and 32 in log2
    assert model_cpu_ms(SUMMARY, 64) == pytest.approx(0.7)  # beyond the largest timed: its figure


def test_cpu_outside_the_model_charges_the_model_at_the_batches_run() -> None:
    assert cpu_outside_model_ms(SUMMARY, 32) == pytest.approx(1.4 - 0.8 - 0.1)
    assert cpu_outside_model_ms(SUMMARY, 8) is None  # not measured


def _point(concurrency: int, rps: float, p50: float, p95: float) -> dict:
    return {"concurrency": concurrency, "n": 100, "throughput_rps": rps, "p50_ms": p50, "p95_ms": p95}


def _targets(**engines: list[dict]) -> dict[str, bool | None]:
    summary = {**SUMMARY, "config": {"concurrency": [1, 64], "max_batch_size": 32},
               "engines": {key.replace("_", "-"): {"points": points} for key, points in engines.items()}}
    return {t.name.split(":")[0].split(" (")[0]: t.met for t in targets(summary)}


def test_targets_compare_the_engines_measured_side_by_side() -> None:
    met = _targets(
        ours=[_point(1, 300, 3.0, 4.0), _point(64, 1000, 60, 80)],
        floor_model=[_point(1, 400, 2.8, 3.5)],
        ours_redis=[_point(1, 290, 3.08, 4.1)],
        ours_redis_workers=[_point(64, 1300, 50, 79)],
        litserve=[_point(1, 200, 4.0, 5.0), _point(64, 760, 80, 81)],
    )
    assert met["/defended-classify p95 at concurrency 1"] is True
    assert met["p50 above the floor with the model"] is True  # 0.2 ms
    assert met["Redis's cost at concurrency 1"] is True  # 0.08 ms
    assert met["throughput at c=64, one worker a core with Redis / one worker in process, p95 no higher"] is True
    assert met["throughput at c=1, ours / the best peer, with p95 no worse"] is True  # 1.5×
    assert met["throughput at c=64, ours / the best peer, with p95 no worse"] is True  # 1.32×
    assert met["server CPU per request outside the model at c=32"] is None  # no point at 32


def test_a_target_is_missed_by_a_hair_and_unmeasured_without_its_engine() -> None:
    met = _targets(
        ours=[_point(1, 300, 3.0, 8.1), _point(64, 1000, 60, 80)],
        floor_model=[_point(1, 400, 2.6, 3.5)],
        ours_redis_workers=[_point(64, 1300, 50, 81)],  # faster, but its p95 is higher
        litserve=[_point(1, 240, 4.0, 9.0), _point(64, 760, 80, 79)],
    )
    assert met["/defended-classify p95 at concurrency 1"] is False
    assert met["p50 above the floor with the model"] is False  # 0.4 ms
    assert met["Redis's cost at concurrency 1"] is None  # no ours-redis
    assert met["throughput at c=64, one worker a core with Redis / one worker in process, p95 no higher"] is False
    assert met["throughput at c=1, ours / the best peer, with p95 no worse"] is False  # 1.25×
    assert met["throughput at c=64, ours / the best peer, with p95 no worse"] is False  # p95 80 > 79
