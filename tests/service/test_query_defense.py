"""The query-defence data structures in process: budgets, the detector, response detail, bounded memory."""

import asyncio
import time
import tracemalloc

import numpy as np
import pytest
import torch

from service.batching import Batcher
from service.budgets import Budgets, retry_after
from service.clients import BoundedTable
from service.config import Settings, key_id
from service.detail import shown
from service.errors import QueryAttackSuspected, RateLimited
from service.guard import Client, Guard
from service.metrics import CLIENT_BUDGET
from service.querydetector import QueryDetector, fingerprints
from service.schemas import DefendedResponse, Prediction


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bounded_table_evicts_the_least_recently_seen() -> None:
    gone = []
    table = BoundedTable(2, dict, on_evict=gone.append)
    table.get("a"), table.get("b"), table.get("a"), table.get("c")
    assert gone == ["b"] and len(table) == 2 and table.peek("b") is None
    table.get("d")  # "a" was seen before "c"
    assert gone == ["b", "a"] and table.peek("c") is not None


def test_budget_refills_at_its_rate_and_refusals_spend_nothing() -> None:
    clock = Clock()
    budgets = Budgets(rate=2, burst=4, capacity=10, clock=clock)
    assert budgets.take("c", 4) == (0.0, 0.0)
    wait, _ = budgets.take("c", 1)
    assert wait == pytest.approx(0.5)
    clock.now = 0.5
    assert budgets.take("c", 1)[0] == 0.0
    assert budgets.take("other", 4)[0] == 0.0  # budgets are per client
    assert retry_after(0.2) == "1" and retry_after(2.1) == "3"


def images(count: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).uniform(0, 1, size=(count, 1, 32, 32))).float()


def probes(count: int) -> torch.Tensor:
    """One image, a different 4×4 patch changed each time: near-duplicates, never exact copies."""
    base, out = images(1)[0], []
    for i in range(count):
        probe = base.clone()
        row, col = divmod(i % 49, 7)
        probe[:, 4 * row : 4 * row + 4, 4 * col : 4 * col + 4] = 1.0 - probe[:, 4 * row : 4 * row + 4, 4 * col]
        out.append(probe)
    return torch.stack(out)


def detector(clock: Clock | None = None, threshold: int = 5) -> QueryDetector:
    return QueryDetector(history=16, window_s=60, distance=5.0, threshold=threshold, capacity=100, clock=clock or Clock())


def test_near_duplicates_flag_a_client_and_distinct_images_do_not() -> None:
    watch = detector()
    verdicts = [watch.observe("attacker", fingerprints(probe[None])) for probe in probes(8)]
    assert [v.flagged for v in verdicts] == [False] * 6 + [True] * 2  # probes 3 to 7 have two close ones
    assert sum(v.newly_flagged for v in verdicts) == 1
    assert not watch.observe("benign", fingerprints(images(30, seed=1))).flagged


def test_retries_are_not_near_duplicates() -> None:
    watch, image = detector(), images(1)
    for _ in range(20):
        verdict = watch.observe("retrying", fingerprints(image))
    assert verdict.near_duplicates == 0 and not verdict.flagged


def test_old_queries_leave_the_window() -> None:
    clock = Clock()
    watch = detector(clock)
    assert watch.observe("c", fingerprints(probes(10))).flagged
    clock.now = 61
    assert not watch.observe("c", fingerprints(images(1, seed=5))).flagged


def test_guard_blocks_a_flagged_client_and_rate_limits_with_retry_after() -> None:
    guard = Guard(Settings(query_defense="block", query_threshold=3, client_rate=1, client_burst=100))
    client = Client("key:attacker", "label")
    assert not guard.screen_later(client, 1)  # block mode decides before the model runs
    flag = Guard(Settings(query_defense="flag", query_threshold=3))
    assert flag.screen_later(client, 1) and not flag.screen_later(client, 2)  # a batch is screened first
    assert flag.screen(client, list(probes(10)))
    assert not flag.screen_later(client, 1)  # a flagged client's answers carry the header: screened first
    with pytest.raises(QueryAttackSuspected) as blocked:
        for probe in probes(10):
            guard.screen(client, [probe])
    assert blocked.value.headers["X-Query-Attack"] == "suspected" and guard.detector.flagged(client.id)
    budget = Guard(Settings(query_defense="off", client_rate=1, client_burst=2))
    budget.charge(client, 2)
    with pytest.raises(RateLimited) as refused:
        budget.charge(client, 1)
    assert refused.value.headers["Retry-After"] == "1"



def test_queries_screened_beside_the_model_are_queued_and_recorded_in_order_in_one_pass() -> None:
    guard, client, other = Guard(Settings(query_defense="flag", query_threshold=3)), Client("addr:a", "full"), \
        Client("addr:b", "full")

    async def burst() -> tuple[int, int]:
        for probe in probes(4):
            guard.screen_beside_model(client, [probe])
        guard.screen_beside_model(other, [images(1)[0]])
        queued = len(guard._queued)
        await asyncio.sleep(0)  # the loop's next turn is the batcher's: nothing screened yet
        waiting = len(guard._queued)
        await asyncio.sleep(0)  # the turn after screens the whole queue
        return queued, waiting, len(guard._queued)

    assert asyncio.run(burst()) == (5, 5, 0)
    assert not guard.detector.flagged(client.id) and len(guard.detector.table) == 2

    async def then_a_batch() -> tuple[int, bool, int]:
        for probe in probes(10)[4:6]:
            guard.screen_beside_model(client, [probe])
        queued = len(guard._queued)
        flagged = guard.screen(client, list(probes(10)[6:7]))  # before the loop's next turn
        return queued, flagged, guard.detector.table.peek(client.id).next

    # the queue is screened first, then the batch: all seven probes recorded, in order, and the client flagged
    assert asyncio.run(then_a_batch()) == (2, True, 7)


