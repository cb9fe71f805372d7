"""The shared guard against a real Redis: the same budgets and detector verdicts as the in-process ones, one
round trip a request, keys that expire, and a refusal (not a hang, not a pass) when Redis is gone."""

import asyncio
import time

import pytest

from service.config import Settings
from service.errors import QueryAttackSuspected, RateLimited, StateUnavailable
from service.guard import Client, Guard
from service.querydetector import QueryDetector, fingerprints
from service.shared_guard import SharedGuard, keys
from tests.service.test_query_defense import images, probes
from loadtest.redis_server import RedisServer

CLIENT = Client("key:attacker", "label")
SETTINGS = {"query_history": 16, "query_window_s": 60, "query_distance": 5.0, "query_threshold": 5}


def shared(redis_server: RedisServer, **settings) -> SharedGuard:
    return SharedGuard(Settings(redis_url=redis_server.url, **(SETTINGS | settings)))


def test_the_detectors_verdicts_match_the_in_process_ones_query_by_query(redis_server: RedisServer) -> None:
    """Probes one at a time, then in batches, with retries and benign images between: every verdict (flagged,
    newly flagged, near-duplicate count) equals ``QueryDetector``'s on the same sequence."""
    local = QueryDetector(history=16, window_s=60, distance=5.0, threshold=5, capacity=10)
    queries = [probe[None] for probe in probes(12)] + [images(3, seed=2), probes(30)[20:27], images(1)]
    queries += [images(1)] * 3 + [probes(40)[33:40]] + [images(20, seed=3)]

    async def run() -> list[tuple[bool, int]]:
        guard, seen = shared(redis_server), []
        for batch in queries:
            prints = fingerprints(batch)
            want = local.observe(CLIENT.id, prints)
            got = await guard.admit(CLIENT, list(batch))
            count = redis_server.client().llen(keys(CLIENT.id)[1])
            seen.append((got, want.flagged, count))
        await guard.close()
        return seen

    seen = asyncio.run(run())
    assert [got for got, _, _ in seen] == [want for _, want, _ in seen]
    assert any(got for got, _, _ in seen) and not all(got for got, _, _ in seen)
    assert max(count for _, _, count in seen) == 16  # at most ``history`` fingerprints a client


def test_near_duplicate_counts_equal_the_in_process_detectors(redis_server: RedisServer) -> None:
    """Probes one at a time, some of them sent twice (a retry: never a near-duplicate): the near-duplicates kept
    after each query, query by query."""
    local = QueryDetector(history=16, window_s=60, distance=5.0, threshold=5, capacity=10)
    guard = shared(redis_server, query_threshold=1000)  # never flagged: only the count differs per query
    sequence = [probe for i, probe in enumerate(probes(25)) for _ in range(2 if i % 4 == 3 else 1)]

    async def counts() -> list[int]:
        out = []
        for probe in sequence:
            await guard.admit(CLIENT, [probe])
            entries = redis_server.client().lrange(keys(CLIENT.id)[1], 0, -1)
            out.append(sum(entry[8] for entry in entries))  # each entry's near byte
        await guard.close()
        return out

    shared_counts = asyncio.run(counts())
    local_counts = []
    for probe in sequence:
        local.observe(CLIENT.id, fingerprints(probe[None]))
        local_counts.append(int(local.table.peek(CLIENT.id).near.sum()))
    assert shared_counts == local_counts and shared_counts[-1] > 0


def test_block_mode_and_the_budget_refuse_as_the_in_process_guard_does(redis_server: RedisServer) -> None:
    async def run() -> None:
        block = shared(redis_server, query_defense="block", query_threshold=3)
        with pytest.raises(QueryAttackSuspected) as blocked:
            for probe in probes(10):
                await block.admit(CLIENT, [probe])
        assert blocked.value.headers["X-Query-Attack"] == "suspected"
        budget = shared(redis_server, query_defense="off", client_rate=1, client_burst=2)
        other = Client("key:other", "label")
        await budget.admit(other, list(images(2)))
        with pytest.raises(RateLimited) as refused:
            await budget.admit(other, list(images(1)))
        assert refused.value.headers["Retry-After"] == "1"
        ttl = redis_server.client().pttl(keys(other.id)[0])
        assert 0 < ttl <= 3000  # the bucket is forgotten once full again (2 s) and a margin
        for guard in (block, budget):
            await guard.close()

    asyncio.run(run())


def test_an_unreachable_redis_refuses_within_the_timeout_then_recovers(redis_server: RedisServer) -> None:
    async def run() -> None:
        guard = shared(redis_server, redis_timeout_s=0.25)
        assert not await guard.admit(CLIENT, list(images(1)))
        redis_server.stop()
        started = time.perf_counter()
        with pytest.raises(StateUnavailable) as refused:
            await guard.admit(CLIENT, list(images(1)))
        assert time.perf_counter() - started < 2 and refused.value.headers["Retry-After"] == "1"
        redis_server.start()  # empty: the script is loaded again on first use
        assert not await guard.admit(CLIENT, list(images(1)))
        await guard.close()

    asyncio.run(run())


def test_the_in_process_guard_stays_the_default_without_a_redis_url() -> None:
    from service.state import Runtime

    assert isinstance(Runtime(Settings()).guard, Guard)
    assert Settings().worker_count == 1 and Settings(redis_url="redis://x:6379/0").worker_count >= 1


def test_a_lone_image_is_admitted_beside_its_model_unless_block_mode_may_refuse_it(redis_server: RedisServer) -> None:
    flag, block = shared(redis_server), shared(redis_server, query_defense="block")
    assert flag.beside_model(1) and not flag.beside_model(2) and not block.beside_model(1)


def test_a_client_refused_a_lone_image_is_refused_locally_until_it_is_due(redis_server: RedisServer) -> None:
    """No round trip and no model for a client Redis has just refused: the refusal stands until its next image is
    due, even with Redis gone, and then Redis decides again. A batch's refusal says nothing about one image."""
    bucket = keys(CLIENT.id)[0]

    async def run() -> None:
        guard = shared(redis_server, query_defense="off", client_rate=0.5, client_burst=2)
        await guard.admit(CLIENT, list(images(2)))
        with pytest.raises(RateLimited):
            await guard.admit(CLIENT, list(images(2)))  # a batch: still asks Redis next time
        assert CLIENT.id not in guard.refused
        with pytest.raises(RateLimited):
            await guard.admit(CLIENT, list(images(1)))
        asked = redis_server.client().hget(bucket, "updated")
        redis_server.stop()
        with pytest.raises(RateLimited):  # not StateUnavailable: Redis was not asked
            await guard.admit(CLIENT, list(images(1)))
        redis_server.start()
        await asyncio.sleep(guard.refused[CLIENT.id] - time.monotonic() + 0.05)  # one image is due (2 s)
        assert not await guard.admit(CLIENT, list(images(1)))
        assert redis_server.client().hget(bucket, "updated") != asked and CLIENT.id not in guard.refused
        await guard.close()

    asyncio.run(run())


def test_the_local_refusals_are_bounded_by_max_clients(redis_server: RedisServer) -> None:
    guard = shared(redis_server, max_clients=2)
    for name in "abc":
        guard.refuse_until(f"key:{name}", 60)
    assert list(guard.refused) == ["key:b", "key:c"]
