"""Every bad-input case over real HTTP: a clear 4xx JSON error, and the process stays healthy."""

import base64

import pytest

from tests.service.tiny_artifacts import bomb_png, brightness_png
from tests.support.client import HEALTH, PurifierClient, ServiceHTTPError, raw_call

KEY = "e2e-key"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


CASES = [
    ({"content": b"x" * 300_000, "headers": {"content-type": "image/png"}}, 413, "payload_too_large"),
    (
        {"content": brightness_png(1, size=(1000, 1000)), "headers": {"content-type": "image/png"}},
        413,
        "image_too_large",
    ),
    ({"content": bomb_png(), "headers": {"content-type": "image/png"}}, 413, "image_too_large"),
    ({"content": b"hello", "headers": {"content-type": "text/plain"}}, 415, "unsupported_media_type"),
    (
        {"content": brightness_png(1, size=(64, 64))[:60], "headers": {"content-type": "image/png"}},
        422,
        "invalid_image",
    ),
    ({"json": {"images": ["***"]}}, 422, "invalid_base64"),
    ({"json": {"images": []}}, 422, "invalid_batch"),
    ({"json": {"images": [_b64(brightness_png(1))] * 65}}, 422, "invalid_batch"),
    (
        {"content": brightness_png(1), "headers": {"content-type": "image/png"}, "params": {"dataset": "svhn"}},
        422,
        "unknown_dataset",
    ),
]


@pytest.mark.parametrize("endpoint", ["/classify", "/defended-classify", "/purify"])
@pytest.mark.parametrize("kwargs, status, code", CASES, ids=[code + str(i) for i, (_, _, code) in enumerate(CASES)])
def test_bad_input(tiny_server: str, endpoint: str, kwargs: dict, status: int, code: str) -> None:
    with PurifierClient(tiny_server, api_key=KEY) as client:
        with pytest.raises(ServiceHTTPError) as error:
            client.send(raw_call("POST", endpoint, **kwargs))
        assert (error.value.status_code, error.value.error) == (status, code) and error.value.detail
        assert client.send(HEALTH) == {"status": "ok"}
        assert client.classify(brightness_png(4)).label == 4


@pytest.mark.parametrize("key", [None, "wrong"])
def test_missing_or_wrong_key(tiny_server: str, key: str | None) -> None:
    with PurifierClient(tiny_server, api_key=key) as client:
        with pytest.raises(ServiceHTTPError) as error:
            client.classify(brightness_png(1))
        assert (error.value.status_code, error.value.error) == (401, "unauthorized")
        assert client.send(HEALTH) == {"status": "ok"}


def test_every_input_form(tiny_server: str) -> None:
    with PurifierClient(tiny_server, api_key=KEY) as client:
        assert client.classify(brightness_png(6), dataset="fashion-mnist").label == 6
        assert [r.label for r in client.defended_classify([brightness_png(i) for i in (3, 1, 2)])] == [3, 1, 2]
        assert client.purify(brightness_png(5)).startswith(b"\x89PNG")
        assert client.purify(brightness_png(5), as_json=True).linf >= 0
        multipart = client.send(
            raw_call("POST", "/classify", files={"file": ("a.png", brightness_png(8), "image/png")})
        )
        assert multipart["label"] == 8
        assert set(client.models().datasets) == {"mnist", "fashion-mnist"}
