"""Sound in floating point. Rounding can make a float32 interval tighter than the exact one, so in eval mode every
step widens its box by a proven allowance (Higham's bound on a sum of ``n`` products, ``gamma_n = n u / (1 - n u)``
with ``u`` the unit roundoff of the dtype that runs, for any order of summation, with or without FMA):

- an affine layer with fan-in ``n`` bounds ``|W| (rad + g (|mid| + rad)) + g |b|`` instead of ``|W| rad``, with
  ``g = 1.05 gamma_{n+6}``: one product, as before, whose result covers the exact radius, the rounding of the
  centre ``W mid + b`` (at most ``gamma_{n+1} (|W| |mid| + |b|)``), the rounding of the product itself (a sum of
  non-negative terms, at least ``1 - gamma_n`` of the exact one) and of forming its input (``allowance``);
- BatchNorm, the ReLU's bounds and the input box, a few operations each, widen by ``8 u`` of the magnitudes they
  touch;
- the margins, whose head rows ``W[label] - W[j]`` are themselves rounded, the same way as an affine layer.

A margin lower bound is then below the margin of the network in exact arithmetic (its float32 weights and BN
statistics taken as exact), over every input of the box: a positive one is a proof. Training skips the
allowance (bf16 autocast would widen it by 2^16): it only certifies in eval mode.
"""

import torch
from torch import Tensor


def unit_roundoff(t: Tensor) -> float:
    """Half the distance from 1 to the next number of ``t``'s dtype."""
    if t.dtype == torch.float64:
        return 2.0**-53
    if t.dtype == torch.float16:
        return 2.0**-11
    if t.dtype == torch.bfloat16:
        return 2.0**-8
    return 2.0**-24


def allowance(fan_in: int, u: float) -> float:
    """``g`` for an affine layer of ``fan_in`` inputs and a bias: ``(1 - gamma_n - 4u)(1 + g) >= 1`` and
    ``(1 - gamma_n - 4u) g >= gamma_{n+1}`` both hold for ``g = 1.05 gamma_{n+6}``."""
    nu = (fan_in + 6) * u
    return 1.05 * nu / (1.0 - nu)


def widened(mid: Tensor, rad: Tensor, sound: bool) -> Tensor:
    """``rad`` plus ``8 u (|mid| + rad)``: a box that a few elementwise roundings cannot have shrunk."""
    if not sound:
        return rad
    return rad + 8.0 * unit_roundoff(rad) * (mid.abs() + rad)


def radius_input(mid: Tensor, rad: Tensor, g: float, sound: bool) -> Tensor:
    """What ``|W|`` multiplies: ``rad``, or with the rounding allowance ``rad + g (|mid| + rad)``."""
    return rad + g * (mid.abs() + rad) if sound else rad
