"""White-box and black-box l-inf attacks on a classifier, torchattacks-style: one small class per file.

A tiny package that depends on torch alone, shared by ``training/`` (adversarial sets, robustness)
and ``service/`` (``POST /attack``), so that both run the same attack code.  Pixels are in [0, 1]
at every interface.  ``eps`` may be a float or a tensor of one value per image (used to build
mixed-epsilon training sets in one pass).  ``EOTPGD`` and ``BPDA`` are the adaptive attacks on a
randomized purifier; ``Square`` is score-based black-box; ``FGSMRS`` drives fast adversarial training,
``TRADES`` the inner maximization of TRADES training, ``APGD`` (PGD with an adaptive step) that of APGD training.
"""

import inspect

from .apgd import APGD
from .base import Attack
from .bpda import BPDA, StraightThrough
from .eot import EOTPGD
from .fgsm import FGSM
from .fgsm_rs import FGSMRS
from .pgd import PGD
from .square import Square
from .trades import TRADES

ATTACKS = {"fgsm": FGSM, "pgd": PGD}


def defaults(name: str) -> dict:
    """The hyperparameters ``ATTACKS[name]`` takes, with its own (the paper's) defaults."""
    params = inspect.signature(ATTACKS[name]).parameters
    return {key: p.default for key, p in params.items() if p.default is not inspect.Parameter.empty}


def build(name: str, model, **params) -> Attack:
    """``ATTACKS[name]`` on ``model``; hyperparameters it does not take, or given as None, keep its defaults."""
    accepted = defaults(name)
    return ATTACKS[name](model, **{key: value for key, value in params.items() if value is not None and key in accepted})


__all__ = ["APGD", "ATTACKS", "BPDA", "EOTPGD", "FGSM", "FGSMRS", "PGD", "Attack", "Square", "StraightThrough", "TRADES",
           "build", "defaults"]
