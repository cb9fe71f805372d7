"""The reference AutoAttack as a threat of the study: within the eps-ball, and it breaks what has no defense."""

import torch
from torch import nn

from training.robustness.autoattack import EOT_DRAWS, ReferenceAutoAttack
from training.robustness.defenses import Defense
from training.robustness.threats import Threat


def test_autoattack_breaks_the_undefended_classifier_inside_the_ball(committed):
    if committed["dataset"] != "mnist":
        return
    clf, x, y = committed["models"]["classifier"], committed["x"][:16], committed["y"][:16]
    attack = ReferenceAutoAttack(clf, eps=0.3, stochastic=False, seed=0)
    adv = attack(x, y)
    assert isinstance(attack.notes, list)
    assert (adv - x).abs().max() <= 0.3 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        assert (clf(adv).argmax(1) == y).float().mean() <= 0.1


def test_a_stochastic_defense_gets_version_rand_with_eot_draws(committed):
    if committed["dataset"] != "mnist":
        return
    models = committed["models"]
    defended = Defense("default", "", nn.Sequential(models["autoencoder"], models["classifier"]),
                       models["autoencoder"], models["classifier"])
    threat = Threat("autoattack", 0.3).for_defense(defended)
    attack = threat.attack_for(defended, seed=0)
    assert (threat.k, attack.version, threat.key()) == (EOT_DRAWS, "rand", "autoattack-rand-eps0.3")
    deterministic = Defense("none", "", models["classifier"], classifier=models["classifier"])
    assert Threat("autoattack", 0.3).for_defense(deterministic).attack_for(deterministic, 0).version == "standard"


def test_the_apgd_threat_is_version_rands_pair_with_eot_only_where_there_is_noise(committed):
    models = committed["models"]
    deterministic = Defense("none", "", models["classifier"], classifier=models["classifier"])
    threat = Threat("apgd", 0.3).for_defense(deterministic)
    assert (threat.k, threat.key(), threat.attack_for(deterministic, 0).version) == (1, "apgd-ce-dlr-eps0.3-k1", "custom")
    defended = Defense("default", "", nn.Sequential(models["autoencoder"], models["classifier"]),
                       models["autoencoder"], models["classifier"])
    assert Threat("apgd", 0.3).for_defense(defended).attack_for(defended, 0).version == "rand"


def test_apgd_only_runs_just_apgd_ce_and_apgd_dlr_inside_the_ball(committed, caplog):
    clf, x, y = committed["models"]["classifier"], committed["x"][:8], committed["y"][:8]
    eps = 0.3 if committed["dataset"] == "mnist" else 0.1
    with caplog.at_level("DEBUG", logger="auto-attack"):
        adv = ReferenceAutoAttack(clf, eps=eps, stochastic=False, seed=0, apgd_only=True)(x, y)
    assert (adv - x).abs().max() <= eps + 1e-6
    ran = {m.split("after ")[1].split(":")[0].lower() for m in caplog.messages if m.startswith("robust accuracy after")}
    assert ran <= {"apgd-ce", "apgd-dlr"} and "apgd-ce" in ran
    with torch.no_grad():
        assert (clf(adv).argmax(1) == y).float().mean() <= 0.25
