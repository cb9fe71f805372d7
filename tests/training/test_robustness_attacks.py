"""The adaptive and black-box attacks: EOT averages gradients, BPDA's backward is the identity, an
identity purifier changes nothing, and every attack stays in its eps-ball and in [0, 1]."""

import dataclasses

import pytest
import torch
from torch import nn

from advattacks import APGD, BPDA, EOTPGD, FGSMRS, PGD, TRADES, Square, StraightThrough
from training.models import VGG16, AutoencoderConfig, ConvAutoencoder, VGGConfig
from training.robustness import train_adversarial
from training.robustness.batches import trades_loss, with_reconstruction
from training.runs import load_checkpoint, read_timings, train_epoch

from .conftest import DATA_ROOT


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.rand(8, 1, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g)


@pytest.fixture
def purifier():
    torch.manual_seed(1)
    return ConvAutoencoder(AutoencoderConfig(latent_dim=10, noise_std=1.0)).eval()


def test_eot_gradient_is_the_mean_of_single_draw_gradients(tiny_net, purifier, batch):
    x, y = batch
    defended = nn.Sequential(purifier, tiny_net)
    torch.manual_seed(7)
    eot, _ = EOTPGD(defended, eot_samples=4).eot_grad(x, y)
    torch.manual_seed(7)  # the same four noise draws, one at a time
    singles = [EOTPGD(defended, eot_samples=1).eot_grad(x, y)[0] for _ in range(4)]
    assert not torch.allclose(singles[0], singles[1])  # the draws differ, so the average means something
    assert torch.allclose(eot, torch.stack(singles).mean(0), atol=1e-6, rtol=1e-4)


def test_eot_marks_an_image_fooled_only_when_every_draw_misclassifies(purifier, tiny_net, batch):
    x, y = batch
    defended = nn.Sequential(purifier, tiny_net)
    torch.manual_seed(3)
    _, fooled = EOTPGD(defended, eot_samples=5).eot_grad(x, y)
    torch.manual_seed(3)
    with torch.no_grad():
        wrong = torch.stack([defended(x).argmax(1) != y for _ in range(5)])
    assert torch.equal(fooled, wrong.all(0))


@pytest.mark.parametrize("attack", ["eot", "bpda"])
def test_an_attack_through_an_identity_purifier_is_the_undefended_attack(tiny_net, batch, attack):
    x, y = batch
    kwargs = dict(eps=0.3, alpha=0.01, steps=40, eot_samples=3, random_start=False, stop_when_fooled=False)
    if attack == "eot":
        adv = EOTPGD(nn.Sequential(nn.Identity(), tiny_net), **kwargs)(x, y)
    else:
        adv = BPDA(nn.Identity(), tiny_net, **kwargs)(x, y)
    assert torch.allclose(adv, PGD(tiny_net, eps=0.3, alpha=0.01, steps=40)(x, y), atol=1e-6)


def test_bpda_forward_is_the_purifier_and_its_backward_the_identity(purifier, batch):
    x, _ = batch
    torch.manual_seed(0)
    want = purifier(x)
    x = x.clone().requires_grad_(True)
    torch.manual_seed(0)
    out = StraightThrough(purifier)(x)
    assert torch.allclose(out, want, atol=1e-6)
    weights = torch.randn_like(x)
    (grad,) = torch.autograd.grad((out * weights).sum(), x)
    assert torch.equal(grad, weights)
    (true_grad,) = torch.autograd.grad((purifier(x) * weights).sum(), x)
    assert not torch.allclose(true_grad, weights)  # the real purifier's Jacobian is not the identity


def _attacks(model, purifier, classifier, eps):
    return {
        "eot-pgd": EOTPGD(model, eps=eps, steps=5, eot_samples=2, stop_when_fooled=False),
        "eot-fgsm": EOTPGD(model, eps=eps, alpha=eps, steps=1, eot_samples=2, random_start=False,
                           stop_when_fooled=False),
        "bpda": BPDA(purifier, classifier, eps=eps, steps=5, eot_samples=2, restarts=2, stop_when_fooled=False),
        "square": Square(model, eps=eps, n_queries=30),
        "fgsm-rs": FGSMRS(model, eps=eps),
        "trades": TRADES(classifier, eps=eps, steps=3),
        "apgd": APGD(model, eps=eps, steps=5, eot_samples=2),
    }


