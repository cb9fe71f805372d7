"""The model's CPU at the batches a server ran, from the in-process cases; what is left is the server's."""

import pytest

from loadtest.bench.analysis import batch_sizes, cpu_outside_model_ms, model_cpu_ms

SUMMARY = {
    "inprocess": {
        "decode": {"batch_size": 1, "cpu_ms_per_image": 0.1},
        "defend_batch1": {"batch_size": 1, "cpu_ms_per_image": 3.2},
        "defend_batch16": {"batch_size": 16, "cpu_ms_per_image": 0.8},
        "defend_batch32": {"batch_size": 32, "cpu_ms_per_image": 0.7},
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
