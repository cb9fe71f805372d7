"""BPDA: differentiate through a purifier as if it were the identity."""

from __future__ import annotations

from torch import Tensor, nn

from .eot import EOTPGD


class StraightThrough(nn.Module):
    """``purifier(x)`` on the forward pass, the identity on the backward pass."""

    def __init__(self, purifier: nn.Module) -> None:
        super().__init__()
        self.purifier = purifier

    def forward(self, x: Tensor) -> Tensor:
        return x + (self.purifier(x) - x).detach()


class BPDA(EOTPGD):
    """Backward Pass Differentiable Approximation (Athalye et al., 2018) with EOT, l-inf.

    The classifier's gradient is taken at the *purified* image and passed straight back to the input
    (``d purifier(x) / dx ~ I``), averaged over ``eot_samples`` noise draws.  A cross-check of the full
    white-box ``EOTPGD``: it still works where the purifier's own gradient is masked or vanishing.
    All other arguments are EOTPGD's.

    Example::

        adv = BPDA(purifier, classifier, eps=0.3, steps=50, eot_samples=8)(images, labels)
    """

    def __init__(self, purifier: nn.Module, classifier: nn.Module, **kwargs) -> None:
        super().__init__(nn.Sequential(StraightThrough(purifier), classifier), **kwargs)
