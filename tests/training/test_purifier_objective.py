import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from training.models import ConvAutoencoder, VGG16, VGGConfig
from training.train_purifier import objective, val_loss


def _batch():
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(6, 1, 32, 32, generator=g)
    adv = (clean + 0.1 * torch.randn(6, 1, 32, 32, generator=g)).clamp(0, 1)
    return adv, clean, torch.arange(6) % 10


def test_pure_mse_by_default_and_the_guided_term_adds_weighted_cross_entropy():
    classifier = VGG16(VGGConfig(width=0.0625)).eval()
    adv, clean, labels = _batch()
    purified = ConvAutoencoder().eval()(adv)
    mse = F.mse_loss(purified, clean)
    ce = F.cross_entropy(classifier(purified), labels)
    assert torch.equal(objective(classifier, 0.0)(purified, clean, labels), mse)
    assert torch.allclose(objective(classifier, 0.5)(purified, clean, labels), mse + 0.5 * ce)


def test_the_guided_term_sends_gradient_to_the_purifier_only_through_its_output():
    classifier = VGG16(VGGConfig(width=0.0625)).eval()
    for p in classifier.parameters():
        p.requires_grad_(False)
    model = ConvAutoencoder()
    adv, clean, labels = _batch()
    out = model(adv)
    grads = [torch.autograd.grad(objective(classifier, w)(out, clean, labels), out, retain_graph=True)[0]
             for w in (0.0, 1.0)]
    assert not torch.allclose(grads[0], grads[1])  # the classifier's term changes what the purifier learns


def test_validation_objective_matches_the_training_objective_under_the_same_noise():
    classifier = VGG16(VGGConfig(width=0.0625)).eval()
    model = ConvAutoencoder().eval()
    adv, clean, labels = _batch()
    got = val_loss(model, classifier, 0.3, TensorDataset(adv, clean, labels), torch.device("cpu"))
    torch.manual_seed(0)
    with torch.no_grad():
        want = objective(classifier, 0.3)(model(adv), clean, labels).item()
    assert abs(got - want) < 1e-5
