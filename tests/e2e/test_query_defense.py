"""The query-attack defences over real HTTP: response detail per key, per-client budgets, and the stateful
detector against a real attack client (Square, through the public API only) and benign sequences."""

import base64
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from loadtest.queryattack.benign import scenario
from loadtest.queryattack.measure import load_testset
from loadtest.queryattack.oracle import HTTPOracle, to_png
from loadtest.queryattack.square import square
from service.config import key_id
from tests.e2e.conftest import REAL_ARTIFACTS, serve

KEYS = {detail: f"{detail}-test-key" for detail in ("full", "topk", "label")}
ATTACKER, BENIGN = "attacker-test-key", "benign-test-key"
PNG = {"content-type": "image/png", "accept": "application/json"}


def headers(key: str) -> dict[str, str]:
    return {"x-api-key": key, **PNG}


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The committed MNIST artifacts, detector in ``flag`` mode, one key per detail (the default: label)."""
    if not (REAL_ARTIFACTS / "mnist" / "manifest.json").is_file():
        pytest.skip("no committed MNIST artifacts")
    keys = [*KEYS.values(), ATTACKER, BENIGN] + [f"benign-{i}" for i in range(4)]
    with serve(
        tmp_path_factory.mktemp("keyed") / "server.log",
        datasets='["mnist"]',
        default_dataset="mnist",
        api_keys=json.dumps(keys),
        response_detail="label",
        key_detail=json.dumps({key_id(KEYS["full"]): "full", key_id(KEYS["topk"]): "topk"}),
    ) as url:
        yield url


@pytest.fixture(scope="module")
def mnist_images() -> tuple[np.ndarray, np.ndarray]:
    try:
        return load_testset("mnist", 120)
    except RuntimeError as exc:  # torchvision: the dataset is not under data/
        pytest.skip(f"MNIST test set not available: {exc}")


def test_detail_policies_hide_scores_and_the_undefended_oracle(keyed_server: str) -> None:
    sample = (REAL_ARTIFACTS / "mnist" / "samples" / "000.png").read_bytes()
    answers = {
        detail: httpx.post(f"{keyed_server}/defended-classify", content=sample, headers=headers(key)).json()
        for detail, key in KEYS.items()
    }
    full, topk, label = answers["full"], answers["topk"], answers["label"]
    assert len(full["probabilities"]) == 10 and "undefended" in full and "reconstruction_mse" in full
    assert "top" not in full  # a field of topk detail only: not even as null
    assert set(topk) == {"label", "class_name", "top", "model", "latency_ms", "pipeline"}
    assert [entry["label"] for entry in topk["top"]][0] == topk["label"] == full["label"]
    assert len(topk["top"]) == 3 and all(round(e["probability"], 2) == e["probability"] for e in topk["top"])
    assert set(label) == {"label", "class_name", "model", "latency_ms", "pipeline"}
    classify = httpx.post(f"{keyed_server}/classify", content=sample, headers=headers(KEYS["label"])).json()
    assert set(classify) == {"label", "class_name", "model", "latency_ms"}


def test_attack_needs_full_detail(keyed_server: str) -> None:
    sample = (REAL_ARTIFACTS / "mnist" / "samples" / "000.png").read_bytes()
    refused = httpx.post(f"{keyed_server}/attack", content=sample, headers=headers(KEYS["label"]))
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    allowed = httpx.post(f"{keyed_server}/attack", content=sample, headers=headers(KEYS["full"]))
    assert allowed.status_code == 200


def test_openapi_marks_the_policy_fields_optional(keyed_server: str) -> None:
    schemas = httpx.get(f"{keyed_server}/openapi.json").json()["components"]["schemas"]
    assert set(schemas["DefendedResponse"]["required"]) == {"label", "class_name", "model", "latency_ms", "pipeline"}
    assert "probabilities" not in schemas["Prediction"]["required"]


def test_a_square_attack_client_is_flagged_within_50_queries(keyed_server: str, mnist_images) -> None:
    images, labels = mnist_images
    with httpx.Client(base_url=keyed_server, timeout=30) as http:
        oracle = HTTPOracle(http, "mnist", ATTACKER)
        outcome = square(oracle, images[0], int(labels[0]), eps=0.3, budget=60)
    assert not outcome.success
    assert outcome.first_flagged is not None and outcome.first_flagged <= 50
    metrics = httpx.get(f"{keyed_server}/metrics").text
    assert "purifier_query_attack_flagged_clients_total 1.0" in metrics
    flagged = float(re.search(r"^purifier_query_attack_flagged_queries_total (\S+)$", metrics, re.M).group(1))
    # flag mode screens a single image beside the model: the query that tips the count is counted flagged, and
    # the header shows from the answer after it
    assert flagged == 60 - outcome.first_flagged + 2


@pytest.mark.parametrize("name", ["stream", "retry", "edits", "mix"])
def test_benign_sequences_are_not_flagged(keyed_server: str, mnist_images, name: str) -> None:
    images, _ = mnist_images
    samples = images[100:116]
    (queries,) = scenario(name, images[:100], samples, clients=1, per_client=100, seed=1)
    key = f"benign-{['stream', 'retry', 'edits', 'mix'].index(name)}"
    with httpx.Client(base_url=keyed_server, timeout=30, headers=headers(key)) as http:
        for endpoint, image in queries:
            response = http.post(f"/{endpoint}", params={"dataset": "mnist"}, content=to_png(image))
            assert response.status_code == 200
            assert "x-query-attack" not in response.headers, f"{name}: flagged"


@pytest.fixture(scope="module")
def guarded_tiny_server(tmp_path_factory: pytest.TempPathFactory, tiny_artifacts: Path) -> Iterator[str]:
    """Tiny models, detector in ``block`` mode (two near-duplicates flag), a budget of 5 images then 2 per second."""
    yield from tiny_server(tmp_path_factory, tiny_artifacts, ["blocked-key", "budget-key"], query_defense="block",
                           client_rate="2", client_burst="5")


def tiny_server(factory: pytest.TempPathFactory, artifacts: Path, keys: list[str], **settings: str) -> Iterator[str]:
    """A server of the tiny models with these keys, on which two near-duplicates flag a client."""
    with serve(factory.mktemp("tiny") / "server.log", artifacts_dir=str(artifacts), api_keys=json.dumps(keys),
               query_threshold="2", **settings) as url:
        yield url


def near_duplicates(count: int, seed: int = 0) -> list[bytes]:
    """Square-like probes: one image with a different small patch changed each time."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 1, size=(1, 32, 32))
    out = []
    for _ in range(count):
        probe = base.copy()
        top, left = rng.integers(0, 29, size=2)
        probe[:, top : top + 3, left : left + 3] = rng.uniform(0, 1)
        out.append(to_png(probe))
    return out


