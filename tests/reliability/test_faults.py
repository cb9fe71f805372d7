"""Faults over real HTTP: clients hanging up, an exception inside inference, SIGTERM with requests in flight.
(Broken artifacts at start-up are in tests/e2e/test_startup.py.)"""

import asyncio
import signal
import time
from pathlib import Path

from tests.e2e.conftest import server_process
from tests.reliability import rawhttp
from tests.reliability.conftest import SLOW_WORK, Server, metric, server_metrics, settled_fds, slow_settings, wait_for
from tests.reliability.hostile import b64, encode, gray
from tests.reliability.poisoned import poison_png
from tests.reliability.schemathesis_hooks import TRACE_MARKERS
from tests.reliability.test_overload import classify_requests
from tests.service.tiny_artifacts import write_artifacts

PNG = {"content-type": "image/png"}


def test_clients_that_hang_up_leak_no_queue_slot_and_no_connection(slow_server: Server, measured: dict) -> None:
    url, queue_size = slow_server.url, int(slow_server.settings["max_queue_size"])
    before = server_metrics(url)

    async def hang_up(mid_body: int, after_sending: int) -> None:
        full = classify_requests(1)[0]
        requests = [full[:-40]] * mid_body + [full] * after_sending
        connections = await asyncio.gather(*(rawhttp.open_connection(url) for _ in requests))
        for (_, writer), request in zip(connections, requests):
            writer.write(request)
        await asyncio.gather(*(writer.drain() for _, writer in connections))
        await asyncio.sleep(0.1)
        for _, writer in connections:
            writer.close()

    def closed() -> float:
        return metric(server_metrics(url), "purifier_requests_total", endpoint="/classify", method="POST", status="499")

    asyncio.run(hang_up(mid_body=5, after_sending=3 * queue_size))
    wait_for(lambda: closed() >= 5, what="five 499s")
    wait_for(
        lambda: metric(server_metrics(url), "purifier_queue_depth", batcher="mnist/classify") == 0, what="empty queue"
    )

    answers = asyncio.run(rawhttp.burst(url, classify_requests(queue_size)))
    assert [a.status for a in answers] == [200] * queue_size, "a full queue's worth is admitted again"
    fds = [metric(before, "process_open_fds"), settled_fds(url, metric(before, "process_open_fds"))]
    after = server_metrics(url)
    assert metric(after, "purifier_requests_total", endpoint="/classify", method="POST", status="500") == 0
    log = slow_server.log.read_text()
    assert "Traceback" not in log and "unhandled error" not in log, log[-3000:]
    measured["clients hanging up"] = {
        "mid_body": 5,
        "after_sending": 3 * queue_size,
        "status_499": closed(),
        "open_fds": fds,
    }


def test_an_exception_inside_inference_fails_only_its_batch(hostile_server: Server) -> None:
    with hostile_server.client() as client:
        for endpoint in ("/classify", "/defended-classify"):
            response = client.post(endpoint, content=poison_png(), headers=PNG)
            assert response.status_code == 500, response.text
            assert response.json() == {"error": "internal_error", "detail": "internal server error"}
            assert client.post(endpoint, content=encode(gray(4)), headers=PNG).json()["label"] == 4
        batch = {"images": [b64(encode(gray(1))), b64(poison_png()), b64(encode(gray(2)))]}
        assert client.post("/classify", json=batch).status_code == 500, "one JSON batch is one inference batch"
        assert [r["label"] for r in client.post("/classify", json={"images": batch["images"][::2]}).json()] == [1, 2]
        assert client.get("/readyz").json() == {"status": "ready"}
    log = hostile_server.log.read_text()
    assert "mnist/classify: batch of 1 failed" in log and "poisoned batch: simulated inference fault" in log


def test_sigterm_drains_in_flight_requests_then_exits_0(tmp_path: Path, measured: dict) -> None:
    # batches slow enough (about 0.1 s each) that requests are still in flight well after the signal
    slower = write_artifacts(tmp_path / "slower-artifacts", work=4 * SLOW_WORK)
    settings = {**slow_settings(slower), "max_batch_size": "1"}  # one slow batch per request
    in_flight = 8
    with server_process(tmp_path / "server.log", **settings) as (url, process):

        def batches() -> float:
            return metric(server_metrics(url), "purifier_batch_size_count", batcher="mnist/classify")

        warm = batches()

        async def requests_then_sigterm() -> tuple[list[tuple[int, dict]], list[float], float]:
            connections = await asyncio.gather(*(rawhttp.open_connection(url) for _ in range(in_flight)))
            for (_, writer), request in zip(connections, classify_requests(in_flight)):
                writer.write(request)
            await asyncio.to_thread(wait_for, lambda: batches() > warm, 20, "a first batch")
            process.send_signal(signal.SIGTERM)
            signalled = time.perf_counter()

            async def answer(reader: asyncio.StreamReader) -> tuple[tuple[int, dict], float]:
                status, _, body = await rawhttp.read_response(reader)
                return (status, rawhttp.RawResponse(status, {}, body, 0).json()), time.perf_counter()

            done = await asyncio.wait_for(asyncio.gather(*(answer(reader) for reader, _ in connections)), 30)
            return [d[0] for d in done], [d[1] for d in done], signalled

        answers, finished, signalled = asyncio.run(requests_then_sigterm())
        returncode = process.wait(timeout=int(settings.get("shutdown_timeout_s", 30)) + 10)
        exited = time.perf_counter()
    assert [(status, body["label"]) for status, body in answers] == [(200, i % 10) for i in range(in_flight)]
    assert any(t > signalled for t in finished), "no request was still in flight at SIGTERM"
    measured["SIGTERM"] = {
        "in_flight": in_flight,
        "answered_after_the_signal": sum(t > signalled for t in finished),
        "last_answer_s": round(max(finished) - signalled, 2),
        "exit_s": round(exited - signalled, 2),
        "exit_code": returncode,
    }
    assert returncode == 0
    log = (tmp_path / "server.log").read_text()
    assert "Waiting for connections to close" in log and not any(m.decode() in log for m in TRACE_MARKERS), log
