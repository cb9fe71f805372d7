from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from service.artifacts import load_dataset
from service.config import Settings
from service.inference import InferenceModel
from tests.service.tiny_artifacts import THRESHOLD


@pytest.fixture
def model(tiny_artifacts: Path) -> InferenceModel:
    return InferenceModel.served(load_dataset(tiny_artifacts / "mnist", torch.device("cpu")), Settings())


def _flat(level: int) -> torch.Tensor:
    return torch.full((1, 32, 32), level / 9)


def test_classify_and_purify_return_plain_values_in_order(model: InferenceModel) -> None:
    assert [p.label for p in model.classify([_flat(i) for i in (4, 0, 9)])] == [4, 0, 9]
    purified = model.purify([_flat(2), _flat(7)], "autoencoder-fgsm")
    assert [p.image.shape for p in purified] == [(1, 32, 32)] * 2
    assert all(p.linf <= p.l2 and 0 < p.mse < THRESHOLD for p in purified)


def test_suspected_when_the_reconstruction_error_passes_the_threshold(model: InferenceModel) -> None:
    assert not any(d.suspected_adversarial for d in model.defend([_flat(3), _flat(6)], "autoencoder"))
    model.thresholds["autoencoder"] = 0.0
    assert all(d.suspected_adversarial for d in model.defend([_flat(3), _flat(6)], "autoencoder"))
    # a purifier without a calibrated threshold flags only disagreement
    assert not any(d.suspected_adversarial for d in model.defend([_flat(3), _flat(6)], "autoencoder-pgd"))


def test_suspected_when_defended_and_undefended_labels_disagree(model: InferenceModel) -> None:
    # halfway between two brightness classes: purification noise can flip the label, never the threshold
    model.thresholds["autoencoder"] = 1.0
    results = model.defend([torch.full((1, 32, 32), 4.5 / 9)] * 64, "autoencoder")
    assert all(r.suspected_adversarial == (r.defended.label != r.undefended.label) for r in results)
    assert any(r.suspected_adversarial for r in results)


@pytest.mark.parametrize("parallel", [False, True])
def test_defend_classifies_the_raw_and_the_purified_images(tiny_artifacts: Path, parallel: bool) -> None:
    """Serial (one classifier call on both) or parallel (raw images on the branch thread): same contract."""
    artifacts = load_dataset(tiny_artifacts / "mnist", torch.device("cpu"))
    with ThreadPoolExecutor(max_workers=1) as branch:
        model = InferenceModel.served(artifacts, Settings(), branch if parallel else None)
        images = [torch.full((1, 32, 32), i / 18) for i in range(18)]
        results = model.defend(images, "autoencoder")
    assert [r.undefended for r in results] == model.classify(images)
    assert [r.defended for r in results] == model.classify([r.purified.image for r in results])