def test_block_mode_answers_429_query_attack_suspected(guarded_tiny_server: str) -> None:
    with httpx.Client(base_url=guarded_tiny_server, headers=headers("blocked-key")) as http:
        answers = [http.post("/classify", content=png) for png in near_duplicates(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]  # probes 3 and 4 are near-duplicates
    blocked = answers[-1]
    assert blocked.json()["error"] == "query_attack_suspected"
    assert blocked.headers["x-query-attack"] == "suspected" and int(blocked.headers["retry-after"]) >= 1
    metrics = httpx.get(f"{guarded_tiny_server}/metrics").text
    assert 'purifier_rejections_total{reason="query_attack_suspected"} 1.0' in metrics


def test_budget_answers_429_with_retry_after_then_recovers(guarded_tiny_server: str) -> None:
    rng = np.random.default_rng(7)
    distinct = [to_png(rng.uniform(0, 1, size=(1, 32, 32))) for _ in range(7)]
    with httpx.Client(base_url=guarded_tiny_server, headers=headers("budget-key")) as http:
        answers = [http.post("/classify", content=png) for png in distinct[:6]]
        assert [a.status_code for a in answers] == [200] * 5 + [429]
        refused = answers[-1]
        assert refused.json()["error"] == "rate_limited" and int(refused.headers["retry-after"]) >= 1
        time.sleep(int(refused.headers["retry-after"]))
        assert http.post("/classify", content=distinct[6]).status_code == 200
    metrics = httpx.get(f"{guarded_tiny_server}/metrics").text
    assert f'purifier_client_budget_images{{client="key:{key_id("budget-key")}"}}' in metrics
    assert 'purifier_rejections_total{reason="rate_limited"}' in metrics


@pytest.fixture(scope="module")
def flagging_tiny_server(tmp_path_factory: pytest.TempPathFactory, tiny_artifacts: Path) -> Iterator[str]:
    """Tiny models, detector in ``flag`` mode (two near-duplicates flag)."""
    yield from tiny_server(tmp_path_factory, tiny_artifacts, ["single-key", "batch-key"], query_defense="flag")


def test_flag_mode_marks_single_images_from_the_next_answer_and_a_batch_in_its_own(flagging_tiny_server: str) -> None:
    probes = near_duplicates(5)
    with httpx.Client(base_url=flagging_tiny_server, headers=headers("single-key")) as http:
        flags = ["x-query-attack" in http.post("/classify", content=png).headers for png in probes]
    # probe 4 tips the count (probes 3 and 4 are near-duplicates); screened beside the model, it is flagged from
    # the next answer on
    assert flags == [False, False, False, False, True]
    batch = {"images": [base64.b64encode(png).decode() for png in near_duplicates(5, seed=1)]}
    answer = httpx.post(f"{flagging_tiny_server}/classify", json=batch, headers={"x-api-key": "batch-key"})
    assert answer.status_code == 200 and len(answer.json()) == 5
    assert answer.headers["x-query-attack"] == "suspected"  # a batch is screened before its answer
