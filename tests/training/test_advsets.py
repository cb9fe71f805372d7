import pytest
import torch

from training.advsets import model_fingerprint
from training.jit import freeze, load, quiet_jit
from training.models import VGG16, VGGConfig

from .conftest import ARTIFACTS

# the committed classifiers: a plain load and an optimized one (conv-BN folding) differ by float32 rounding
CLASSIFIERS = ("classifier.pt", "adv-pgd10-16ep.pt", "ibp-cnn7.pt")


def optimized(path):
    with quiet_jit():
        return torch.jit.optimize_for_inference(load(path))


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_a_committed_classifier_hashes_alike_however_it_is_loaded(name):
    path = ARTIFACTS / "mnist" / name
    assert model_fingerprint(load(path)) == model_fingerprint(optimized(path))


def test_an_eager_model_hashes_like_its_frozen_export():
    torch.manual_seed(0)
    model = VGG16(VGGConfig(width=0.125)).eval()
    assert model_fingerprint(model) == model_fingerprint(freeze(model))


def test_different_models_hash_differently():
    prints = {model_fingerprint(load(ARTIFACTS / "mnist" / name)) for name in CLASSIFIERS}
    assert len(prints) == len(CLASSIFIERS)
