"""What the detector costs, side by side in one run: servers with ``query_defense=off`` and ``flag`` (and a second
``off``, the control), answering the same distinct test images alternately (c=1), then in turns under 32
concurrent clients."""

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np

from loadtest.queryattack.oracle import to_png

HEADERS = {"content-type": "image/png", "accept": "application/json"}


def _post(http: httpx.Client, dataset: str, png: bytes) -> float:
    started = time.perf_counter()
    http.post("/defended-classify", params={"dataset": dataset}, content=png, headers=HEADERS).raise_for_status()
    return (time.perf_counter() - started) * 1000


def latency_c1(urls: dict[str, str], dataset: str, images: np.ndarray, rounds: int) -> dict[str, float]:
    """p50 ms per server, requests alternating between them (which goes first alternates too)."""
    pngs = [to_png(image) for image in images]
    clients = {name: httpx.Client(base_url=url, timeout=30) for name, url in urls.items()}
    times: dict[str, list[float]] = {name: [] for name in urls}
    names = list(clients)
    for i in range(rounds):
        for name in names if i % 2 else names[::-1]:  # either server first, in turns
            times[name].append(_post(clients[name], dataset, pngs[i % len(pngs)]))
    for http in clients.values():
        http.close()
    return {name: round(statistics.median(values[20:]), 3) for name, values in times.items()}


def throughput_c32(urls: dict[str, str], dataset: str, images: np.ndarray, seconds: float, turns: int) -> dict:
    """Requests per second per server at 32 concurrent clients, in alternating turns of ``seconds``."""
    pngs = [to_png(image) for image in images]
    rates: dict[str, list[float]] = {name: [] for name in urls}

    def client(url: str, offset: int, deadline: float) -> int:
        done = 0
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.perf_counter() < deadline:
                _post(http, dataset, pngs[(offset + done) % len(pngs)])
                done += 1
        return done

    with ThreadPoolExecutor(32) as pool:
        for _ in range(turns):
            for name, url in urls.items():
                deadline = time.perf_counter() + seconds
                done = sum(pool.map(lambda k: client(url, 37 * k, deadline), range(32)))
                rates[name].append(done / seconds)
    medians = {name: round(statistics.median(values), 1) for name, values in rates.items()}
    ratios = {f"ratio_{name}_over_off": round(medians[name] / medians["off"], 3) for name in medians if name != "off"}
    return {"requests_per_s": medians, "turns": rates, **ratios}
