"""``python -m loadtest``: Locust headless against the service, per-endpoint percentiles, an SLO verdict.

Starts ``python -m service`` on a free port (``--setting KEY=VALUE`` sets its ``PURIFIER_*``), or
targets ``--host``. Locust runs the endpoint mix and reports it. Each SLO is then judged on its endpoint
alone, at the same number of clients, by the benchmark's lean client (``loadtest.bench.client``), so the
verdict and every other latency figure in the docs come from one client: Locust's own HTTP client costs
several milliseconds per request on a 2-core machine, and that time is the client's, not the service's.
Writes Locust's CSV and HTML report, the exact timings and ``summary.json`` under ``--results`` (default
``results/loadtest/<UTC time>/``). Exits 0 when every SLO holds and no more than ``--max-failure-ratio``
of requests failed, 1 when not, 2 when Locust itself failed.
"""

import argparse
import asyncio
import contextlib
import csv
import datetime
import json
import subprocess
import sys
from collections import defaultdict
from collections.abc import Awaitable, Iterator
from pathlib import Path

import uvloop

from loadtest.bench.client import build_request, closed_loop
from loadtest.machine import load_average, machine
from loadtest.mix import parse_mix
from loadtest.samples import load_samples
from loadtest.server import serve
from loadtest.slo import DEFAULT, Slo, Verdict, judge
from loadtest.stats import summarize
from service.config import REPO_ROOT

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
LOCUST_PERCENTILES = {"p50_ms": "50%", "p95_ms": "95%", "p99_ms": "99%"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", help="base URL of a running service (default: start one)")
    parser.add_argument("--users", type=int, default=1)
    parser.add_argument("--spawn-rate", type=float, default=1.0, help="users started per second")
    parser.add_argument("--duration", type=int, default=30, help="seconds of load")
    parser.add_argument("--mix", default="defended-classify=1,classify=1,purify=1", help="endpoint=weight,...")
    parser.add_argument("--datasets", default="mnist,fashion-mnist")
    parser.add_argument("--api-key", default="")
    parser.add_argument(
        "--slo", action="append", type=Slo.parse, help=f"ENDPOINT:pQ<=MS, repeatable (default {DEFAULT})"
    )
    parser.add_argument("--slo-duration", type=float, default=10.0, help="seconds each SLO is measured, after Locust")
    parser.add_argument("--max-failure-ratio", type=float, default=0.0)
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="PURIFIER_<KEY> for the service this command starts",
    )
    parser.add_argument("--results", type=Path)
    args = parser.parse_args(argv)
    if any("=" not in item for item in args.setting):
        parser.error("--setting takes KEY=VALUE")
    try:  # fail here, not as a Locust user that never starts
        parse_mix(args.mix)
        for dataset in filter(None, (d.strip() for d in args.datasets.split(","))):
            load_samples(dataset)
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    args.slo = args.slo or [Slo.parse(DEFAULT)]
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    args.results = args.results or REPO_ROOT / "results" / "loadtest" / stamp
    return args


@contextlib.contextmanager
def target(args: argparse.Namespace) -> Iterator[str]:
    if args.host:
        yield args.host.rstrip("/")
        return
    settings = dict(item.split("=", 1) for item in args.setting)
    with serve(args.results / "service.log", **settings) as server:
        yield server.url


def run_locust(args: argparse.Namespace, host: str) -> int:
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--host",
        host,
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.spawn_rate),
        "--run-time",
        f"{args.duration}s",
        "--csv",
        str(args.results / "locust"),
        "--html",
        str(args.results / "locust.html"),
        "--mix",
        args.mix,
        "--datasets",
        args.datasets,
        "--timings-file",
        str(args.results / "timings.csv"),
    ]
    if args.api_key:
        command += ["--api-key", args.api_key]
    with (args.results / "locust.log").open("w") as log:
        return subprocess.run(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, check=False).returncode


