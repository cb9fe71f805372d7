"""White-box l-inf attacks on a classifier, torchattacks-style: one small class per file.

A tiny package that depends on torch alone, shared by ``training/`` (adversarial sets, robustness)
and ``service/`` (``POST /attack``), so that both run the same attack code.  Pixels are in [0, 1]
at every interface.  ``eps`` may be a float or a tensor of one value per image (used to build
mixed-epsilon training sets in one pass).
"""

from .base import Attack
from .fgsm import FGSM
from .pgd import PGD

ATTACKS = {"fgsm": FGSM, "pgd": PGD}

__all__ = ["ATTACKS", "FGSM", "PGD", "Attack"]
