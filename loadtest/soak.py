"""Soak: steady Locust load for minutes, sampling the server's memory and file descriptors; leaks show as growth.

    nice -n 19 .venv/bin/python -m loadtest.soak --minutes 10   # docs/soak.json; python -m render fills the page

Starts ``python -m service`` on the bundled artifacts (or loads ``--url``), runs ``--users`` Locust users
at ``--rate`` requests per second each over a mix of every model endpoint with the bundled samples,
and reads ``process_resident_memory_bytes`` / ``process_open_fds`` from ``/metrics`` every
``--sample-s``. Growth is measured from the end of ``--warmup-s`` (allocator pools and caches fill
first). Exit status 1 when RSS grows 10% or more, descriptors grow, or any request fails. Not part
of the test suite: it measures leaks, not speed, so run it niced on a shared machine.
"""

import argparse
import base64
import json
import random
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gevent
from locust import FastHttpUser, constant_throughput, events, task
from locust.env import Environment
from prometheus_client.parser import text_string_to_metric_families

from loadtest.machine import machine
from loadtest.samples import Sample, load_samples
from loadtest.server import serve
from loadtest.stats import summarize
from service.config import REPO_ROOT

RSS_GROWTH_LIMIT = 0.10
SAMPLES: list[Sample] = []


class SoakUser(FastHttpUser):
    """Every model endpoint, weighted like a defended deployment: mostly single images, some JSON batches."""

    wait_time = constant_throughput(5.0)  # replaced by --rate

    def _post(self, endpoint: str, dataset: str, **kwargs) -> None:
        with self.client.post(f"{endpoint}?dataset={dataset}", name=endpoint, catch_response=True, **kwargs) as answer:
            if answer.status_code != 200:
                answer.failure(f"{answer.status_code}: {answer.text[:200]}")

    def _image(self, endpoint: str) -> None:
        sample = random.choice(SAMPLES)
        self._post(endpoint, sample.dataset, data=sample.png, headers={"content-type": "image/png"})

    @task(3)
    def classify(self) -> None:
        self._image("/classify")

    @task(3)
    def defended(self) -> None:
        self._image("/defended-classify")

    @task(2)
    def purify(self) -> None:
        self._image("/purify")

    @task(1)
    def defended_batch(self) -> None:
        dataset = random.choice(SAMPLES).dataset
        batch = [
            base64.b64encode(s.png).decode() for s in random.sample([s for s in SAMPLES if s.dataset == dataset], 4)
        ]
        self._post("/defended-classify", dataset, json={"images": batch})


def process_figures(url: str) -> dict[str, float]:
    """The server's own resident memory (MiB) and open descriptors, from its /metrics."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    values = {f.name: f.samples[0].value for f in text_string_to_metric_families(text) if f.samples}
    return {"rss_mib": values["process_resident_memory_bytes"] / 2**20, "open_fds": values["process_open_fds"]}


@contextmanager
def target(args: argparse.Namespace) -> Iterator[str]:
    if args.url:
        yield args.url.rstrip("/")
        return
    with serve(REPO_ROOT / "runs" / "logs" / "soak-server.log", log_level="warning") as server:
        yield server.url


def run(args: argparse.Namespace) -> dict:
    SAMPLES[:] = [s for dataset in args.datasets for s in load_samples(dataset)]
    SoakUser.wait_time = constant_throughput(args.rate)
    latencies_ms: list[float] = []
    events.request.add_listener(lambda response_time, **_: latencies_ms.append(response_time))
    with target(args) as url:
        environment = Environment(user_classes=[SoakUser], events=events, host=url)
        runner = environment.create_local_runner()
        timeline, started, duration_s = [], time.monotonic(), args.minutes * 60
        runner.start(args.users, spawn_rate=args.users)
        while True:  # the last sample is taken at the end, still under load
            elapsed, stats = time.monotonic() - started, environment.stats.total
            point = {"t_s": round(elapsed), "requests": stats.num_requests, "failures": stats.num_failures}
            timeline.append(point | process_figures(url))
            if elapsed >= duration_s:
                break
            gevent.sleep(min(args.sample_s, duration_s - elapsed))
        runner.quit()
    stats = environment.stats.total
    baseline = next(point for point in timeline if point["t_s"] >= args.warmup_s)
    end = timeline[-1]
    return {
        "config": {k: v for k, v in vars(args).items() if k != "out"},
        "machine": machine(),
        "requests": stats.num_requests,
        "failures": stats.num_failures,
        "error_rate": stats.num_failures / max(stats.num_requests, 1),
        "requests_per_s": stats.num_requests / duration_s,
        "latency_ms": summarize(latencies_ms),
        "failures_by_kind": {str(key): entry.occurrences for key, entry in environment.stats.errors.items()},
        "rss_mib": {"start": timeline[0]["rss_mib"], "after_warmup": baseline["rss_mib"], "end": end["rss_mib"]}
        | {"max": max(p["rss_mib"] for p in timeline)},
        "rss_growth_after_warmup": end["rss_mib"] / baseline["rss_mib"] - 1,
        "rss_growth_from_start": end["rss_mib"] / timeline[0]["rss_mib"] - 1,
        "open_fds": {"after_warmup": baseline["open_fds"], "end": end["open_fds"]}
        | {"max": max(p["open_fds"] for p in timeline)},
        "timeline": timeline,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--rate", type=float, default=5.0, help="requests per second per user")
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    parser.add_argument("--url", help="an already running server; default: start one on the bundled artifacts")
    parser.add_argument("--sample-s", type=float, default=10.0, help="seconds between /metrics samples")
    parser.add_argument("--warmup-s", type=float, default=60.0, help="growth is measured from here")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "soak.json")
    args = parser.parse_args()
    report = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    summary = {k: report[k] for k in ("requests", "error_rate", "rss_mib", "rss_growth_after_warmup", "open_fds")}
    print(json.dumps(summary, indent=1))
    leaked = report["rss_growth_after_warmup"] >= RSS_GROWTH_LIMIT
    raise SystemExit(
        int(leaked or report["failures"] > 0 or report["open_fds"]["end"] > report["open_fds"]["after_warmup"])
    )


if __name__ == "__main__":
    main()
