import json

import pytest
import torch

from training.advsets import model_fingerprint
from training.jit import freeze, load, quiet_jit
from training.models import VGG16, VGGConfig

from .conftest import ARTIFACTS

# the committed classifiers: a plain load and an optimized one (conv-BN folding) differ by float32 rounding
CLASSIFIERS = ("classifier.pt", "adv-pgd10-16ep.pt", "ibp-cnn7.pt")


def shape(name):
    """The input shape of a committed classifier (its manifest entry's own, else the manifest's)."""
    manifest = json.loads((ARTIFACTS / "mnist" / "manifest.json").read_text())
    entry = next(m for m in manifest["models"].values() if m["file"] == name)
    return tuple(entry.get("input_shape", manifest["input_shape"]))


def optimized(path):
    with quiet_jit():
        return torch.jit.optimize_for_inference(load(path))


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_a_committed_classifier_hashes_alike_however_it_is_loaded(name):
    path = ARTIFACTS / "mnist" / name
    assert model_fingerprint(load(path), shape=shape(name)) == model_fingerprint(optimized(path), shape=shape(name))


def test_an_eager_model_hashes_like_its_frozen_export():
    torch.manual_seed(0)
    model = VGG16(VGGConfig(width=0.125)).eval()
    assert model_fingerprint(model) == model_fingerprint(freeze(model))


def test_different_models_hash_differently():
    prints = {model_fingerprint(load(ARTIFACTS / "mnist" / name), shape=shape(name)) for name in CLASSIFIERS}
    assert len(prints) == len(CLASSIFIERS)