def read_results(results: Path) -> dict[str, dict]:
    """Per endpoint: counts and exact percentiles from the timings, rate and rounded percentiles from Locust."""
    ok: dict[str, list[float]] = defaultdict(list)
    failures: dict[str, int] = defaultdict(int)
    with (results / "timings.csv").open() as timings:
        for row in csv.DictReader(timings):
            if row["ok"] == "1":
                ok[row["endpoint"]].append(float(row["response_time_ms"]))
            else:
                failures[row["endpoint"]] += 1
    locust = {}
    with (results / "locust_stats.csv").open() as stats:
        for row in csv.DictReader(stats):
            locust[row["Name"]] = row
    endpoints = {}
    for name in sorted(set(ok) | set(failures)):
        row = locust.get(name, {})
        endpoints[name] = {
            "requests": len(ok[name]) + failures[name],
            "failures": failures[name],
            "requests_per_s": float(row.get("Requests/s") or 0.0),
            "exact": summarize(ok[name]),
            "locust_rounded": {
                key: float(row[column]) for key, column in LOCUST_PERCENTILES.items() if row.get(column)
            },
        }
    return endpoints


def slo_timings(args: argparse.Namespace, host: str, endpoint: str) -> tuple[list[float], int]:
    """``endpoint`` alone, at ``--users`` clients for ``--slo-duration`` s, with the lean client: the latencies
    of its 200 answers in milliseconds, and how many answers were not 200."""
    headers = {"x-api-key": args.api_key} if args.api_key else None
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    requests = [
        build_request(host, f"{endpoint}?dataset={sample.dataset}", sample.png, "image/png", headers)
        for dataset in datasets for sample in load_samples(dataset)
    ]

    async def meter(window: Awaitable[None]) -> dict[str, float]:
        await window
        return {}

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(closed_loop(host, requests, args.users, 1.0, args.slo_duration, meter))
    return result.latencies_ms, sum(result.statuses.values()) - result.ok + sum(result.errors.values())


def table(endpoints: dict[str, dict]) -> str:
    header = f"{'endpoint':<20} {'requests':>8} {'failed':>6} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
    lines = [header + "   Locust p50/p95/p99 (rounded)"]
    for name, e in endpoints.items():
        exact, rounded = e["exact"], e["locust_rounded"]
        cells = [f"{exact.get(key, float('nan')):8.2f}" for key in LOCUST_PERCENTILES]
        locust = "/".join(f"{rounded[key]:g}" for key in LOCUST_PERCENTILES if key in rounded) or "-"
        lines.append(
            f"{name:<20} {e['requests']:>8} {e['failures']:>6} {e['requests_per_s']:>8.1f} {' '.join(cells)}   {locust}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.results.mkdir(parents=True, exist_ok=True)
    summary = {"machine": machine(), "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    summary["config"]["slo"] = [str(slo) for slo in args.slo]
    with target(args) as host:
        code = run_locust(args, host)
        measured = {slo.endpoint: slo_timings(args, host, slo.endpoint) for slo in args.slo}
    summary["machine"]["load_average_end"] = load_average()
    if not (args.results / "timings.csv").exists() or not (args.results / "locust_stats.csv").exists():
        print(f"Locust failed (exit {code}); see {args.results / 'locust.log'}", file=sys.stderr)
        return 2
    endpoints = read_results(args.results)
    verdicts: list[Verdict] = [judge(slo, measured[slo.endpoint][0]) for slo in args.slo]
    requests = sum(e["requests"] for e in endpoints.values()) + sum(len(t) + bad for t, bad in measured.values())
    failed = sum(e["failures"] for e in endpoints.values()) + sum(bad for _, bad in measured.values())
    failure_ok = requests > 0 and failed / requests <= args.max_failure_ratio
    passed = failure_ok and all(v.passed for v in verdicts)
    summary.update(
        endpoints=endpoints,
        slo=[{"slo": str(v.slo), "measured_ms": v.measured_ms, "passed": v.passed, "client": "lean",
              "requests": len(measured[v.slo.endpoint][0]), "summary": summarize(measured[v.slo.endpoint][0])}
             for v in verdicts],
        failures={"requests": requests, "failed": failed, "max_ratio": args.max_failure_ratio, "passed": failure_ok},
        passed=passed,
    )
    (args.results / "summary.json").write_text(json.dumps(summary, indent=1))
    print(table(endpoints))
    print(f"SLOs, each endpoint alone at {args.users} client(s) for {args.slo_duration:g} s, lean client:")
    print("\n".join(v.line() for v in verdicts))
    print(
        f"[{'pass' if failure_ok else 'FAIL'}] failed requests: {failed} of {requests} "
        f"(allowed ratio {args.max_failure_ratio:g})"
    )
    print(
        f"load average {summary['machine']['load_average']} -> {summary['machine']['load_average_end']}; "
        f"results in {args.results}"
    )
    return 0 if passed else 1
