"""The measurements: attack runs and benign clients against real servers, one client (API key) per run.

Every run attacks one test image the pipeline gets right, through ``HTTPOracle`` only, with its own key, so
the detector sees one attacker per client. Runs go side by side on a thread pool, as separate clients would.
"""

import json
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import torch
import torchvision
from PIL import Image

from loadtest.queryattack.benign import SCENARIOS, Query, scenario
from loadtest.queryattack.hopskipjump import hopskipjump
from loadtest.queryattack.oracle import HTTPOracle, to_png
from loadtest.queryattack.square import Outcome, square
from loadtest.server import Server, serve
from service.config import REPO_ROOT, Settings, key_id
from service.guard import Client, Guard
from training.data import preprocess
from training.stats import wilson

ATTACKS: dict[str, Callable[..., Outcome]] = {"square": square, "hopskipjump": hopskipjump}
TORCHVISION = {"mnist": torchvision.datasets.MNIST, "fashion-mnist": torchvision.datasets.FashionMNIST}
EPS = {"mnist": 0.3, "fashion-mnist": 0.1}


def load_testset(dataset: str, count: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` test images from ``offset``, preprocessed as the service does, and their labels."""
    data = TORCHVISION[dataset](str(REPO_ROOT / "data"), train=False, download=False)
    indices = range(offset, offset + count)
    images = np.stack([preprocess(data[i][0]).numpy().astype(np.float64) for i in indices])
    return images, data.targets[offset : offset + count].numpy()


def keys(group: str, count: int) -> list[str]:
    """Distinct API keys for a local measurement server (never a deployment's)."""
    return [f"{group}-{i:04d}-measurement-key" for i in range(count)]


@contextmanager
def server(log: Path, dataset: str, defense: str, detail: str, key_detail: dict[str, str], api_keys: list[str],
           **settings: str) -> Iterator[Server]:
    """One dataset, the detector in ``defense`` mode, ``detail`` by default and ``key_detail`` per key."""
    with serve(
        log,
        datasets=f'["{dataset}"]',
        default_dataset=dataset,
        query_defense=defense,
        response_detail=detail,
        api_keys=json.dumps(api_keys),
        key_detail=json.dumps({key_id(k): v for k, v in key_detail.items()}),
        max_queue_size="4096",
        **settings,
    ) as running:
        yield running


@dataclass(frozen=True)
class AttackSummary:
    attack: str
    detail: str
    defense: str
    budget: int
    attacked: int
    skipped_misclassified: int
    success: int
    success_rate: float
    success_ci: tuple[float, float]
    median_queries_to_success: float | None
    flagged: int
    flagged_within: dict[str, float]
    median_queries_to_flag: float | None
    succeeded_before_flag: int
    refused_queries: int
    wall_s: float


def run_attacks(url: str, dataset: str, attack: str, keys_: list[str], images: np.ndarray, labels: np.ndarray,
                budget: int, threads: int, detail: str, defense: str) -> tuple[AttackSummary, list[dict]]:
    started = time.perf_counter()

    def one(i: int) -> dict | None:
        with httpx.Client(base_url=url, timeout=60) as http:
            oracle = HTTPOracle(http, dataset, keys_[i])
            first = oracle(images[i][None])[0]
            if first.label != labels[i]:
                return None
            out = ATTACKS[attack](oracle, images[i], int(labels[i]), EPS[dataset], budget - 1, seed=i)
            flagged = 1 if first.flagged else (None if out.first_flagged is None else out.first_flagged + 1)
            return {"index": i, "success": out.success, "queries": out.queries + 1, "first_flagged": flagged,
                    "refused": out.refused}

    with ThreadPoolExecutor(threads) as pool:
        runs = [r for r in pool.map(one, range(len(images))) if r is not None]
    wins = [r for r in runs if r["success"]]
    flags = [r["first_flagged"] for r in runs if r["first_flagged"] is not None]
    summary = AttackSummary(
        attack, detail, defense, budget, len(runs), len(images) - len(runs), len(wins),
        len(wins) / max(len(runs), 1), wilson(len(wins), len(runs)),
        statistics.median([r["queries"] for r in wins]) if wins else None,
        len(flags),
        {str(q): sum(f <= q for f in flags) / max(len(runs), 1) for q in (25, 50, 100)},
        statistics.median(flags) if flags else None,
        sum(r["success"] and (r["first_flagged"] is None or r["first_flagged"] > r["queries"]) for r in runs),
        sum(r["refused"] for r in runs),
        round(time.perf_counter() - started, 1),
    )
    return summary, runs


def run_benign(url: str, dataset: str, name: str, keys_: list[str], queries: list[list[Query]],
               threads: int) -> dict:
    """Each client sends its queries in order, one image per request; is it ever flagged?"""

    def one(i: int) -> tuple[bool, int]:
        flagged_answers = 0
        with httpx.Client(base_url=url, timeout=60, headers={"x-api-key": keys_[i]}) as http:
            for endpoint, image in queries[i]:
                response = http.post(f"/{endpoint}", params={"dataset": dataset}, content=to_png(image),
                                     headers={"content-type": "image/png", "accept": "application/json"})
                response.raise_for_status()
                flagged_answers += response.headers.get("x-query-attack") == "suspected"
        return flagged_answers > 0, flagged_answers

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(one, range(len(queries))))
    flagged = sum(f for f, _ in results)
    return {"scenario": name, "clients": len(queries), "requests": sum(map(len, queries)),
            "flagged_clients": flagged, "flagged_rate": flagged / len(queries),
            "flagged_rate_ci": wilson(flagged, len(queries)), "flagged_answers": sum(n for _, n in results)}


def benign_queries(dataset: str, clients: int, per_client: int, offset: int) -> dict[str, list[list[Query]]]:
    images, _ = load_testset(dataset, min(clients * per_client, 10_000 - offset), offset)
    sample_dir = REPO_ROOT / "artifacts" / dataset / "samples"
    samples = np.stack([preprocess(Image.open(path)).numpy() for path in sorted(sample_dir.glob("*.png"))])
    return {name: scenario(name, images, samples, clients, per_client, seed=k) for k, name in enumerate(SCENARIOS)}


def guard_cost_us(dataset: str, repeats: int = 2000) -> dict[str, float]:
    """In-process cost of admitting one image (budget and detector), over a full history, in microseconds."""
    images, _ = load_testset(dataset, 256)
    tensors = [torch.from_numpy(image).float() for image in images]
    out = {}
    for label, settings in (("detector", Settings(query_defense="flag")),
                            ("detector+budget", Settings(query_defense="flag", client_rate=1e9))):
        guard, client = Guard(settings), Client("addr:bench", "full")

        def admit(image: torch.Tensor) -> None:
            guard.charge(client, 1)
            guard.screen(client, [image])

        for tensor in tensors[:64]:
            admit(tensor)
        times = []
        for i in range(repeats):
            started = time.perf_counter_ns()
            admit(tensors[i % len(tensors)])
            times.append((time.perf_counter_ns() - started) / 1000)
        out[label] = round(statistics.median(times), 1)
    return out