@pytest.mark.parametrize("name", ["eot-pgd", "eot-fgsm", "bpda", "square", "fgsm-rs", "trades", "apgd"])
@pytest.mark.parametrize("eps", [0.1, 0.3, "per-image"])
def test_every_attack_stays_in_its_eps_ball_and_in_the_image_range(tiny_net, purifier, batch, name, eps):
    x, y = batch
    eps = torch.linspace(0.05, 0.4, len(x)) if eps == "per-image" else eps
    attack = _attacks(nn.Sequential(purifier, tiny_net), purifier, tiny_net, eps)[name]
    adv = attack(x, y)
    bound = torch.as_tensor(eps).expand(len(x)) if torch.is_tensor(eps) else torch.full((len(x),), eps)
    assert ((adv - x).abs().flatten(1).amax(1) <= bound + 1e-6).all()
    assert adv.min() >= 0 and adv.max() <= 1
    assert (adv != x).any()


def test_square_finds_adversarial_examples_from_scores_alone(tiny_net):
    x = torch.rand(32, 1, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        y = tiny_net(x).argmax(1)  # every image starts correctly classified
    attack = Square(tiny_net, eps=0.2, n_queries=200)
    adv = attack(x, y)
    with torch.no_grad():
        fooled = (tiny_net(adv).argmax(1) != y).float().mean().item()
    assert fooled > 0.5
    assert (attack.margin(adv, y) < attack.margin(x, y)).all()


def test_eot_pgd_with_one_draw_on_a_deterministic_model_is_pgd_with_restarts_only_on_survivors(tiny_net, batch):
    x, y = batch
    single = EOTPGD(tiny_net, eps=0.2, steps=10, eot_samples=1, random_start=False, stop_when_fooled=False)(x, y)
    assert torch.allclose(single, PGD(tiny_net, eps=0.2, alpha=0.05, steps=10)(x, y), atol=1e-6)
    torch.manual_seed(0)
    adv = EOTPGD(tiny_net, eps=0.2, steps=10, eot_samples=1, restarts=3)(x, y)
    with torch.no_grad():
        fooled = tiny_net(adv).argmax(1) != y
    assert fooled.float().mean() >= (tiny_net(single).argmax(1) != y).float().mean() - 1e-9


def test_apgd_returns_each_images_highest_loss_point_and_on_a_linear_model_the_corner_of_its_ball(tiny_net, batch):
    x, y = batch
    adv = APGD(tiny_net, eps=0.2, steps=8, random_start=False)(x, y)
    with torch.no_grad():
        ce = torch.nn.functional.cross_entropy
        assert (ce(tiny_net(adv), y, reduction="none") >= ce(tiny_net(x), y, reduction="none")).all()
    # two classes, linear logits: the loss rises along sign(w_other - w_true) everywhere, so the best point is
    # the corner of the eps-ball (inside [0, 1]) that the first step of 2 eps already reaches
    linear = nn.Sequential(nn.Flatten(), nn.Linear(32 * 32, 2)).eval()
    labels = torch.zeros(len(x), dtype=torch.long)
    w = linear[1].weight.detach()
    corner = (x + 0.2 * (w[1] - w[0]).sign().view(1, 1, 32, 32)).clamp(0, 1)
    assert torch.allclose(APGD(linear, eps=0.2, steps=8, random_start=False)(x, labels), corner, atol=1e-6)


def test_trades_moves_the_prediction_away_from_the_clean_one_and_its_loss_weighs_that_by_beta(tiny_net, batch):
    x, y = batch
    adv = TRADES(tiny_net, eps=0.3, steps=5)(x, y)
    with torch.no_grad():
        clean, moved = tiny_net(x), tiny_net(adv)
    kl = torch.nn.functional.kl_div(moved.log_softmax(1), clean.softmax(1), reduction="batchmean")
    assert kl > 1e-3
    loss = trades_loss(beta=2.0)
    base = torch.nn.functional.cross_entropy(clean, y)
    assert torch.allclose(loss(torch.cat([clean, clean]), y), base)  # no KL term when nothing moved
    assert torch.allclose(loss(torch.cat([clean, moved]), y), base + 2.0 * kl)



def test_the_trades_loss_has_finite_gradients_when_a_clean_probability_underflows_to_zero():
    clean = torch.tensor([[200.0, -200.0, 0.0]], requires_grad=True)  # softmax gives exactly 0 for class 1
    trades_loss(beta=1.0)(torch.cat([clean, clean * 0.5]), torch.tensor([0])).backward()
    assert torch.isfinite(clean.grad).all()

def test_a_trades_run_trains_on_clean_and_adversarial_halves_and_records_its_recipe(tmp_path):
    config = train_adversarial.Config(dataset="mnist", root=DATA_ROOT, workdir=tmp_path, inputs="trades", beta=3.0,
                                      steps=2, epochs=1, limit=200, val_n=16, dry_run=True, select_by="apgd",
                                      out="trades.ckpt")
    train_adversarial.run(config)
    _, ckpt = load_checkpoint(config.run_dir / "trades.ckpt", "cpu")
    assert ckpt["complete"] and ckpt["train_config"]["beta"] == 3.0 and ckpt["train_config"]["attack"] == "TRADES"
    assert ckpt["train_config"]["loss"] == "CE(clean) + beta * KL(clean || adversarial)"
    assert ckpt["train_config"]["selection"] == "val APGD-10 accuracy" and len(ckpt["history"]) == 1


def test_the_joint_loss_adds_the_purifiers_distance_from_every_input_to_its_clean_image():
    clean = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    adv = (clean + 0.1).clamp(0, 1)
    logits, labels = torch.randn(8, 10), torch.tensor([0, 1, 2, 3])
    got = with_reconstruction(trades_loss(1.0), nn.Identity(), 2.0)(logits, labels, torch.cat([clean, adv]), clean)
    # the clean half reconstructs exactly; the adversarial half is (adv - clean) away, over half the batch
    want = trades_loss(1.0)(logits, labels) + 2.0 * ((adv - clean) ** 2).mean() / 2
    assert torch.allclose(got, want)


def test_a_joint_run_trains_its_purifier_with_the_classifier_and_resumes_both_from_one_checkpoint(tmp_path):
    config = train_adversarial.Config(dataset="mnist", root=DATA_ROOT, workdir=tmp_path, inputs="trades", joint=True,
                                      latent_dim=16, noise_std=0.5, steps=2, epochs=2, limit=200, val_n=16,
                                      dry_run=True, out="joint.ckpt")
    torch.manual_seed(config.seed)  # what the run starts from: the same seed, classifier first, then purifier
    VGG16(VGGConfig(width=config.width))
    fresh = ConvAutoencoder(AutoencoderConfig(latent_dim=16, noise_std=0.5))
    train_adversarial.run(config)
    purifier, ckpt = load_checkpoint(config.run_dir / "joint-purifier.ckpt", "cpu")
    assert ckpt["complete"] and ckpt["kind"] == "autoencoder" and ckpt["config"]["latent_dim"] == 16
    assert purifier.noise_std == 0.5
    assert ckpt["train_config"]["selection"] == "val PGD-10 accuracy through the purifier"
    assert ckpt["train_config"]["loss"] == "CE(clean) + beta * KL(clean || adversarial) + 1.0 * MSE(purifier, clean)"
    moved = [name for name, w in purifier.state_dict().items() if not torch.equal(w, fresh.state_dict()[name])]
    assert any(name.startswith("encoder.") for name in moved)  # the classifier's loss reached the encoder
    _, classifier = load_checkpoint(config.run_dir / "joint.ckpt", "cpu")
    assert classifier["complete"] and classifier["kind"] == "vgg16"

    with pytest.raises(ValueError, match="--joint trains its own purifier"):
        train_adversarial.run(train_adversarial.Config(dataset="mnist", root=DATA_ROOT, workdir=tmp_path, joint=True,
                                                       purifier="autoencoder.pt", out="other.ckpt"))


def test_a_resumed_run_records_the_training_time_spent_before_the_resume(tmp_path, monkeypatch):
    config = train_adversarial.Config(dataset="mnist", root=DATA_ROOT, workdir=tmp_path, inputs="pgd", steps=2,
                                      epochs=2, limit=200, val_n=16, dry_run=True, out="resumed.ckpt")
    done = []

    def stopped_after_one_epoch(*args, **kwargs):  # the run is stopped during its second epoch
        if done:
            raise KeyboardInterrupt
        done.append(train_epoch(*args, **kwargs))

    monkeypatch.setattr(train_adversarial, "train_epoch", stopped_after_one_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_adversarial.run(config)
    path = config.run_dir / "resumed.ckpt"
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    assert ckpt["epoch"] == 1 and ckpt["train_seconds"] > 0
    torch.save({**ckpt, "train_seconds": 1000.0}, path)  # as if the first epoch had taken 1000 s
    monkeypatch.undo()
    train_adversarial.run(dataclasses.replace(config, resume=True))
    assert 1000 < read_timings(config.run_dir)["train-resumed"] < 1100
