"""One benchmark run: in-process model time, then each engine in turn at every concurrency, into one JSON."""

import asyncio
import json
import logging
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from math import nan
from pathlib import Path

import httpx
import uvloop

from loadtest.bench import inprocess, profile
from loadtest.bench.client import LoadResult, build_request, closed_loop
from loadtest.bench.cpu import CpuMeter
from loadtest.bench.engines import Engine, engines
from loadtest.bench.pipeline import Pipeline
from loadtest.machine import load_average, machine
from loadtest.samples import Sample, load_samples
from loadtest.server import Server
from loadtest.stats import quantile_curve, summarize
from service.config import Settings
from service.inference import Defend

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchConfig:
    results: Path
    dataset: str = "mnist"
    engines: tuple[str, ...] = ("ours", "ours-batch1", "naive", "litserve", "ray", "bentoml", "floor", "floor-model")
    concurrency: tuple[int, ...] = (1, 8, 32, 64)
    duration_s: float = 10.0
    rounds: int = 1
    warmup_s: float = 2.0
    max_batch_size: int = 32
    peer_batch_timeout_ms: float = 1.0
    inprocess_repeats: int = 300
    profile: bool = False
    variants: dict[str, dict[str, str]] = field(default_factory=dict)


class AnswerError(RuntimeError):
    """An engine answered a sample with an error before the load started."""


def check_answers(server: Server, engine: Engine, dataset: str, samples: list[Sample]) -> dict:
    """Every sample once: all must be 200 with a label; the accuracy shows the engines run the same models."""
    correct = 0
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for sample in samples:
            body, content_type = engine.body(sample.png)
            response = client.post(engine.path(dataset), content=body, headers={"content-type": content_type})
            if response.status_code != 200:
                raise AnswerError(f"{engine.key}: {response.status_code} {response.text[:300]}")
            correct += engine.answer(response.json())["label"] == sample.label
    return {"samples": len(samples), "accuracy": correct / len(samples)}


_BATCH_SIZE = re.compile(
    rf'^purifier_batch_size_(sum|count)\{{batcher="[^"]*/{Defend.kind}:[^"]*"\}} (\S+)$', re.MULTILINE
)


def defend_batches(server: Server) -> Counter:
    """Items and batches the service's ``defend`` batchers have run so far, from its Prometheus text."""
    totals: Counter = Counter()
    for kind, value in _BATCH_SIZE.findall(httpx.get(server.url + "/metrics", timeout=10).text):
        totals[kind] += float(value)
    return totals


def measure_point(server: Server, requests: list[bytes], concurrency: int, config: BenchConfig) -> LoadResult:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(
            closed_loop(server.url, requests, concurrency, config.warmup_s, config.duration_s, CpuMeter(server.pid))
        )


def _point(results: list[LoadResult]) -> dict:
    """One concurrency level over every round: latencies pooled, throughput over the summed windows."""
    latencies = [ms for result in results for ms in result.latencies_ms]
    statuses, errors = sum((r.statuses for r in results), Counter()), sum((r.errors for r in results), Counter())
    window = sum(r.window_s for r in results)
    cpu = {key: round(sum(r.cpu[key] for r in results) / len(results), 3) for key in results[0].cpu}
    throughput = statuses[200] / window
    items, batches = (sum(r.batches[i] for r in results if r.batches) for i in (0, 1))
    return {
        "concurrency": results[0].concurrency,
        "rounds": len(results),
        "throughput_rps": throughput,
        **summarize(latencies),
        "statuses": {str(status): n for status, n in sorted(statuses.items())},
        "errors": dict(errors),
        "cpu": cpu,
        "server_cpu_ms_per_request": 1000 * cpu["server_cores"] / throughput if throughput else None,
        "mean_batch_size": items / batches if batches else None,  # this service only, warm-up included
        "cdf_ms": quantile_curve(latencies),
    }


