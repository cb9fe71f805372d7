"""Interval bound propagation (IBP; Gowal et al., 2018) through a feed-forward ReLU network.

A ``Bounded`` network is a list of blocks (``Resample``, ``ConvBlock``, ``Flatten``, ``LinearBlock``), each an
affine layer, an optional BatchNorm and a ReLU, followed by a linear ``head``. Every block maps the clean
activation and the centre and radius of an l-inf box together, so one call of ``bounds`` returns the clean
logits and, per class ``j``, a lower bound on ``logit[label] - logit[j]`` over every input in the box. The
head is folded into that difference before its interval is taken (the "elision" of Gowal et al.), which is
tighter than subtracting two logit intervals.

In training mode a BatchNorm normalises the box with the *clean* batch's statistics (Shi et al., 2021); in eval
mode it is the fixed affine map of its running statistics, so the bounds are sound. The box is clipped to the
input domain [0, 1]: a certificate covers every valid image within ``eps``.

The classes script and freeze as they are: an exported artifact carries ``bounds`` itself (``bounds.radius``
searches its certified radius).

Sound in floating point: in eval mode every step widens its box by a proven allowance for float32 rounding
(``bounds.rounding``), so a positive margin bound is a proof for the network in exact arithmetic.
"""

from __future__ import annotations

import copy
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .rounding import allowance, radius_input, unit_roundoff, widened


def box(x: Tensor, eps: Tensor) -> Tuple[Tensor, Tensor]:
    """Centre and radius of the l-inf ball of per-image radius ``eps`` around ``x``, clipped to [0, 1]."""
    e = eps.reshape([-1] + [1] * (x.dim() - 1))
    lower, upper = (x - e).clamp(0.0, 1.0), (x + e).clamp(0.0, 1.0)
    return (upper + lower) / 2, (upper - lower) / 2


def certified_margin(margins: Tensor, labels: Tensor) -> Tensor:
    """The smallest lower bound of ``logit[label] - logit[j]`` over ``j != label``; > 0 means certified."""
    own = F.one_hot(labels, margins.size(1)) > 0
    return margins.masked_fill(own, float("inf")).amin(1)


def _relu(mid: Tensor, rad: Tensor, sound: bool) -> Tuple[Tensor, Tensor]:
    lower, upper = (mid - rad).relu(), (mid + rad).relu()
    out_mid, out_rad = (upper + lower) / 2, (upper - lower) / 2
    return out_mid, widened(out_mid, widened(mid, out_rad, sound), sound)


class _Layer(nn.Module):
    def prepare(self) -> None:
        """Build what the bounds read besides the weights (nothing, unless a subclass says otherwise)."""


class _Block(_Layer):
    """An affine layer, a BatchNorm and a ReLU."""

    def _normalise(self, h: Tensor, mid: Tensor, rad: Tensor, clean: bool) -> Tuple[Tensor, Tensor, Tensor]:
        """BatchNorm as the affine map of the clean batch's statistics (training) or its running ones (eval).
        Without the ``clean`` pass (eval only), ``h`` is passed through untouched."""
        running_mean, running_var = self.bn.running_mean, self.bn.running_var
        if not self.training and running_mean is not None and running_var is not None:
            mean, var = running_mean, running_var
        else:
            dims = [0] if h.dim() == 2 else [0, 2, 3]
            mean, var = h.mean(dims), h.var(dims, unbiased=False)
        scale = self.bn.weight / torch.sqrt(var + self.bn.eps)
        shift = self.bn.bias - mean * scale
        shape = [1, -1] if mid.dim() == 2 else [1, -1, 1, 1]
        if clean:
            h = self.bn(h)
        out_mid, out_rad = mid * scale.reshape(shape) + shift.reshape(shape), rad * scale.abs().reshape(shape)
        if not self.training:  # scale, shift and the map: a few roundings of magnitudes up to these
            slack = scale.abs() * mean.abs() + self.bn.bias.abs()
            out_rad = widened(out_mid, out_rad, True) + 8.0 * unit_roundoff(out_rad) * (
                scale.abs().reshape(shape) * (mid.abs() + rad) + slack.reshape(shape))
        return h, out_mid, out_rad


