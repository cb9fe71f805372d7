"""White-box and black-box l-inf attacks on a classifier, torchattacks-style: one small class per file.

A tiny package that depends on torch alone, shared by ``training/`` (adversarial sets, robustness)
and ``service/`` (``POST /attack``), so that both run the same attack code.  Pixels are in [0, 1]
at every interface.  ``eps`` may be a float or a tensor of one value per image (used to build
mixed-epsilon training sets in one pass).  ``EOTPGD`` and ``BPDA`` are the adaptive attacks on a
randomized purifier; ``Square`` is score-based black-box; ``FGSMRS`` drives fast adversarial training.
"""

from .base import Attack
from .bpda import BPDA, StraightThrough
from .eot import EOTPGD
from .fgsm import FGSM
from .fgsm_rs import FGSMRS
from .pgd import PGD
from .square import Square

ATTACKS = {"fgsm": FGSM, "pgd": PGD}

__all__ = ["ATTACKS", "BPDA", "EOTPGD", "FGSM", "FGSMRS", "PGD", "Attack", "Square", "StraightThrough"]
