import pytest
import torch
import torchattacks

from advattacks import FGSM, PGD


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.rand(16, 1, 32, 32, generator=g), torch.randint(0, 10, (16,), generator=g)


def test_torchattacks_is_the_pinned_version():
    assert torchattacks.__version__ == "3.5.1"


@pytest.mark.parametrize("eps", [0.1, 0.3, 0.6])
def test_fgsm_step_is_eps_wherever_not_clipped(tiny_net, batch, eps):
    x, y = batch
    attack = FGSM(tiny_net, eps=eps)
    adv = attack(x, y)
    delta = (adv - x).abs()
    moved = (adv > 0) & (adv < 1) & (attack.input_grad(x, y) != 0)  # sign(0) = 0 leaves a pixel alone
    assert moved.sum() > 1000
    assert torch.allclose(delta[moved], torch.full_like(delta[moved], eps), atol=1e-6)
    assert adv.min() >= 0 and adv.max() <= 1
    assert delta.max() <= eps + 1e-6


@pytest.mark.parametrize("eps", [0.05, 0.15, 0.3])
def test_pgd_stays_in_the_eps_ball_and_the_image_range(tiny_net, batch, eps):
    x, y = batch
    adv = PGD(tiny_net, eps=eps, alpha=0.02, steps=20)(x, y)
    assert (adv - x).abs().max() <= eps + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1


def test_per_image_eps(tiny_net, batch):
    x, y = batch
    eps = torch.linspace(0.0, 0.5, len(x))
    adv = PGD(tiny_net, eps=eps, steps=10, alpha=0.05)(x, y)
    assert ((adv - x).abs().flatten(1).max(1).values <= eps + 1e-6).all()


def test_attack_restores_the_model_mode(tiny_net, batch):
    tiny_net.train()
    FGSM(tiny_net)(*batch)
    assert tiny_net.training


def test_fgsm_matches_torchattacks(tiny_net, batch):
    x, y = batch
    ours = FGSM(tiny_net, eps=0.3)(x, y)
    theirs = torchattacks.FGSM(tiny_net, eps=0.3)(x, y)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_pgd_matches_torchattacks(tiny_net, batch):
    x, y = batch
    ours = PGD(tiny_net, eps=0.3, alpha=0.01, steps=40)(x, y)
    theirs = torchattacks.PGD(tiny_net, eps=0.3, alpha=0.01, steps=40, random_start=False)(x, y)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_pgd_hurts_a_trained_model_more_than_fgsm(committed):
    """On the committed classifier: robust <= clean, and PGD (iterative) <= FGSM at the same eps."""
    clf, x, y = committed["models"]["classifier"], committed["x"][:300], committed["y"][:300]

    def acc(images):
        with torch.no_grad():
            return (clf(images).argmax(1) == y).float().mean().item()

    clean, fgsm, pgd = acc(x), acc(FGSM(clf, eps=0.1)(x, y)), acc(PGD(clf, eps=0.1)(x, y))
    assert pgd < fgsm <= clean
    assert pgd < 0.5 * clean
