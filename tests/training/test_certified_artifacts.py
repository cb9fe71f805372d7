"""The committed certified classifiers: their bounds hold at every adversarial example an attack finds, no attack
flips an image they certify, they keep the certified accuracy measured when they were committed, and the
robustness study found no violation either."""

import json

import pytest
import torch
import torchattacks

from advattacks import PGD
from bounds import verify
from training import data
from training.jit import load

from .conftest import ARTIFACTS, DATA_ROOT, REPO

# (dataset, pipeline) -> (eps, certified-accuracy floor on the first 500 test images): the measured figure less
# its Wilson 95% CI
FLOORS = {
    ("mnist", "ibp-cnn7"): (0.3, 0.87),  # measured 0.902 (451/500), Wilson [0.873, 0.925]
    ("fashion-mnist", "ibp-cnn7"): (0.1, 0.74),  # measured 0.782 (391/500), Wilson [0.744, 0.816]
}
N, ATTACKED = 500, 200


def _classifier(dataset: str, pipeline: str):
    """The pipeline's classifier, and the side of the images it takes (its manifest entry's own input shape)."""
    manifest = json.loads((ARTIFACTS / dataset / "manifest.json").read_text())
    entry = manifest["pipelines"][pipeline]
    assert entry["purifier"] is None
    model = next(m for m in manifest["models"].values() if m["file"] == entry["classifier"])
    return load(ARTIFACTS / dataset / entry["classifier"]), model.get("input_shape", manifest["input_shape"])[-1]


def _test_images(dataset: str, n: int, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(t[:n] for t in data.load_splits(DATA_ROOT, dataset, side=side)["test"].tensors)


def _certified(model, x, y, eps: float) -> torch.Tensor:
    return verify(model, x, y, eps, "cpu")[1]


@pytest.mark.parametrize(("dataset", "pipeline"), sorted(FLOORS))
def test_certified_accuracy_holds_its_floor(dataset: str, pipeline: str) -> None:
    eps, floor = FLOORS[(dataset, pipeline)]
    model, side = _classifier(dataset, pipeline)
    x, y = _test_images(dataset, N, side)
    certified = _certified(model, x, y, eps).float().mean().item()
    print(f"{dataset}/{pipeline}: IBP-certified at eps={eps} on {N} test images: {certified:.3f}")
    assert certified >= floor


@pytest.mark.parametrize(("dataset", "pipeline"), sorted(FLOORS))
def test_no_attack_breaks_a_certificate_and_the_bounds_hold_at_every_adversarial_example(dataset, pipeline) -> None:
    eps, _ = FLOORS[(dataset, pipeline)]
    model, side = _classifier(dataset, pipeline)
    x, y = _test_images(dataset, ATTACKED, side)
    certified = _certified(model, x, y, eps)
    with torch.no_grad():
        _, lower = model.bounds(x, torch.full((len(x),), eps), y)
    torch.manual_seed(0)
    attacks = {"PGD-50": PGD(model, eps=eps, alpha=eps / 20, steps=50, random_start=True),
               "APGD-CE": torchattacks.APGD(model, eps=eps, steps=30, seed=0),
               "APGD-DLR": torchattacks.APGD(model, eps=eps, steps=30, loss="dlr", seed=0)}
    for name, attack in attacks.items():
        adv = attack(x, y)
        assert (adv - x).abs().max() <= eps + 1e-6 and adv.min() >= 0 and adv.max() <= 1
        with torch.no_grad():
            out = model(adv)
        robust = out.argmax(1) == y
        assert not (certified & ~robust).any(), f"{name} flipped a certified image"
        true_margins = out.gather(1, y[:, None]) - out
        assert (true_margins >= lower - 1e-4).all(), f"{name} found a point outside the bounds"
        print(f"{dataset}/{pipeline} {name}: robust {robust.float().mean():.3f} >= certified {certified.float().mean():.3f}")


@pytest.mark.parametrize("dataset", sorted(data.DATASETS))
def test_the_robustness_study_found_no_attack_that_breaks_a_certificate(dataset: str) -> None:
    manifest = json.loads((ARTIFACTS / dataset / "manifest.json").read_text())
    results = json.loads((REPO / "docs" / "robustness" / f"{dataset}.json").read_text())
    certified = [name for name, p in manifest["pipelines"].items() if (p.get("metrics") or {}).get("certified")]
    assert certified, "every dataset serves a certified pipeline, measured by the study"
    for name in certified:
        metrics = manifest["pipelines"][name]["metrics"]
        assert metrics["certified"]["violations"] == 0
        hits = results["certified"][name]["hits"]
        assert metrics["certified"]["n"] == len(hits) == 10_000
        # per image: certified implies it survived every attack of the worst case
        cells = [c for c in results["cells"].values() if c["defense"] == name and c["eps"] <= metrics["eps"] + 1e-9]
        assert cells, "the suite ran on the certified pipeline"
        for cell in cells:
            assert all(c == "1" for c, h in zip(cell["hits"], hits) if h == "1"), cell["attack"]
        n = metrics["worst_case"]["n"]
        assert hits[:n].count("1") / n <= metrics["worst_case"]["accuracy"] + 1e-9
