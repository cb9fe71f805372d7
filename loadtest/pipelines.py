"""``python -m loadtest.pipelines``: each served pipeline's latency over HTTP at concurrency 1.

Starts ``python -m service`` on the bundled artifacts and sends the bundled samples, one request at a time, to
``/defended-classify?pipeline=...`` on one keep-alive connection, with the benchmark's lean client (these
figures and ``make bench``'s come from one client), in rounds that visit every pipeline in turn (so a noisy
second hurts them all alike). Writes p50 and p95 per pipeline, and the default pipeline's again under
``default``, with the machine, to ``docs/latency.json``: the README's headline tables and its sentence on the
paper's 8 ms read it.
"""

import argparse
import json
import statistics
import time
from pathlib import Path
from urllib.parse import urlencode

import uvloop

from loadtest.bench.client import Connection, build_request
from loadtest.machine import machine
from loadtest.samples import Sample, load_samples
from loadtest.server import serve
from service.artifacts import read_manifest
from service.config import DATASETS, REPO_ROOT

OUT = REPO_ROOT / "docs" / "latency.json"


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


def measure(url: str, dataset: str, pipelines: list[str], requests: int, warmup: int = 20,
            samples: list[Sample] | None = None) -> dict[str, dict]:
    """Milliseconds per request, client side, for each pipeline of one dataset (the bundled samples by default),
    timed by the benchmark's lean client on one keep-alive connection."""
    samples = samples or load_samples(dataset)
    built = {name: [build_request(url, f"/defended-classify?{urlencode({'dataset': dataset, 'pipeline': name})}",
                                  sample.png, "image/png") for sample in samples] for name in pipelines}
    timings: dict[str, list[float]] = {name: [] for name in pipelines}

    async def run() -> None:
        connection = await Connection.open(url)
        try:
            for i in range(warmup + requests):
                for name in pipelines:
                    started = time.perf_counter()
                    status, body = await connection.exchange(built[name][i % len(samples)])
                    elapsed = (time.perf_counter() - started) * 1000
                    if status != 200:
                        raise RuntimeError(f"{name}: HTTP {status}: {body[:200]!r}")
                    if i >= warmup:
                        timings[name].append(elapsed)
        finally:
            await connection.close()

    uvloop.run(run())
    return {name: {"p50_ms": round(percentile(t, 50), 2), "p95_ms": round(percentile(t, 95), 2), "n": len(t)}
            for name, t in timings.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.pipelines", description=__doc__)
    parser.add_argument("--requests", type=int, default=300, help="timed requests per pipeline")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--radius-rounds", type=int, help="PURIFIER_CERTIFIED_RADIUS_ROUNDS for the service "
                        "(0: the certificate at eps alone; default: the service's own)")
    args = parser.parse_args(argv)
    settings = {} if args.radius_rounds is None else {"certified_radius_rounds": str(args.radius_rounds)}
    command = " ".join(["python -m loadtest.pipelines", *(f"--radius-rounds {v}" for v in settings.values())])
    results = {"command": command, "concurrency": 1, "settings": settings, "machine": machine(), "datasets": {},
               "default": {}}
    with serve(REPO_ROOT / "results" / "latency" / "service.log", **settings) as server:
        for dataset in DATASETS:
            manifest = read_manifest(REPO_ROOT / "artifacts" / dataset)
            measured = results["datasets"][dataset] = measure(server.url, dataset, list(manifest.pipelines),
                                                              args.requests)
            results["default"][dataset] = {"pipeline": manifest.default_pipeline,
                                           **measured[manifest.default_pipeline]}
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results["datasets"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