def test_a_queue_of_differently_shaped_inputs_is_screened_run_by_run() -> None:
    guard = Guard(Settings(query_defense="flag"))

    async def mixed() -> None:  # two datasets' input shapes in one burst
        guard.screen_beside_model(Client("addr:a", "full"), [images(1)[0]])
        guard.screen_beside_model(Client("addr:b", "full"), [torch.rand(1, 28, 28)])
        guard.screen_beside_model(Client("addr:a", "full"), [images(2)[1]])
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(mixed())
    assert not guard._queued
    assert guard.detector.table.peek("addr:a").next == 2 and guard.detector.table.peek("addr:b").next == 1

def test_memory_stays_bounded_under_100000_one_off_clients() -> None:
    watch, budgets = detector(), Budgets(rate=10, burst=100, capacity=100)
    print_ = fingerprints(images(1))
    tracemalloc.start()
    for i in range(100):  # fill the tables first (traced): what follows must only replace entries
        watch.observe(f"addr:10.0.0.{i}", print_), budgets.take(f"addr:10.0.0.{i}")
    before = tracemalloc.take_snapshot()
    for i in range(100_000):
        watch.observe(f"addr:flood-{i}", print_), budgets.take(f"addr:flood-{i}")
    growth = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    assert len(watch.table) == len(budgets.table) == 100 and watch.table.evicted == 100_000
    assert growth < 256 * 1024, f"memory grew {growth / 1e6:.2f} MB over 100,000 clients"


def test_budget_series_in_metrics_stay_as_bounded_as_the_table() -> None:
    guard = Guard(Settings(query_defense="off", client_rate=10, max_clients=50))
    for i in range(500):
        guard.charge(Client(f"addr:series-{i}", "label"), 1)
    exported = {s.labels["client"] for s in CLIENT_BUDGET.collect()[0].samples}
    assert len({c for c in exported if c.startswith("addr:series-")}) == 50


def test_shown_hides_what_the_policy_hides() -> None:
    prediction = Prediction(label=1, class_name="1", probabilities=[0.1, 0.6, 0.3])
    answer = DefendedResponse(
        **prediction.model_dump(), model="m", latency_ms=1.0, pipeline="p", undefended=prediction,
        suspected_adversarial=False, reconstruction_mse=None,
    )
    settings = Settings(response_top_k=2, response_decimals=1)
    assert shown(answer, "full", settings, ["0", "1", "2"]) is answer
    top = shown(answer, "topk", settings, ["0", "1", "2"]).model_dump(exclude_unset=True)
    assert top["top"] == [{"label": 1, "class_name": "1", "probability": 0.6}, {"label": 2, "class_name": "2",
                                                                                "probability": 0.3}]
    assert "probabilities" not in top and "undefended" not in top and "reconstruction_mse" not in top
    label = shown(answer, "label", settings, ["0", "1", "2"]).model_dump(exclude_unset=True)
    assert set(label) == {"label", "class_name", "model", "latency_ms", "pipeline"}


def test_detail_defaults_and_key_overrides() -> None:
    assert Settings().default_detail == "full"  # loopback: the local default sees everything
    assert Settings(host="0.0.0.0").default_detail == "label"
    settings = Settings(host="0.0.0.0", api_keys=["k1", "k2"], key_detail={key_id("k1"): "full"})
    assert settings.detail_for(key_id("k1")) == "full" and settings.detail_for(key_id("k2")) == "label"
    with pytest.raises(ValueError, match="key_detail names key ids"):
        Settings(api_keys=["k1"], key_detail={"000000000000": "full"})


def test_a_single_query_is_screened_on_the_loop_while_its_batch_runs_on_the_inference_thread() -> None:
    guard, seen = Guard(Settings(query_defense="flag")), []

    def predict(items: list) -> list:
        time.sleep(0.2)  # the model: the screening must fall inside it
        seen.append("model done")
        return items

    async def one_request() -> None:
        batcher = Batcher("t", predict, max_batch_size=4, max_wait_s=0.0, max_queue_size=8, timeout_s=5.0)
        screen = guard._screen_queued
        guard._screen_queued = lambda: (seen.append(("screened, still queued:", batcher._queue.qsize())), screen())
        batcher.start()
        assert not await guard.admit(Client("addr:a", "full"), [images(1)[0]])  # as the route does: admit, submit
        await batcher.submit(["image"])
        await batcher.stop()

    asyncio.run(one_request())
    # screened after the batcher took the batch (nothing left queued), before the model finished
    assert seen == [("screened, still queued:", 0), "model done"]
    assert guard.detector.table.peek("addr:a").next == 1
