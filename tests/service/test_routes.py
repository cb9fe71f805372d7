import base64
import gc
import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import SecretStr

from service.app import create_app
from service.config import Settings
from tests.service.tiny_artifacts import CLASS_NAMES, brightness_png

PNG = {"content-type": "image/png"}
ENDPOINTS = ["/classify", "/defended-classify", "/purify"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist", None])
def test_classify_raw_body(client: TestClient, dataset: str | None) -> None:
    params = {"dataset": dataset} if dataset else {}
    body = client.post("/classify", content=brightness_png(6), headers=PNG, params=params).json()
    assert body["label"] == 6 and body["class_name"] == CLASS_NAMES[6]
    assert len(body["probabilities"]) == 10 and abs(sum(body["probabilities"]) - 1) < 1e-5
    assert len(body["model"]) == 12 and body["latency_ms"] > 0


def test_any_size_and_mode_is_accepted(client: TestClient) -> None:
    body = client.post("/classify", content=brightness_png(3, size=(300, 120), mode="RGB"), headers=PNG).json()
    assert body["label"] == 3


def test_multipart_and_octet_stream(client: TestClient) -> None:
    files = {"file": ("x.png", brightness_png(2), "image/png")}
    assert client.post("/classify", files=files).json()["label"] == 2
    raw = client.post("/classify", content=brightness_png(4), headers={"content-type": "application/octet-stream"})
    assert raw.json()["label"] == 4


@pytest.mark.parametrize("endpoint", ["/classify", "/defended-classify"])
def test_json_batch_is_answered_in_order(client: TestClient, endpoint: str) -> None:
    levels = [9, 0, 5, 5, 1, 8, 3]
    body = client.post(endpoint, json={"images": [_b64(brightness_png(level)) for level in levels]}).json()
    assert [item["label"] for item in body] == levels


@pytest.mark.parametrize("purifier", ["autoencoder-fgsm", "autoencoder-pgd"])
def test_the_papers_purifiers_can_be_chosen(client: TestClient, purifier: str) -> None:
    params = {"purifier": purifier}
    assert client.post("/defended-classify", content=brightness_png(2), headers=PNG, params=params).json()["label"] == 2
    body = client.post(
        "/purify", content=brightness_png(2), headers={**PNG, "accept": "application/json"}, params=params
    )
    assert body.json()["model"] == client.get("/models").json()["datasets"]["mnist"]["sha256"][f"{purifier}.pt"][:12]


@pytest.mark.parametrize("endpoint", ["/defended-classify", "/purify"])
def test_unknown_purifier(client: TestClient, endpoint: str) -> None:
    response = client.post(endpoint, content=brightness_png(1), headers=PNG, params={"purifier": "pca"})
    assert response.status_code == 422 and response.json()["error"] == "unknown_purifier"


def test_defended_classify(client: TestClient) -> None:
    body = client.post("/defended-classify", content=brightness_png(7), headers=PNG).json()
    assert body["label"] == 7 and body["undefended"]["label"] == 7
    assert body["suspected_adversarial"] is False and 0 <= body["reconstruction_mse"] < 0.05


def test_purify_png_and_json(client: TestClient) -> None:
    png = client.post("/purify", content=brightness_png(5), headers=PNG)
    assert png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size == (32, 32)
    body = client.post("/purify", content=brightness_png(5), headers={**PNG, "accept": "application/json"}).json()
    assert Image.open(io.BytesIO(base64.b64decode(body["image"]))).mode == "L"
    assert 0 < body["linf"] <= 1 and body["l2"] >= body["linf"] and len(body["model"]) == 12
    batch = client.post("/purify", json={"images": [_b64(brightness_png(1))] * 3}).json()
    assert len(batch) == 3 and all("image" in item for item in batch)


def _corrupt() -> bytes:
    return brightness_png(3, size=(64, 64))[:60]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    "kwargs, status, code",
    [
        ({"content": b"x" * 300_000, "headers": PNG}, 413, "payload_too_large"),
        ({"content": brightness_png(1, size=(1000, 1000)), "headers": PNG}, 413, "image_too_large"),
        ({"content": b"hello", "headers": {"content-type": "text/plain"}}, 415, "unsupported_media_type"),
        ({"content": b"", "headers": {}}, 415, "unsupported_media_type"),
        ({"content": _corrupt(), "headers": PNG}, 422, "invalid_image"),
        ({"content": b"GIF89a garbage", "headers": PNG}, 422, "invalid_image"),
        ({"json": {"images": ["%%%"]}}, 422, "invalid_base64"),
        ({"json": {"images": [_b64(b"not an image")]}}, 422, "invalid_image"),
        ({"json": {"images": []}}, 422, "invalid_batch"),
        ({"json": {"images": [_b64(brightness_png(1))] * 65}}, 422, "invalid_batch"),
        ({"json": {"pictures": []}}, 422, "invalid_batch"),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "invalid_batch"),
        ({"files": {"other": ("x.png", b"abc", "image/png")}}, 422, "invalid_batch"),
        ({"content": brightness_png(1), "headers": PNG, "params": {"dataset": "cifar10"}}, 422, "unknown_dataset"),
    ],
)
def test_bad_input_gets_a_clear_4xx_and_the_process_stays_healthy(
    client: TestClient, endpoint: str, kwargs: dict, status: int, code: str
) -> None:
    response = client.post(endpoint, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["error"] == code and response.json()["detail"]
    assert client.get("/healthz").status_code == 200
    assert client.post("/classify", content=brightness_png(2), headers=PNG).json()["label"] == 2


def test_unknown_routes_and_methods_use_the_same_error_body(client: TestClient) -> None:
    assert client.get("/nope").json()["error"] == "not_found"
    response = client.get("/classify")
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"


def test_api_keys(settings: Settings) -> None:
    keyed = settings.model_copy(update={"api_keys": (SecretStr("s3cret"),)})
    with TestClient(create_app(keyed)) as client:
        for headers in ({}, {"x-api-key": "wrong"}, {"authorization": "Bearer s3cre"}):
            response = client.post("/classify", content=brightness_png(1), headers={**PNG, **headers})
            assert response.status_code == 401 and response.json()["error"] == "unauthorized"
        for headers in ({"x-api-key": "s3cret"}, {"authorization": "Bearer s3cret"}):
            assert client.post("/classify", content=brightness_png(1), headers={**PNG, **headers}).status_code == 200
        assert client.get("/healthz").status_code == 200


def test_unexpected_errors_are_a_logged_json_500(settings: Settings) -> None:
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        client.app.state.runtime.served["mnist"].classify.batcher._predict = lambda items: 1 / 0
        response = client.post("/classify", content=brightness_png(1), headers=PNG)
        assert response.status_code == 500
        assert response.json() == {"error": "internal_error", "detail": "internal server error"}
        assert client.get("/readyz").status_code == 200
        assert 'purifier_requests_total{endpoint="/classify",method="POST",status="500"}' in client.get("/metrics").text


def test_operations(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    models = client.get("/models").json()["datasets"]
    assert set(models) == {"mnist", "fashion-mnist"}
    assert models["mnist"]["device"] == "cpu" and models["mnist"]["metrics"] == {"clean_accuracy": 1.0}
    assert set(models["mnist"]["sha256"]) == {
        "classifier.pt",
        "autoencoder.pt",
        "autoencoder-fgsm.pt",
        "autoencoder-pgd.pt",
    }
    client.post("/classify", content=b"x", headers={"content-type": "text/plain"})
    client.post("/classify", content=brightness_png(1), headers=PNG)
    metrics = client.get("/metrics").text
    for name in (
        "purifier_requests_total",
        "purifier_request_latency_seconds",
        "purifier_batch_size",
        "purifier_queue_depth",
        'purifier_rejections_total{reason="unsupported_media_type"}',
    ):
        assert name in metrics
    schema = client.get("/openapi.json").json()
    assert {"/purify", "/classify", "/defended-classify", "/healthz", "/readyz", "/models", "/metrics"} <= set(
        schema["paths"]
    )
    assert "multipart/form-data" in schema["paths"]["/classify"]["post"]["requestBody"]["content"]
    assert client.get("/docs").status_code == 200


def test_start_up_objects_are_kept_out_of_full_collections(settings: Settings) -> None:
    """A full collection under load would otherwise walk every loaded module and tensor wrapper."""
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        assert gc.get_freeze_count() > 10_000
    assert gc.get_freeze_count() == 0  # and collectable again once the app has shut down
