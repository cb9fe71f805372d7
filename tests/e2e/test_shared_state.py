"""Budgets and the query-attack detector shared through a real Redis by two service processes (two replicas
behind one load balancer, or two workers): a client gets one budget and one history, wherever its requests
land; with Redis stopped, model requests are refused with a JSON 503 and the rest keeps answering."""

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import torch

from service.images import encode_png
from tests.e2e.conftest import serve
from tests.service.test_query_defense import probes
from tests.service.tiny_artifacts import brightness_png
from loadtest.redis_server import RedisServer

PNG = {"content-type": "image/png"}


@contextmanager
def replicas(
    tmp_path: Path, tiny_artifacts: Path, redis: RedisServer, count: int, **settings: str
) -> Iterator[list[str]]:
    """``count`` service processes on the same Redis; their base URLs."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                serve(tmp_path / f"replica{i}.log", artifacts_dir=str(tiny_artifacts), redis_url=redis.url, **settings)
            )
            for i in range(count)
        ]


def post(url: str, key: str, png: bytes) -> httpx.Response:
    return httpx.post(f"{url}/classify", content=png, headers={**PNG, "x-api-key": key}, timeout=10)


def test_a_clients_budget_holds_across_two_processes(tmp_path: Path, tiny_artifacts: Path, redis_server) -> None:
    settings = {"api_keys": '["alice", "bob"]', "client_rate": "0.01", "client_burst": "4", "query_defense": "off"}
    with replicas(tmp_path, tiny_artifacts, redis_server, 2, **settings) as (a, b):
        assert [post(url, "alice", brightness_png(i)).status_code for i, url in enumerate([a, b, a, b])] == [200] * 4
        for url in (a, b):  # either process refuses the image over the budget
            refused = post(url, "alice", brightness_png(5))
            assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
            assert int(refused.headers["retry-after"]) >= 1
        assert post(b, "bob", brightness_png(1)).status_code == 200  # budgets are per client


def first_flagged(urls: list[str], key: str, queries: torch.Tensor) -> int | None:
    """The index of the first answer that carries ``X-Query-Attack``, the queries sent to ``urls`` in turn."""
    for i, query in enumerate(queries):
        answer = post(urls[i % len(urls)], key, encode_png(query))
        assert answer.status_code == 200, answer.text
        if answer.headers.get("x-query-attack") == "suspected":
            return i
    return None


def test_a_square_attacker_split_over_two_processes_is_flagged_as_soon_as_against_one(
    tmp_path: Path, tiny_artifacts: Path, redis_server
) -> None:
    """Square's probes (one image, a different small square changed each time), from two clients with the same
    queries: one sends all to one process, the other alternates between the two."""
    settings = {"api_keys": '["solo", "split"]', "query_defense": "flag", "query_threshold": "5"}
    queries = probes(24)
    with replicas(tmp_path, tiny_artifacts, redis_server, 2, **settings) as (a, b):
        alone = first_flagged([a], "solo", queries)
        split = first_flagged([a, b], "split", queries)
    assert alone is not None and split == alone


def test_redis_stopped_then_restarted_mid_run(tmp_path: Path, tiny_artifacts: Path, redis_server) -> None:
    # one worker: /metrics counts its own refusals (unset, there is one worker a core with Redis)
    with replicas(tmp_path, tiny_artifacts, redis_server, 1, redis_timeout_s="0.25", workers="1") as (url,):
        assert httpx.post(f"{url}/classify", content=brightness_png(3), headers=PNG).json()["label"] == 3
        redis_server.stop()
        for _ in range(3):
            started = time.perf_counter()
            refused = httpx.post(f"{url}/classify", content=brightness_png(3), headers=PNG, timeout=10)
            assert time.perf_counter() - started < 2
            assert refused.status_code == 503 and refused.json()["error"] == "state_unavailable"
            assert refused.headers["retry-after"] == "1"
        assert httpx.get(f"{url}/healthz").status_code == 200  # no model, no client state: still answered
        metrics = httpx.get(f"{url}/metrics").text
        assert "\npurifier_shared_state_errors_total 3.0\n" in metrics
        redis_server.start()  # same port, empty
        assert httpx.post(f"{url}/classify", content=brightness_png(4), headers=PNG).json()["label"] == 4
