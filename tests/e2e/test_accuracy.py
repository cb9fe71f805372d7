"""Accuracy over HTTP on the committed artifacts: /classify versus /defended-classify.

200 test images per dataset (every 50th of the 10,000, read with torchvision from ``data/``), clean and
FGSM-attacked (eps 0.6, white-box on the bundled TorchScript classifier, sent as PNG). Also measured: the
detector's detection rate (attacked images flagged) and false-positive rate (clean images flagged), and
sequential single-request latency p50/p95. The numbers are logged and printed in pytest's summary, and
must agree with the offline evaluation in the manifest's ``metrics`` where it has them.
"""

import json
import logging
import math
import time
from collections.abc import Callable

import numpy as np
import pytest

from tests.e2e.conftest import REAL_ARTIFACTS, real_datasets
from tests.e2e.testset import fgsm, load_classifier, load_examples, tensor_png
from tests.support.client import PurifierClient

logger = logging.getLogger(__name__)
N_IMAGES, STRIDE = 200, 50
FGSM_EPS = 0.6
MIN_CLEAN_ACCURACY = {"mnist": 0.95, "fashion-mnist": 0.85}
PAPER_PURIFIERS = ("autoencoder-fgsm", "autoencoder-pgd")
JSON_BATCH = 50


def _sequential(call: Callable[[bytes], object], pngs: list[bytes], seconds: list[float]) -> list:
    answers = []
    for png in pngs:
        started = time.perf_counter()
        answers.append(call(png))
        seconds.append(time.perf_counter() - started)
    return answers


def _measure(
    client: PurifierClient, dataset: str, inputs: dict[str, list[bytes]], truth: list[int], purifier: str
) -> dict:
    """``/classify``, and ``/defended-classify`` with the manifest's default purifier (the one the offline evaluation
    measured), per input set; and the paper's two purifiers."""
    report, timings = {}, {"classify": [], "defended": []}
    for name, pngs in inputs.items():
        raw = _sequential(lambda png: client.classify(png, dataset=dataset), pngs, timings["classify"])
        defended = _sequential(
            lambda png: client.defended_classify(png, dataset=dataset, purifier=purifier), pngs, timings["defended"]
        )
        report[f"{name}/classify"] = np.mean([r.label == t for r, t in zip(raw, truth, strict=True)])
        report[f"{name}/defended"] = np.mean([d.label == t for d, t in zip(defended, truth, strict=True)])
        report[f"{name}/flagged"] = np.mean([d.suspected_adversarial for d in defended])
        for paper in PAPER_PURIFIERS:  # the paper's two purifiers, as JSON batches
            answers = [
                answer
                for start in range(0, len(pngs), JSON_BATCH)
                for answer in client.defended_classify(pngs[start : start + JSON_BATCH], dataset, paper)
            ]
            report[f"{name}/{paper}"] = np.mean([a.label == t for a, t in zip(answers, truth, strict=True)])
    for endpoint, seconds in timings.items():
        report[f"{endpoint}_p50_ms"] = np.percentile(seconds, 50) * 1000
        report[f"{endpoint}_p95_ms"] = np.percentile(seconds, 95) * 1000
    return {key: round(float(value), 4) for key, value in report.items()}


def _offline(manifest: dict) -> dict[str, float]:
    """The same quantities from the offline evaluation (``training evaluate``), where the manifest has them."""
    attack, default = f"fgsm-{FGSM_EPS}", manifest["default_purifier"]
    paths = {
        "clean/classify": ("clean", "undefended"),
        "clean/defended": ("clean", default),
        "fgsm/classify": ("table", attack, "undefended"),
        "fgsm/defended": ("table", attack, default),
        "clean/flagged": ("detector", "false_positive_rate_clean"),
        "fgsm/flagged": ("detector", "detection_rate", attack),
        **{f"clean/{p}": ("clean", p) for p in PAPER_PURIFIERS},
        **{f"fgsm/{p}": ("table", attack, p) for p in PAPER_PURIFIERS},
    }
    found = {}
    for key, path in paths.items():
        node = manifest.get("metrics", {})
        for part in path:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict) and "accuracy" in node:
            found[key] = node["accuracy"]
    return found


def _tolerance(rate: float) -> float:
    """Three binomial standard errors at n = 200, plus 0.03 for the choice of images."""
    return 3 * math.sqrt(rate * (1 - rate) / N_IMAGES) + 0.03


@pytest.mark.parametrize("dataset", real_datasets() or ["mnist"])
def test_accuracy_and_detection_over_http(real_server: str, dataset: str, measured: dict) -> None:
    folder = REAL_ARTIFACTS / dataset
    manifest = json.loads((folder / "manifest.json").read_text())
    examples = load_examples(dataset, manifest, range(0, N_IMAGES * STRIDE, STRIDE))
    attacked = fgsm(load_classifier(folder), examples.tensors, examples.labels, FGSM_EPS)
    inputs = {"clean": examples.pngs, "fgsm": [tensor_png(image) for image in attacked]}
    with PurifierClient(real_server) as client:
        report = _measure(client, dataset, inputs, examples.labels.tolist(), manifest["default_purifier"])
    report["detection_rate"], report["false_positive_rate"] = report["fgsm/flagged"], report["clean/flagged"]
    logger.info("%s over HTTP, %d test images: %s", dataset, N_IMAGES, report)
    measured[f"{dataset}, {N_IMAGES} test images"] = report

    offline = _offline(manifest)
    disagree = {key: (report[key], rate) for key, rate in offline.items() if abs(report[key] - rate) > _tolerance(rate)}
    assert not disagree, f"HTTP (first) and the manifest's offline evaluation (second) disagree: {disagree}"
    assert report["clean/classify"] >= MIN_CLEAN_ACCURACY[dataset]
    assert report["fgsm/defended"] > report["fgsm/classify"], "purification does not help against FGSM"
    assert report["detection_rate"] > report["false_positive_rate"]
