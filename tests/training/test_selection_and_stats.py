import pytest
from scipy.stats import binomtest

from training.select_purifier import choose
from training.stats import wilson


@pytest.mark.parametrize("correct, n", [(81, 100), (0, 10), (10, 10), (9921, 10000), (3, 1000)])
def test_wilson_agrees_with_scipy(correct, n):
    ci = binomtest(correct, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson(correct, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_wilson_is_never_zero_width_at_the_edges():
    assert wilson(0, 10)[1] > 0.0 and wilson(10, 10)[0] < 1.0


def _cand(name, clean, fgsm, pgd):
    return {"checkpoint": name, "val": {"purified_clean": clean, "fgsm-0.6": fgsm, "pgd-0.15": pgd}}


def test_choose_prefers_robustness_among_those_meeting_the_clean_target():
    cands = [_cand("a", 0.99, 0.80, 0.95), _cand("b", 0.975, 0.93, 0.94), _cand("c", 0.96, 0.97, 0.97)]
    assert choose(cands, target=0.97)["checkpoint"] == "b"  # c is more robust but misses the target


def test_choose_falls_back_to_the_best_clean_accuracy():
    cands = [_cand("a", 0.90, 0.80, 0.95), _cand("b", 0.93, 0.50, 0.50)]
    assert choose(cands, target=0.97)["checkpoint"] == "b"
