"""The certified runs' recipe column: each run's loss recipe, read as it ran where it predates an option."""

from render.robustness.report import recipe_of

OLD = {"train_eps": 0.4, "test_eps": 0.3, "ramp_epochs": 10, "kappa_end": 0.5, "reg_lambda": 0.5}
CTBENCH = {"train_eps": 0.3, "test_eps": 0.3, "ramp_epochs": 20, "kappa_end": None, "robust_weight": 0.7,
           "robust_ramp": False, "l1": 2e-06, "pop_bn_stats": True, "reg_lambda": 0.5, "limit": None}


def test_a_run_from_before_an_option_reads_as_it_ran() -> None:
    assert recipe_of(OLD) == "train ε 0.4, κ→0.5, ramp 10, no L1, batch BN"


def test_each_change_of_the_recipe_shows() -> None:
    assert recipe_of(CTBENCH) == "train ε 0.3, robust 0.7, ramp 20, L1 2e-06, population BN"
    changed = {**CTBENCH, "robust_ramp": True, "l1": 0.0, "pop_bn_stats": False, "reg_lambda": 0.0, "limit": 20000}
    assert recipe_of(changed) == ("train ε 0.3, robust 0.7 ramped, ramp 20, no L1, batch BN, "
                                  "no warm-up regularizers, 20,000 images")
