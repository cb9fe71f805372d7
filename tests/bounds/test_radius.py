"""The certified-radius search: the radius it returns is proved (by the served bounds and by the float64
reference), one level more is not, the prior and the probe count move only its speed, and no attack at the
radius changes a label."""

import pytest
import torch

from advattacks import PGD
from bounds import LEVELS, RadiusSearch, certified_margin, radius_prior
from tests.bounds.test_exact import reference_margins, tiny_net
from tests.bounds.test_ibp import scripted

EPS = 0.01  # 2.55 grey levels: the tiny network certifies some images there and not others


class Counted:
    """A model whose ``bounds`` calls and boxes are counted."""

    def __init__(self, net: torch.nn.Module) -> None:
        self.net, self.calls, self.boxes = net, 0, 0

    def bounds(self, x, eps, labels):
        self.calls, self.boxes = self.calls + 1, self.boxes + eps.numel()
        return self.net.bounds(x, eps, labels)


def proved(net, x: torch.Tensor, labels: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return certified_margin(net.bounds(x, radius, labels)[1], labels) > 0


@pytest.fixture(scope="module")
def case() -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(1)
    return tiny_net(3), torch.rand(48, 1, 8, 8)


@pytest.mark.parametrize("levels", [LEVELS, 2000])
@pytest.mark.parametrize("probes", [1, 3, 7])
def test_the_radius_is_proved_and_one_level_more_is_not(case, levels: int, probes: int) -> None:
    net, x = case
    logits, certified, found = RadiusSearch(probes=probes, levels=levels).certify(net, x, EPS)
    labels = logits.argmax(1)
    assert (found > 0).all() and (found < levels).all() and len(set(found.tolist())) > 2
    assert proved(net, x, labels, found / levels).all()
    assert not proved(net, x, labels, (found + 1) / levels).any()
    for level in set(found.tolist()):  # the exact float64 bounds prove it too: they are never looser
        at = found == level
        exact = reference_margins(net, x[at], level / levels, labels[at])[0]
        assert (certified_margin(exact, labels[at]) > 0).all()


def test_the_prior_and_the_probe_count_move_the_speed_never_the_answer(case) -> None:
    net, x = case
    flat = Counted(net)
    want = RadiusSearch(probes=3).certify(flat, x, EPS)[2]
    counts = torch.bincount(want, minlength=LEVELS + 1).tolist()
    informed = Counted(net)
    assert torch.equal(RadiusSearch(counts, probes=3).certify(informed, x, EPS)[2], want)
    wrong = [0] * (LEVELS + 1)
    wrong[200] = 1000  # every image expected far from where it is
    assert torch.equal(RadiusSearch(wrong, probes=3).certify(net, x, EPS)[2], want)
    for probes in (1, 2, 15):
        assert torch.equal(RadiusSearch(probes=probes).certify(net, x, EPS)[2], want)
    assert informed.calls < flat.calls and informed.boxes < flat.boxes


def test_a_search_stopped_early_answers_a_smaller_radius_still_proved(case) -> None:
    net, x = case
    full = RadiusSearch(probes=1).certify(net, x, EPS)[2]
    for rounds in (1, 2):
        counted = Counted(net)
        logits, _, found = RadiusSearch(probes=1, rounds=rounds).certify(counted, x, EPS)
        assert counted.calls == rounds  # one batched call a round; not every bracket closes this early
        assert (found <= full).all() and (found < full).any()
        assert proved(net, x, logits.argmax(1), found / LEVELS)[found > 0].all()


class SignOnly(Counted):
    """Bounds that say only whether each box is proved (margin +1 or -1), not by how much."""

    def bounds(self, x, eps, labels):
        logits, margins = super().bounds(x, eps, labels)
        own = torch.nn.functional.one_hot(logits.argmax(1) if labels is None else labels, margins.size(1))
        return logits, torch.where(margins > 0, 1.0, -1.0).masked_fill(own.repeat_interleave(
            eps.numel() // len(x), 0) > 0, 0.0)


@pytest.mark.parametrize("probes", [1, 2])
def test_the_margins_guide_the_probes_toward_the_radius(case, probes: int) -> None:
    """A margin's size says how far the radius is: the search that reads it needs fewer rounds than the one
    that sees only proved or not (a bisection by the prior), and answers the same."""
    net, x = case
    guided, blind = Counted(net), SignOnly(net)
    want = RadiusSearch(probes=probes).certify(guided, x, EPS)[2]
    assert torch.equal(RadiusSearch(probes=probes).certify(blind, x, EPS)[2], want)
    assert guided.calls < blind.calls


def test_certified_means_the_eps_ball_is_proved_and_agrees_with_the_radius(case) -> None:
    net, x = case
    under_eps = int(EPS * LEVELS)  # 2: the largest grey level inside the eps ball
    logits, certified, found = RadiusSearch().certify(net, x, EPS)
    at_eps = proved(net, x, logits.argmax(1), torch.full((len(x),), EPS))
    assert torch.equal(certified, at_eps | (found / LEVELS >= EPS))
    assert certified.any() and (~certified).any()
    assert (found[certified] >= under_eps).all()
    _, certified_only, levels = RadiusSearch(rounds=0).certify(net, x, EPS)
    assert torch.equal(certified_only, at_eps)
    assert torch.equal(levels, torch.where(at_eps, under_eps, 0))


def test_a_label_that_holds_everywhere_is_certified_over_the_whole_input_range() -> None:
    net = tiny_net(3)
    with torch.no_grad():
        net.head.weight.zero_()  # the logits are the head's bias whatever the image
    _, certified, found = RadiusSearch().certify(net, torch.rand(4, 1, 8, 8), EPS)
    assert certified.all() and (found == LEVELS).all()


def test_the_probes_lie_inside_the_bracket_and_a_peaked_prior_gets_its_peak_first() -> None:
    search = RadiusSearch(probes=5)
    for lo, hi in ((0, LEVELS + 1), (10, 14), (7, 9), (100, 200)):
        plan = search.plan(lo, hi)
        assert list(plan) == sorted(set(plan)) and len(plan) == min(5, hi - lo - 1)
        assert all(lo < q < hi for q in plan)
    peaked = [0] * (LEVELS + 1)
    peaked[105] = 800
    assert {105, 106} <= set(RadiusSearch(peaked, probes=2).plan(0, LEVELS + 1))
    with pytest.raises(ValueError):
        RadiusSearch([1] * LEVELS)
    with pytest.raises(ValueError):
        RadiusSearch(probes=0)


def test_the_prior_counts_each_images_radius(case) -> None:
    net, x = case
    counts = radius_prior(net, x, EPS, batch_size=20)
    assert counts == torch.bincount(RadiusSearch().certify(net, x, EPS)[2], minlength=LEVELS + 1).tolist()


def test_no_attack_at_the_radius_changes_the_label(case) -> None:
    net, x = case
    logits, _, found = RadiusSearch(levels=2000).certify(net, x, EPS)
    labels, radius = logits.argmax(1), found / 2000
    for alpha in (0.25, 0.5):
        adv = PGD(net, eps=radius, alpha=alpha * radius.max().item(), steps=30, random_start=True)(x, labels)
        assert ((adv - x).abs().flatten(1).amax(1) <= radius + 1e-6).all()
        assert (net(adv).argmax(1) == labels).all()


def test_an_export_gives_the_same_certificates(case) -> None:
    net, x = case
    frozen = scripted(net, exported=True)
    for want, got in zip(RadiusSearch().certify(net, x, EPS), RadiusSearch().certify(frozen, x, EPS), strict=True):
        assert torch.equal(want, got) if want.dtype != torch.float32 else torch.allclose(want, got, atol=1e-5)


class Ragged:
    """Bounds that prove levels 0 to 40 and 60 to 70, not 41 to 59 nor above 70: not nested, as float rounding
    could make them at the edge. Label 0 whatever the image."""

    def bounds(self, x, eps, labels):
        level = (eps * LEVELS).round()
        margin = torch.where((level <= 40) | ((level >= 60) & (level <= 70)), 1.0, -1.0)
        return torch.tensor([[1.0, 0.0]]).expand(len(x), 2), torch.stack([torch.zeros_like(margin), margin], 1)


@pytest.mark.parametrize("probes", [1, 2, 3, 7, 15])
@pytest.mark.parametrize("eps", [0.1, 0.2])
def test_bounds_that_are_not_nested_still_give_a_proved_level_with_the_next_one_unproved(probes: int,
                                                                                          eps: float) -> None:
    _, certified, found = RadiusSearch(probes=probes).certify(Ragged(), torch.zeros(1, 1, 2, 2), eps)
    assert found.item() in (40, 70)  # proved there, and not one level above
    # at 0.2 (51 levels) the bounds fail, but a proved ball of 70 levels holds the 0.2 ball
    assert certified.item() == (eps == 0.1 or found.item() == 70)
