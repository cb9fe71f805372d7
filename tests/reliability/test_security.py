"""Security properties: API keys (constant time, never logged), enum parameters, CORS off unless configured,
and the time limits (request time 504, body upload 408). Body, pixel and batch limits are in the hostile corpus."""

import asyncio
import hmac
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from service.app import create_app
from service.artifacts import read_manifest
from service.config import DATASETS, REPO_ROOT, Settings
from tests.e2e.conftest import free_port
from tests.reliability import rawhttp
from tests.reliability.conftest import KEY, Server
from tests.reliability.hostile import encode, gray

PNG = {"content-type": "image/png"}
WRONG_KEY = "wrong-key-5d21e8"


def test_every_configured_key_is_compared_in_constant_time(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def spy(given: bytes, expected: bytes) -> bool:
        compared.append((given, expected))
        return compare(given, expected)

    keyed = settings.model_copy(update={"api_keys": (SecretStr("first-key"), SecretStr("second-key"))})
    with TestClient(create_app(keyed)) as client:
        monkeypatch.setattr(hmac, "compare_digest", spy)
        for key, status in (("first-key", 200), ("second-key", 200), ("x", 401)):
            compared.clear()
            response = client.post("/classify", content=encode(gray(1)), headers={**PNG, "x-api-key": key})
            assert response.status_code == status
            assert compared == [(key.encode(), b"first-key"), (key.encode(), b"second-key")], "no early exit"


def test_keys_never_reach_the_logs(hostile_server: Server) -> None:
    with hostile_server.client() as client:
        assert client.post("/classify", content=encode(gray(2)), headers=PNG).status_code == 200
        bearer = {**PNG, "x-api-key": "", "authorization": f"Bearer {KEY}"}
        assert client.post("/classify", content=encode(gray(2)), headers=bearer).status_code == 200
        for headers in ({"x-api-key": WRONG_KEY}, {"x-api-key": "", "authorization": f"Bearer {WRONG_KEY}"}):
            assert client.post("/classify", content=encode(gray(2)), headers={**PNG, **headers}).status_code == 401
    log = hostile_server.log.read_text()
    assert "unauthorized" in log and "DEBUG" in log, "the server logged nothing to search"
    assert KEY not in log and WRONG_KEY not in log


def test_a_malformed_key_setting_fails_start_up_without_echoing_the_key() -> None:
    env = {**os.environ, "PURIFIER_API_KEYS": '"a-key-not-in-a-list-0c9f"', "PURIFIER_PORT": str(free_port())}
    done = subprocess.run(
        [sys.executable, "-m", "service"],
        check=False,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "start-up failed: invalid PURIFIER_* settings: api_keys" in done.stderr
    assert "a-key-not-in-a-list" not in done.stderr + done.stdout


def test_dataset_and_purifier_parameters_are_enums(hostile_server: Server) -> None:
    with hostile_server.client() as client:
        schema = client.get("/openapi.json").json()
    served = Path(hostile_server.settings["artifacts_dir"])
    manifests = [read_manifest(served / dataset) for dataset in DATASETS]
    expected = {
        "dataset": set(DATASETS),
        "purifier": {name for manifest in manifests for name in manifest.names("purifier")},
        "pipeline": {name for manifest in manifests for name in manifest.pipelines},
    }
    seen = set()
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] in expected:
                    options = parameter["schema"].get("anyOf", [parameter["schema"]])
                    enums = [set(option["enum"]) for option in options if "enum" in option]
                    assert enums == [expected[parameter["name"]]], (path, parameter)
                    seen.add(parameter["name"])
    assert seen == set(expected)


@pytest.fixture
def cors_client(settings: Settings, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"cors_origins": request.param}))) as client:
        yield client


PREFLIGHT = {"access-control-request-method": "POST", "access-control-request-headers": "content-type,x-api-key"}


@pytest.mark.parametrize("cors_client", [()], indirect=True)
def test_cors_is_off_unless_configured(cors_client: TestClient) -> None:
    origin = {"origin": "https://elsewhere.example"}
    preflight = cors_client.options("/classify", headers={**origin, **PREFLIGHT})
    answer = cors_client.post("/classify", content=encode(gray(3)), headers={**PNG, **origin})
    assert answer.status_code == 200 and preflight.status_code == 405
    assert not [h for r in (preflight, answer) for h in r.headers if h.startswith("access-control-")]


@pytest.mark.parametrize("cors_client", [("https://app.example",)], indirect=True)
def test_cors_allows_exactly_the_configured_origins(cors_client: TestClient) -> None:
    allowed, other = {"origin": "https://app.example"}, {"origin": "https://elsewhere.example"}
    preflight = cors_client.options("/classify", headers={**allowed, **PREFLIGHT})
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == "https://app.example"
    answer = cors_client.post("/classify", content=encode(gray(3)), headers={**PNG, **allowed})
    assert answer.headers["access-control-allow-origin"] == "https://app.example"
    assert "retry-after" in answer.headers["access-control-expose-headers"].lower()
    refused = cors_client.options("/classify", headers={**other, **PREFLIGHT})
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
    assert (
        "access-control-allow-origin"
        not in cors_client.post("/classify", content=encode(gray(3)), headers={**PNG, **other}).headers
    )


def test_a_request_over_its_time_limit_gets_a_json_504_and_the_next_one_succeeds(settings: Settings) -> None:
    with TestClient(create_app(settings.model_copy(update={"request_timeout_s": 0.2}))) as client:
        batcher = client.app.state.runtime.served["mnist"].classify.batcher
        predict = batcher._predict
        batcher._predict = lambda items: time.sleep(0.6) or predict(items)
        response = client.post("/classify", content=encode(gray(5)), headers=PNG)
        assert response.status_code == 504 and response.json()["error"] == "timeout"
        assert "0.2 s" in response.json()["detail"]
        batcher._predict = predict
        batcher._executor.submit(lambda: None).result(timeout=10)  # the timed-out batch still runs: let it end
        assert client.post("/classify", content=encode(gray(5)), headers=PNG).json()["label"] == 5


def test_a_body_sent_too_slowly_gets_a_json_408(hostile_server: Server) -> None:
    limit = float(hostile_server.settings["body_timeout_s"])

    async def slow_upload() -> rawhttp.RawResponse:
        reader, writer = await rawhttp.open_connection(hostile_server.url)
        body = encode(gray(1))
        headers = {"content-type": "image/png", "x-api-key": KEY, "content-length": str(len(body))}
        head = rawhttp.build_request("POST", "/classify", b"", headers).replace(b"content-length: 0\r\n", b"")
        writer.write(head + body[:10])
        started = time.perf_counter()
        status, headers, answer = await asyncio.wait_for(rawhttp.read_response(reader), 10 * limit)
        writer.close()
        return rawhttp.RawResponse(status, headers, answer, time.perf_counter() - started)

    answer = asyncio.run(slow_upload())
    assert answer.status == 408 and answer.json()["error"] == "body_timeout", answer
    assert 0.9 * limit <= answer.seconds < 5 * limit  # the server's clock starts a moment before ours
    with httpx.Client(base_url=hostile_server.url, headers={"x-api-key": KEY}) as client:
        assert client.get("/readyz").status_code == 200
