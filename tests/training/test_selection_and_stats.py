import pytest
from scipy.stats import binomtest

from training.select_purifier import choose
from training.stats import paired_difference, wilson


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


def test_the_paired_difference_moves_only_with_the_images_the_two_disagree_on():
    same = paired_difference("1100", "1100")
    assert same == (0.0, 0.0, 0.0)
    d, lo, hi = paired_difference("1" * 60 + "0" * 40, "1" * 50 + "0" * 50)  # 10 gained, none lost
    assert d == 0.1 and 0 < lo < d < hi
    # the same two accuracies on disjoint images: much wider, as only disagreements carry information
    d2, lo2, hi2 = paired_difference("1" * 60 + "0" * 40, "0" * 50 + "1" * 50)
    assert d2 == 0.1 and (hi2 - lo2) > 2 * (hi - lo) and lo2 < 0
