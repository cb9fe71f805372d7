"""Interval bounds where IBP is exact, against a reference that shares none of its code.

An affine layer's interval over a box (conv or linear, then BatchNorm with running statistics, negative scales
included) is attained at a vertex of the box, and a ReLU's interval is the ReLU of its bounds. The reference
reads each layer's affine map as a dense float64 matrix, by passing the unit vectors through the layer's own
``forward``, and takes its interval at ``mid ± sign(M) rad``. Every layer's box, the network's composition of
them and the margins at the end must equal the reference's, to float32 rounding: a bound a few percent too
tight or too loose fails, which sampling points of the box cannot see.
"""

import copy

import pytest
import torch
from torch import nn

from bounds import Bounded
from bounds.ibp import ConvBlock, Flatten, LinearBlock

REL = 1e-3  # float32 rounding and its proven allowance, relative to the values' scale


def tiny_net(seed: int, side: int = 8, dead: float = 0.0) -> Bounded:
    """A conv-BN-ReLU network on ``side`` x ``side`` inputs with BN statistics of its own, some BN scales
    negative; ``dead`` lowers the last conv block's BN bias, so that most inputs of the dense layer are 0 (the
    dense layer then reads only the weights of its live inputs)."""
    torch.manual_seed(seed)
    blocks = [ConvBlock(1, 3), ConvBlock(3, 4, stride=2), Flatten(), LinearBlock(4 * (side // 2) ** 2, 12)]
    net = Bounded(blocks, nn.Linear(12, 10))
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(32, 1, side, side))
        for block in net.blocks:
            if hasattr(block, "bn"):
                sign = torch.where(torch.rand_like(block.bn.weight) < 0.5, -1.0, 1.0)
                block.bn.weight.mul_(sign * (0.5 + torch.rand_like(sign)))
                block.bn.bias.normal_(0, 0.3)
        net.blocks[1].bn.bias.sub_(dead)
    return net.eval()


def affine_map(block: nn.Module, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(M, c)`` in float64 with ``layer(x) = M x + c`` for the block's layer before its ReLU (eval mode)."""
    layer = block.conv if isinstance(block, ConvBlock) else block.linear
    double = copy.deepcopy(nn.Sequential(layer, block.bn)).double().eval()
    n = int(torch.tensor(shape).prod())
    with torch.no_grad():
        c = double(torch.zeros(1, *shape, dtype=torch.float64)).flatten()
        basis = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
        m = (double(basis).reshape(n, -1) - c).t()
    return m, c


def reference_interval(m: torch.Tensor, c: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor):
    """The exact interval of ``M x + c`` over the box, at the vertex ``mid ± sign(M) rad`` of each output."""
    mid, rad = (upper + lower) / 2, (upper - lower) / 2
    centre = mid @ m.t() + c
    spread = rad @ m.abs().t()
    return centre - spread, centre + spread


def reference_margins(net: Bounded, x: torch.Tensor, eps: float, labels: torch.Tensor):
    """Layer by layer in float64: the input box clipped to [0, 1], each block's exact interval then its ReLU,
    and the margin ``logit[label] - logit[j]``'s interval with the head folded in. Also each block's box."""
    lower = (x.double() - eps).clamp(0, 1).flatten(1)
    upper = (x.double() + eps).clamp(0, 1).flatten(1)
    shape, boxes = tuple(x.shape[1:]), []
    for block in net.blocks:
        if isinstance(block, Flatten):
            shape = (lower.size(1),)
            continue
        m, c = affine_map(block, shape)
        pre_lower, pre_upper = reference_interval(m, c, lower, upper)
        boxes.append((pre_lower, pre_upper))
        lower, upper = pre_lower.relu(), pre_upper.relu()
        out = block.conv.out_channels if isinstance(block, ConvBlock) else None
        shape = (out, *_spatial(block, shape)) if out else (lower.size(1),)
    w, b = net.head.weight.double(), net.head.bias.double()
    margin_w = w[labels].unsqueeze(1) - w.unsqueeze(0)
    margin_b = b[labels].unsqueeze(1) - b.unsqueeze(0)
    mid, rad = (upper + lower) / 2, (upper - lower) / 2
    margins = (margin_w @ mid.unsqueeze(2)).squeeze(2) + margin_b - (margin_w.abs() @ rad.unsqueeze(2)).squeeze(2)
    return margins, boxes


def _spatial(block: ConvBlock, shape: tuple[int, ...]) -> tuple[int, int]:
    stride = block.conv.stride[0]
    return (shape[1] + stride - 1) // stride, (shape[2] + stride - 1) // stride


def close(got: torch.Tensor, want: torch.Tensor) -> bool:
    scale = want.abs().amax().clamp(min=1.0)
    return bool(((got.double() - want).abs() <= REL * scale).all())


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("dead", [0.0, 2.0])
@pytest.mark.parametrize("eps", [0.01, 0.1, 0.3])
def test_each_layers_box_is_the_exact_interval_and_the_network_composes_them(
    seed: int, dead: float, eps: float
) -> None:
    net, x = tiny_net(seed, dead=dead), torch.rand(6, 1, 8, 8)
    labels = net(x).argmax(1)
    want_margins, want_boxes = reference_margins(net, x, eps, labels)
    with torch.no_grad():
        _, margins, kept = net.propagate(x, torch.full((6,), eps), labels, keep=True)
    assert len(kept) == len(want_boxes) == 3
    for (mid, rad), (lower, upper) in zip(kept, want_boxes, strict=True):
        assert close((mid - rad).flatten(1), lower) and close((mid + rad).flatten(1), upper)
    assert close(margins, want_margins)


def test_the_reference_interval_is_attained_at_a_vertex_of_the_box() -> None:
    """The reference itself: the vertex ``mid + sign(M_i) rad`` of the box, through the real layer, reaches
    output ``i``'s upper bound (so the bound can be no tighter), and no point of the box exceeds it."""
    net = tiny_net(3)
    block, shape = net.blocks[0], (1, 8, 8)
    m, c = affine_map(block, shape)
    x = torch.rand(1, 64, dtype=torch.float64)
    lower, upper = (x - 0.1).clamp(0, 1), (x + 0.1).clamp(0, 1)
    _, top = reference_interval(m, c, lower, upper)
    layer = copy.deepcopy(nn.Sequential(block.conv, block.bn)).double().eval()
    with torch.no_grad():
        for i in torch.randperm(m.size(0))[:20]:
            vertex = torch.where(m[i] > 0, upper, lower).reshape(1, *shape)
            assert torch.isclose(layer(vertex).flatten()[i], top[0, i], rtol=1e-9, atol=1e-12)
            inside = (lower + (upper - lower) * torch.rand(200, 64, dtype=torch.float64)).reshape(200, *shape)
            assert (layer(inside).flatten(1)[:, i] <= top[0, i] + 1e-12).all()


def test_negative_batchnorm_scales_are_in_the_networks_under_test() -> None:
    net = tiny_net(0)
    scales = torch.cat([b.bn.weight for b in net.blocks if hasattr(b, "bn")])
    assert (scales < 0).any() and (scales > 0).any()


@pytest.mark.parametrize("seed", range(4))
def test_the_served_float32_bounds_contain_the_float64_ones_on_many_boxes(seed: int) -> None:
    """Rounding can make a float32 interval tighter than the exact one; the served bounds widen each layer by a
    proven allowance, so every float32 box contains the float64 box and every margin bound lies below. (The
    dense layer sums 256 products, where rounding shows.)"""
    net = tiny_net(10 + seed, side=16)
    x = torch.rand(40, 1, 16, 16)
    x[:20] = (x[:20] * 255).round() / 255  # 8-bit images, as uploads are
    labels = net(x).argmax(1)
    for eps in (0.0, 1e-6, 1 / 255, 0.05):
        want_margins, want_boxes = reference_margins(net, x, eps, labels)
        with torch.no_grad():
            _, margins, kept = net.propagate(x, torch.full((40,), eps), labels, keep=True)
        for (mid, rad), (lower, upper) in zip(kept, want_boxes, strict=True):
            assert ((mid - rad).flatten(1).double() <= lower).all() and ((mid + rad).flatten(1).double() >= upper).all()
        assert (margins.double() <= want_margins).all()


def identity_bn(block: nn.Module) -> nn.Module:
    """The block in eval mode with BatchNorm the identity, so its box is the affine layer's alone."""
    block.eval()
    block.bn.running_mean.zero_(), block.bn.running_var.fill_(1 - block.bn.eps)
    return block


@pytest.mark.parametrize("kind", ["linear", "conv"])
@pytest.mark.parametrize("seed", range(3))
def test_an_affine_layers_float32_rounding_stays_inside_its_box(kind: str, seed: int) -> None:
    """Large weights of both signs over positive inputs: the centre ``W mid + b`` cancels to a small number,
    with a float32 rounding error of about ``u |W| |mid|``, far above ``u |W mid|``. The box must still hold
    the exact (float64) value, at radius 0."""
    torch.manual_seed(seed)
    block = identity_bn(LinearBlock(512, 8) if kind == "linear" else ConvBlock(64, 8))
    with torch.no_grad():
        weight = block.linear.weight if kind == "linear" else block.conv.weight
        weight.copy_(torch.randn_like(weight) * 100)
        mid = torch.rand(16, 512) if kind == "linear" else torch.rand(16, 64, 6, 6)
        _, _, _, pre_mid, pre_rad = block.interval(mid, mid, torch.zeros_like(mid))
        layer = copy.deepcopy(block.linear if kind == "linear" else block.conv).double()
        exact = layer(mid.double())
    assert ((pre_mid.double() - exact).abs() > 0).any(), "float32 rounding shows in this layer"
    assert ((pre_mid - pre_rad).double() <= exact).all() and ((pre_mid + pre_rad).double() >= exact).all()


def test_a_dense_layer_reading_only_its_live_inputs_bounds_exactly() -> None:
    """Most inputs 0 in every row and box: the radius product reads |W| for the live inputs only, and equals
    ``|W| rad`` in float64 (to the allowance)."""
    torch.manual_seed(0)
    block = identity_bn(LinearBlock(256, 16))
    mid, rad = torch.rand(8, 256), torch.rand(8, 256) * 0.1
    mid[:, 64:], rad[:, 64:] = 0, 0  # a quarter live: the live-input path
    with torch.no_grad():
        _, _, _, pre_mid, pre_rad = block.interval(mid, mid, rad)
    weight = block.linear.weight.double()
    exact_rad = rad.double() @ weight.abs().t()
    assert close(pre_rad, exact_rad) and close(pre_mid, mid.double() @ weight.t() + block.linear.bias.double())