def bench_engine(engine: Engine, config: BenchConfig, samples: list[Sample], rnd: int) -> dict:
    """One round of one engine: start it, check its answers, load it at every concurrency, stop it."""
    logger.info("%s: starting (round %d)", engine.title, rnd + 1)
    out = {"answers": None, "results": {}, "profiles": {}}
    with engine.start(config.results / f"{engine.key}-{rnd + 1}.log", config.dataset) as server:
        out["answers"] = check_answers(server, engine, config.dataset, samples)
        requests = [build_request(server.url, engine.path(config.dataset), *engine.body(s.png)) for s in samples]
        for concurrency in config.concurrency:
            before = defend_batches(server) if engine.reports_batches else None
            result = out["results"][concurrency] = measure_point(server, requests, concurrency, config)
            if before is not None:
                after = defend_batches(server)
                result.batches = (after["sum"] - before["sum"], after["count"] - before["count"])
            stats = summarize(result.latencies_ms)
            logger.info(
                "%s c=%d: %.0f req/s, p50 %.2f ms, p95 %.2f ms, cpu %s",
                engine.key,
                concurrency,
                result.throughput,
                stats.get("p50_ms", nan),
                stats.get("p95_ms", nan),
                result.cpu,
            )
        profiled = engine.key == "ours" or engine.key.removeprefix("ours-") in config.variants
        if config.profile and rnd == 0 and profiled:
            for concurrency in sorted({min(config.concurrency), max(config.concurrency)}):
                found = profile_window(server, engine.key, requests, concurrency, config)
                if found is not None:
                    out["profiles"][concurrency] = found
    return out


def profile_window(
    server: Server, key: str, requests: list[bytes], concurrency: int, config: BenchConfig
) -> dict | None:
    """py-spy over one more window of load at ``concurrency``, whose answers are not counted: sampling takes CPU
    from the server, so a profiled window is never a measured one; its own throughput turns the samples into
    CPU per request. None when py-spy is missing."""
    spy = config.results / f"{key}-c{concurrency}.pyspy.txt"
    spy_s = max(1, round(config.warmup_s + config.duration_s))
    process = profile.record(server.pid, spy_s, spy)
    if process is None:
        return None
    result = measure_point(server, requests, concurrency, config)
    _, stderr = process.communicate()
    if process.returncode != 0:
        return {"error": stderr.decode()[-500:]}
    return {"throughput_rps": result.throughput, "threads": profile.summarize(spy, spy_s)}


def bench_engines(config: BenchConfig, samples: list[Sample]) -> dict:
    """Every engine, round after round (a, b, c, d, a, b, ...), so slow drifts in the machine's load hit all."""
    available = engines(config.max_batch_size, config.peer_batch_timeout_ms, config.variants)
    rounds = [
        {key: bench_engine(available[key], config, samples, rnd) for key in config.engines}
        for rnd in range(config.rounds)
    ]
    summary = {}
    for key in config.engines:
        points = []
        for concurrency in config.concurrency:
            points.append(_point([r[key]["results"][concurrency] for r in rounds]))
            if concurrency in rounds[0][key]["profiles"]:
                points[-1]["profile"] = rounds[0][key]["profiles"][concurrency]
        answers = [r[key]["answers"] for r in rounds]
        summary[key] = {
            "title": available[key].title,
            "settings": available[key].settings,
            "answers": answers,
            "points": points,
        }
    return summary


def run(config: BenchConfig) -> dict:
    """The whole benchmark; writes ``bench.json`` under ``config.results`` and returns it."""
    config.results.mkdir(parents=True, exist_ok=True)
    samples = load_samples(config.dataset)
    settings = Settings(default_dataset=config.dataset, max_batch_size=config.max_batch_size)
    summary = {"machine": machine(), "config": {**asdict(config), "results": str(config.results)}}
    summary["settings"] = {
        "num_threads": settings.num_threads,
        "optimize_classifier": settings.optimize_classifier,
        "max_wait_ms": settings.max_wait_ms,
        "device": settings.device,
    }
    logger.info("in-process model time (%d repeats)", config.inprocess_repeats)
    summary["inprocess"] = inprocess.measure(
        Pipeline.load(settings), samples, config.inprocess_repeats, config.max_batch_size
    )
    summary["engines"] = bench_engines(config, samples)
    summary["machine"]["load_average_end"] = load_average()
    (config.results / "bench.json").write_text(json.dumps(summary, indent=1))
    return summary