class ConvBlock(_Block):
    """Conv2d (3x3) -> BatchNorm2d -> ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.relu = True  # the box entering its ReLU is kept for the warm-up regularizers
        self.conv = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1)
        self.bn = nn.BatchNorm2d(out_ch)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x)).relu()

    def interval(self, h: Tensor, mid: Tensor, rad: Tensor,
                 clean: bool = True) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Clean output, output box, and the box that enters the ReLU (centre, radius)."""
        c = self.conv
        if clean:
            h = c(h)
        sound = not self.training
        g = allowance(c.in_channels * c.kernel_size[0] * c.kernel_size[1], unit_roundoff(mid))
        rad = F.conv2d(radius_input(mid, rad, g, sound), c.weight.abs(), None, c.stride, c.padding)
        bias = c.bias
        mid = F.conv2d(mid, c.weight, bias, c.stride, c.padding)
        if sound and bias is not None:
            rad = rad + g * bias.abs().reshape([1, -1, 1, 1])
        h, mid, rad = self._normalise(h, mid, rad, clean)
        out_mid, out_rad = _relu(mid, rad, sound)
        return h.relu() if clean else h, out_mid, out_rad, mid, rad


class LinearBlock(_Block):
    """Linear -> BatchNorm1d -> ReLU."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.relu = True
        self.linear = nn.Linear(in_features, out_features)
        self.bn = nn.BatchNorm1d(out_features)

    def _affine(self, x: Tensor) -> Tensor:
        """``linear(x)`` as ``addmm``. ``optimize_for_inference`` rewrites ``F.linear`` to a matmul with a
        transposed copy of the weight, which the CPU's GEMM runs up to 1.7x slower for the few rows of a request
        (measured at 8192 x 512, one thread); ``addmm`` reads the weight as trained and is left alone."""
        return torch.addmm(self.linear.bias, x, self.linear.weight.t())

    def _by_input(self) -> Tensor:
        """W and |W| side by side, one contiguous row per input (a constant once frozen): the rows of a subset of
        inputs are read without touching the others."""
        return torch.cat([self.linear.weight, self.linear.weight.abs()]).t().contiguous()

    def prepare(self) -> None:
        """Fill ``by_input``, where an export left it empty (see ``Bounded.for_export``)."""
        if hasattr(self, "by_input"):
            self.by_input = self._by_input()

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self._affine(x)).relu()

    def interval(self, h: Tensor, mid: Tensor, rad: Tensor,
                 clean: bool = True) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Clean output, output box, and the box that enters the ReLU (centre, radius)."""
        rows = torch.cat([h, mid]) if clean else mid  # one product for the clean rows and the centres
        if self.training:
            rows, rad = self._affine(rows), rad.mm(self.linear.weight.abs().t())
        else:
            g = allowance(self.linear.in_features, unit_roundoff(mid))
            rows, rad = self._live_products(rows, radius_input(mid, rad, g, True))
            rad = rad + g * self.linear.bias.abs()
        if clean:
            h, mid = rows[: h.size(0)], rows[h.size(0):]
        else:
            mid = rows
        h, mid, rad = self._normalise(h, mid, rad, clean)
        out_mid, out_rad = _relu(mid, rad, not self.training)
        return h.relu() if clean else h, out_mid, out_rad, mid, rad

    def _live_products(self, rows: Tensor, rad: Tensor) -> Tuple[Tensor, Tensor]:
        """``linear(rows)`` and ``rad`` times |W|, reading only the weights of the live inputs when at most half
        are live. Past a ReLU most inputs are 0 in every row and every box of a request (about 70% on MNIST, 80%
        on Fashion-MNIST), and on a CPU reading the weights, not the arithmetic, is the time."""
        both = self.by_input if hasattr(self, "by_input") else self._by_input()  # see ``Bounded.for_export``
        live = ((rows != 0).any(0) | (rad != 0).any(0)).nonzero().squeeze(1)
        out = self.linear.out_features
        if live.numel() * 2 <= both.size(0):  # every other input adds exactly 0 to every product
            both = both.index_select(0, live)
            return (torch.addmm(self.linear.bias, rows.index_select(1, live), both[:, :out]),
                    rad.index_select(1, live).mm(both[:, out:]))
        return self._affine(rows), rad.mm(both[:, out:])


