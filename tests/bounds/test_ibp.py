"""Interval bounds: sound at random points of the box and at adversarial examples, identical once frozen, and
a certificate that no attack breaks."""

import warnings

import pytest
import torch
from torch import nn

from advattacks import PGD
from bounds import Bounded, box, certified_margin, prepared
from bounds.ibp import ConvBlock, Flatten, LinearBlock, Resample

TOL = 1e-5  # float32 rounding of the bound arithmetic


def small_net(seed: int = 0, side: int = 32) -> Bounded:
    """A random conv-BN-ReLU network with trained-looking BN statistics, in eval mode; below 32, ``side`` puts a
    bilinear resampling of the 32x32 input first."""
    torch.manual_seed(seed)
    resample = [Resample(side)] if side != 32 else []
    blocks = [*resample, ConvBlock(1, 4), ConvBlock(4, 8, stride=2), Flatten(), LinearBlock(8 * (side // 2) ** 2, 32)]
    net = Bounded(blocks, nn.Linear(32, 10))
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(64, 1, 32, 32))
    return net.eval()


def true_margins(net: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    out = net(x)
    return out.gather(1, labels[:, None]) - out


@pytest.mark.parametrize("side", [32, 28])
@pytest.mark.parametrize("eps", [0.001, 0.01, 0.1])
def test_bounds_hold_at_random_points_and_corners_of_the_box(eps: float, side: int) -> None:
    net, x = small_net(side=side), torch.rand(16, 1, 32, 32)
    labels = net(x).argmax(1)
    with torch.no_grad():
        _, lower = net.bounds(x, torch.full((16,), eps), labels)
        lo, hi = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
        for trial in range(100):
            if trial % 2:  # a corner of the box
                point = torch.where(torch.rand_like(x) < 0.5, lo, hi)
            else:
                point = lo + (hi - lo) * torch.rand_like(x)
            assert (true_margins(net, point, labels) >= lower - TOL).all()


def test_resampling_is_a_convex_combination_so_it_never_widens_a_box() -> None:
    x = torch.rand(8, 1, 32, 32)
    out = Resample(28)(x)
    assert out.shape == (8, 1, 28, 28)
    assert (out >= x.amin((1, 2, 3), keepdim=True) - TOL).all() and (out <= x.amax((1, 2, 3), keepdim=True) + TOL).all()
    mid, rad = box(x, torch.full((8,), 0.1))
    _, out_mid, out_rad, _, _ = Resample(28).interval(x, mid, rad)
    assert torch.allclose(out_rad, Resample(28)(rad)) and (out_rad <= 0.1 + TOL).all()
    assert torch.allclose(out_mid, Resample(28)(mid))


def test_bounds_hold_at_adversarial_examples_and_tighten_with_eps() -> None:
    net, x = small_net(1), torch.rand(32, 1, 32, 32)
    labels = net(x).argmax(1)
    previous = None
    for eps in (0.002, 0.01, 0.05):
        adv = PGD(net, eps=eps, alpha=eps / 4, steps=20)(x, labels)
        with torch.no_grad():
            _, lower = net.bounds(x, torch.full((32,), eps), labels)
            assert (true_margins(net, adv, labels) >= lower - TOL).all()
        worst = certified_margin(lower, labels)
        if previous is not None:
            assert (worst <= previous + TOL).all()  # a bigger box never bounds tighter
        previous = worst


def test_the_box_is_clipped_to_the_input_domain() -> None:
    x = torch.tensor([0.0, 0.5, 1.0]).reshape(3, 1, 1, 1)
    mid, rad = box(x, torch.full((3,), 0.2))
    assert torch.allclose(mid - rad, torch.tensor([0.0, 0.3, 0.8]).reshape(3, 1, 1, 1))
    assert torch.allclose(mid + rad, torch.tensor([0.2, 0.7, 1.0]).reshape(3, 1, 1, 1))


def test_zero_radius_bounds_are_the_clean_margins_less_the_rounding_allowance() -> None:
    """At radius 0 only the allowance for float32 rounding is left: below the clean margin, by well under 1%
    of the logits' scale (the dense layer here sums 2,048 products)."""
    net, x = small_net(2), torch.rand(8, 1, 32, 32)
    labels = torch.randint(0, 10, (8,))
    with torch.no_grad():
        logits, lower = net.bounds(x, torch.zeros(8), labels)
        assert torch.allclose(logits, net(x))
        gap = true_margins(net, x, labels) - lower
        assert (gap >= 0).all() and (gap <= 1e-2 * logits.abs().amax()).all()


def test_training_mode_normalises_the_box_with_the_clean_batch_statistics() -> None:
    net, x = small_net(3), torch.rand(64, 1, 32, 32)
    net.train()
    labels = torch.randint(0, 10, (64,))
    logits, lower = net.bounds(x, torch.zeros(64), labels)
    # with eps = 0 the box is the clean batch: the bounds are the train-mode margins exactly
    assert torch.allclose(lower, logits.gather(1, labels[:, None]) - logits, atol=1e-4)


@pytest.mark.parametrize("live_share", [0.05, 0.3, 0.9])
def test_a_dense_layer_bound_skips_only_inputs_that_are_zero_in_every_row(live_share: float) -> None:
    torch.manual_seed(7)
    block = LinearBlock(400, 32).eval()
    live = (torch.rand(400) < live_share).float()
    rows, rad = torch.randn(6, 400) * live, torch.rand(5, 400) * live  # clean and centre rows; radii
    weight, bias = block.linear.weight, block.linear.bias
    with torch.no_grad():
        for model in (block, prepared(Bounded([block], nn.Linear(32, 10)).for_export()).blocks[0]):
            got_rows, got_rad = model._live_products(rows, rad)
            assert torch.allclose(got_rows, torch.addmm(bias, rows, weight.t()), atol=TOL)
            assert torch.allclose(got_rad, rad.mm(weight.abs().t()), atol=TOL)
    assert not hasattr(block, "by_input")  # the export's copy keeps the layout; the trained network is untouched
    exported = Bounded([LinearBlock(400, 32)], nn.Linear(32, 10)).for_export()
    assert exported.blocks[0].by_input.numel() == 0  # an export stores the weight alone; ``prepare`` builds this
    exported = prepared(exported).double()
    assert exported.blocks[0].by_input.dtype == torch.float64  # a buffer: it follows the module's moves
    assert "blocks.0.by_input" not in exported.state_dict()


def scripted(net: Bounded, exported: bool) -> torch.jit.ScriptModule:
    """The network frozen, or as exported: scripted with an empty layout, then prepared."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
        if exported:
            return prepared(torch.jit.script(net.for_export()))
        return torch.jit.freeze(torch.jit.script(net), preserved_attrs=["bounds"])


@pytest.mark.parametrize("exported", [False, True])
def test_frozen_torchscript_bounds_match_the_eager_network(exported: bool) -> None:
    net, x = small_net(4), torch.rand(8, 1, 32, 32)
    frozen = scripted(net, exported)
    labels = net(x).argmax(1)
    eps = torch.full((8,), 0.01)
    with torch.no_grad():
        assert torch.allclose(net.bounds(x, eps, labels)[1], frozen.bounds(x, eps, labels)[1], atol=TOL)
        assert torch.allclose(net.bounds(x, eps, None)[1], frozen.bounds(x, eps, None)[1], atol=TOL)


def test_no_attack_flips_a_certified_image() -> None:
    net, x, eps = small_net(6), torch.rand(64, 1, 32, 32), 0.002
    with torch.no_grad():
        logits, margins = net.bounds(x, torch.full((64,), eps), None)
    labels = logits.argmax(1)
    certified = certified_margin(margins, labels) > 0
    assert certified.sum() >= 5
    for attack in (PGD(net, eps=eps, alpha=eps / 4, steps=40), PGD(net, eps=eps, alpha=eps / 2, steps=10)):
        adv = attack(x, labels)
        assert (net(adv).argmax(1)[certified] == labels[certified]).all()
