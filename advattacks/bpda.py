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
    """Backward Pass Differentiable Approximation with EOT.

    Paper: Athalye, Carlini & Wagner, 2018, "Obfuscated Gradients Give a False Sense of Security".
    Norm: l-inf.
    Arguments: ``purifier`` and ``classifier``; the rest are EOTPGD's. The classifier's gradient is taken
    at the *purified* image and passed straight back to the input (``d purifier(x) / dx ~ I``), averaged
    over ``eot_samples`` noise draws: a cross-check of the full white-box ``EOTPGD`` that still works where
    the purifier's own gradient is masked or vanishing.
    Shapes: images N x C x H x W in [0, 1], labels N; returns the adversarial images, same shape.

    Example::

        adv = BPDA(purifier, classifier, eps=0.3, steps=50, eot_samples=8)(images, labels)
    """

    def __init__(self, purifier: nn.Module, classifier: nn.Module, **kwargs) -> None:
        super().__init__(nn.Sequential(StraightThrough(purifier), classifier), **kwargs)
