"""The committed artifacts keep their measured accuracy (1,000 test images, a fast check)."""

import torch

from advattacks import FGSM

# Floors a little under the full-test-set figures in docs/results.md (the 1k-sample
# Wilson interval is about +-1 point near 99% and +-3 points near 85%).
FLOORS = {
    "mnist": {"clean": 0.985, "purified_clean": 0.95, "fgsm_undefended_max": 0.5, "fgsm_defended": 0.85},
    "fashion-mnist": {"clean": 0.90, "purified_clean": 0.83, "fgsm_undefended_max": 0.5, "fgsm_defended": 0.85},
}


def _acc(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def test_clean_and_fgsm_defended_accuracy(committed):
    floors = FLOORS[committed["dataset"]]
    m, x, y = committed["models"], committed["x"], committed["y"]
    clf, purifier = m["classifier"], m[committed["manifest"]["default_purifier"]]
    torch.manual_seed(0)
    assert _acc(clf, x, y) >= floors["clean"]
    assert _acc(clf, purifier(x), y) >= floors["purified_clean"]
    adv = FGSM(clf, eps=0.6)(x, y)
    assert _acc(clf, adv, y) <= floors["fgsm_undefended_max"]  # the attack works ...
    assert _acc(clf, purifier(adv), y) >= floors["fgsm_defended"]  # ... and the purifier undoes it


def test_manifest_metrics_agree_with_a_fresh_measurement(committed):
    """The clean accuracy recorded in the manifest is reproduced on this sample within its CI."""
    recorded = committed["manifest"]["metrics"]["clean"]["undefended"]["accuracy"]
    measured = _acc(committed["models"]["classifier"], committed["x"], committed["y"])
    assert abs(measured - recorded) < 0.02


def test_bundled_samples_preprocess_to_the_training_tensors(committed):
    """The manifest's preprocessing applied to the bundled PNGs gives exactly what training saw."""
    from PIL import Image

    from training.data import PREPROCESSING, preprocess

    manifest = committed["manifest"]
    assert manifest["preprocessing"] == PREPROCESSING
    assert manifest["input_shape"] == list(committed["x"].shape[1:])
    for i, sample in enumerate(manifest["samples"]):
        with Image.open(committed["folder"] / sample["file"]) as image:
            assert torch.equal(preprocess(image), committed["x"][i])
        assert sample["label"] == int(committed["y"][i])
