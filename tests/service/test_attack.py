"""POST /attack: bounds, quantization and round trip, labels, input forms, 422s, the concurrency limit, real accuracy.

The tiny classifier labels mean brightness (0 = black .. 9 = white) and its input gradient is the same
for every pixel, so an eps-step moves a flat image's label predictably.
"""

import base64
import io
import json
import threading
import typing
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from advattacks import ATTACKS
from service.app import create_app
from service.attacking import quantize
from service.config import REPO_ROOT, Settings
from service.images import encode_png
from service.schemas import AttackQuery
from tests.service.tiny_artifacts import brightness_png

PNG = {"content-type": "image/png"}
JSON = {**PNG, "accept": "application/json"}


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)), dtype=np.int16)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_fgsm_flips_the_label_and_the_png_round_trips(client: TestClient) -> None:
    body = client.post("/attack", content=brightness_png(5), headers=JSON, params={"eps": 0.2}).json()
    assert (body["original"]["label"], body["label"], body["adversarial"]["label"]) == (5, 5, 7)
    assert (body["attack"], body["eps"], body["alpha"], body["steps"]) == ("fgsm", 0.2, None, None)
    adversarial, original = base64.b64decode(body["image"]), base64.b64decode(body["original_image"])
    steps = _pixels(adversarial) - _pixels(original)
    assert steps.shape == (32, 32) and (steps == 51).all()  # 0.2 is exactly 51 of 255 steps, every pixel up
    assert body["linf"] == 0.2 and body["l2"] == pytest.approx(32 * 0.2)
    raw = client.post("/attack", content=brightness_png(5), headers=PNG, params={"eps": 0.2})
    assert raw.headers["content-type"] == "image/png" and raw.content == adversarial
    assert float(raw.headers["x-linf"]) == pytest.approx(0.2)
    assert client.post("/classify", content=raw.content, headers=PNG).json()["label"] == 7


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
@pytest.mark.parametrize("eps", [0.0, 1 / 600, 0.1, 0.5, 1.0])
def test_the_eps_ball_and_the_pixel_range_hold(client: TestClient, attack: str, eps: float) -> None:
    params = {"attack": attack, "eps": eps} | ({"alpha": 0.05, "steps": 30} if attack == "pgd" else {})
    for level in (0, 4, 9):
        body = client.post("/attack", content=brightness_png(level), headers=JSON, params=params).json()
        steps = np.abs(_pixels(base64.b64decode(body["image"])) - _pixels(base64.b64decode(body["original_image"])))
        assert steps.max() <= eps * 255 + 1e-9 and body["linf"] <= eps
        assert body["linf"] == pytest.approx(steps.max() / 255)
        if eps < 1 / 255:  # below one 8-bit step the rounding leaves the image as it was
            assert body["linf"] == 0 and body["adversarial"]["label"] == level


def test_quantize_stays_on_the_grid_inside_the_ball() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 1, 32, 32), generator=generator) / 255
    for eps in (0.003, 0.05, 0.1, 0.3333, 0.6):
        adv = (images + (torch.rand(images.shape, generator=generator) * 2 - 1) * eps).clamp(0, 1)
        out = quantize(adv, images, eps)
        assert (out - images).abs().max() <= eps and out.min() >= 0 and out.max() <= 1
        assert torch.equal(out * 255, (out * 255).round())
        decoded = torch.from_numpy(_pixels(encode_png(out[0])).astype(np.float32) / 255.0)
        assert torch.equal(decoded, out[0, 0])  # PNG round trip is bit for bit


def test_pgd_and_an_explicit_label(client: TestClient) -> None:
    params = {"attack": "pgd", "eps": 0.2, "label": 9}
    body = client.post("/attack", content=brightness_png(5), headers=JSON, params=params).json()
    assert (body["alpha"], body["steps"], body["label"]) == (0.01, 40, 9)  # the paper's PGD defaults
    assert body["adversarial"]["label"] < 5  # away from 9: darker


def test_batch_and_multipart_inputs(client: TestClient) -> None:
    batch = {"images": [_b64(brightness_png(level)) for level in (2, 7)]}
    body = client.post("/attack", json=batch, params={"eps": 0.2, "dataset": "fashion-mnist"}).json()
    assert [item["original"]["label"] for item in body] == [2, 7]
    assert [item["adversarial"]["label"] for item in body] == [4, 5]
    multipart = client.post(
        "/attack", files={"file": ("x.png", brightness_png(3), "image/png")}, headers={"accept": "application/json"}
    )
    assert multipart.json()["original"]["label"] == 3