class Resample(_Layer):
    """Bilinear resampling to ``side`` x ``side``. Each output pixel is a convex combination of input pixels, so
    the box maps exactly: centre to resampled centre, radius to resampled radius (never wider)."""

    def __init__(self, side: int) -> None:
        super().__init__()
        self.relu = False
        self.side = side

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, size=[self.side, self.side], mode="bilinear", align_corners=False)

    def interval(self, h: Tensor, mid: Tensor, rad: Tensor,
                 clean: bool = True) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        g = allowance(4, unit_roundoff(mid))  # each output: 4 inputs, weights computed once for both
        rad = self.forward(radius_input(mid, rad, g, not self.training))
        mid = self.forward(mid)
        return self.forward(h) if clean else h, mid, rad, mid, rad


class Flatten(_Layer):
    def __init__(self) -> None:
        super().__init__()
        self.relu = False

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1)

    def interval(self, h: Tensor, mid: Tensor, rad: Tensor,
                 clean: bool = True) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        return h.flatten(1) if clean else h, mid.flatten(1), rad.flatten(1), mid, rad


class Bounded(nn.Module):
    """Blocks then a linear head; the output can be bounded over an l-inf box around each input."""

    def __init__(self, blocks: List[nn.Module], head: nn.Linear) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x)

    def propagate(self, x: Tensor, eps: Tensor, labels: Optional[Tensor] = None, keep: bool = False,
                  clean: bool = True) -> Tuple[Tensor, Tensor, List[Tuple[Tensor, Tensor]]]:
        """Clean logits, margin lower bounds (boxes x classes, 0 at the label) and, with ``keep``, the centre and
        radius of the box entering every ReLU (for warm-up regularizers).

        ``eps`` holds one radius per box: ``k`` boxes per image, image-major, share the image's clean pass.
        ``labels`` (one per image) default to the clean prediction. Without the ``clean`` pass (eval mode and
        ``labels`` given) the logits returned are empty.
        """
        k = eps.numel() // max(x.size(0), 1)
        mid, rad = box(x.repeat_interleave(k, 0) if k > 1 else x, eps)
        rad = widened(mid, rad, not self.training)  # x - eps and x + eps, clipped, then halved
        h = x
        kept: List[Tuple[Tensor, Tensor]] = []
        for block in self.blocks:
            h, mid, rad, pre_mid, pre_rad = block.interval(h, mid, rad, clean)
            if keep and block.relu:
                kept.append((pre_mid, pre_rad))
        logits = self.head(h) if clean else x.new_zeros(0)
        if labels is None:
            labels = logits.argmax(1)
        if k > 1:
            labels = labels.repeat_interleave(k)
        # the head folded into the margins: rows W[label] - W[j] and biases b[label] - b[j], one map per box
        w = self.head.weight[labels].unsqueeze(1) - self.head.weight.unsqueeze(0)  # boxes x classes x features
        b = self.head.bias[labels].unsqueeze(1) - self.head.bias.unsqueeze(0)
        # the rows w and biases b are rounded differences: one more rounding per term, inside the allowance
        sound = not self.training
        g = allowance(self.head.in_features + 2, unit_roundoff(mid))
        spread = torch.bmm(w.abs(), radius_input(mid, rad, g, sound).unsqueeze(2)).squeeze(2)
        if sound:
            spread = spread + g * b.abs()
        lower = torch.bmm(w, mid.unsqueeze(2)).squeeze(2) + b - spread
        return logits, lower, kept

    def for_export(self) -> "Bounded":
        """An eval-mode copy whose dense layers have a place for ``_by_input()``, the buffer ``by_input``, left
        empty: the exported file stores each weight once, and ``prepare`` fills it when the model loads (moved
        with the module by ``.cpu()`` or ``.to()``, never in a state dict)."""
        model = copy.deepcopy(self).eval()
        for block in model.blocks:
            if isinstance(block, LinearBlock):
                block.register_buffer("by_input", torch.empty(0, 0), persistent=False)
        return model

    @torch.jit.export
    def prepare(self) -> None:
        """Build the layouts the bounds read besides the weights; call once after loading an export."""
        for block in self.blocks:
            block.prepare()

    @torch.jit.export
    def bounds(self, x: Tensor, eps: Tensor, labels: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """Clean logits and lower bounds of ``logit[label] - logit[j]`` over the box of radius ``eps``
        (``labels`` default to the clean prediction)."""
        logits, margins, _ = self.propagate(x, eps, labels)
        return logits, margins


def prepared(module: nn.Module) -> nn.Module:
    """A loaded certifiable export with its derived layouts built (``Bounded.prepare``); any other module as it
    is, an export from before ``prepare`` included."""
    if hasattr(module, "prepare"):
        module.prepare()
    return module