@pytest.mark.parametrize(
    "params, code",
    [
        ({"eps": 1.01}, "invalid_request"),
        ({"eps": -0.1}, "invalid_request"),
        ({"eps": "a lot"}, "invalid_request"),
        ({"attack": "pgd", "steps": 101}, "invalid_request"),
        ({"attack": "pgd", "steps": 0}, "invalid_request"),
        ({"attack": "pgd", "alpha": 0}, "invalid_request"),
        ({"attack": "pgd", "alpha": 1.5}, "invalid_request"),
        ({"attack": "fgsm", "steps": 10}, "invalid_request"),
        ({"attack": "cw"}, "invalid_request"),
        ({"label": -1}, "invalid_request"),
        ({"label": 10}, "invalid_label"),
        ({"dataset": "cifar10"}, "unknown_dataset"),
    ],
)
def test_bad_parameters_get_a_422(client: TestClient, params: dict, code: str) -> None:
    response = client.post("/attack", content=brightness_png(1), headers=PNG, params=params)
    assert response.status_code == 422 and response.json()["error"] == code and response.json()["detail"]


def test_bad_images_get_the_same_errors_as_the_other_endpoints(client: TestClient) -> None:
    response = client.post("/attack", content=b"hello", headers={"content-type": "text/plain"})
    assert response.status_code == 415 and response.json()["error"] == "unsupported_media_type"
    response = client.post("/attack", content=brightness_png(3)[:40], headers=PNG)
    assert response.status_code == 422 and response.json()["error"] == "invalid_image"


def test_every_attack_the_schema_offers_is_a_shared_attack() -> None:
    offered = set(typing.get_args(AttackQuery.model_fields["attack"].annotation))
    assert offered == {"fgsm", "pgd"} and offered <= set(ATTACKS)


def test_beyond_the_concurrency_limit_503_while_inference_goes_on(client: TestClient, monkeypatch) -> None:
    """An attack held mid-run fills the one slot; the next gets 503 at once, /classify still answers."""
    entered, release = threading.Event(), threading.Event()
    model = client.app.state.runtime.attacks.models["mnist"]
    attack = model.attack

    def held(*args):
        entered.set()
        assert release.wait(30)
        return attack(*args)

    monkeypatch.setattr(model, "attack", held)
    assert client.app.state.runtime.attacks.pool.limit == 1
    with ThreadPoolExecutor(max_workers=1) as thread:
        first = thread.submit(client.post, "/attack", content=brightness_png(5), headers=JSON)
        assert entered.wait(30)
        refused = client.post("/attack", content=brightness_png(5), headers=JSON)
        assert refused.status_code == 503 and refused.json()["error"] == "overloaded"
        assert refused.headers["retry-after"] == "1"
        assert client.post("/classify", content=brightness_png(6), headers=PNG).json()["label"] == 6
        release.set()
        assert first.result(timeout=30).status_code == 200
    assert client.post("/attack", content=brightness_png(5), headers=JSON).status_code == 200


@pytest.fixture(scope="module")
def mnist_client() -> Iterator[TestClient]:
    """The committed MNIST artifacts (VGG-16), only that dataset."""
    with TestClient(create_app(Settings(datasets=("mnist",)))) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "params", [{"attack": "fgsm", "eps": 0.2}, {"attack": "pgd", "eps": 0.1, "alpha": 0.02, "steps": 10}]
)
def test_the_attack_lowers_accuracy_on_the_bundled_samples(mnist_client: TestClient, params: dict) -> None:
    manifest = json.loads((REPO_ROOT / "artifacts" / "mnist" / "manifest.json").read_text())
    pngs = [(REPO_ROOT / "artifacts" / "mnist" / s["file"]).read_bytes() for s in manifest["samples"]]
    truth = np.array([s["label"] for s in manifest["samples"]])
    body = mnist_client.post("/attack", json={"images": [_b64(png) for png in pngs]}, params=params).json()
    clean = np.mean([item["original"]["label"] for item in body] == truth)
    attacked = np.mean([item["adversarial"]["label"] for item in body] == truth)
    print(f"mnist {params}: bundled-sample accuracy {clean:.2f} -> {attacked:.2f}")
    assert clean >= 0.9 and attacked <= clean - 0.3
    assert all(item["linf"] <= params["eps"] for item in body)
    flipped = [item for item in body if item["adversarial"]["label"] != item["original"]["label"]][:4]
    again = mnist_client.post("/classify", json={"images": [item["image"] for item in flipped]}).json()
    assert [item["label"] for item in again] == [item["adversarial"]["label"] for item in flipped]
