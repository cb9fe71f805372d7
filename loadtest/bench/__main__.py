"""``python -m loadtest.bench``: the side-by-side benchmark; prints the table and ratios, writes JSON, plots, report.

Results go to ``results/bench/<UTC time>/`` (``bench.json``, ``performance.md``, ``perf-*.png``, server
logs); ``--write-docs`` also regenerates ``docs/performance.md`` and ``docs/figures/perf-*.png``, which
``python -m render.bench results/bench/<time>/bench.json`` does from a saved run alone.
"""

import argparse
import datetime
import logging
from pathlib import Path

from loadtest.bench.engines import engines, parse_variant
from loadtest.bench.run import BenchConfig, run
from render import bench as report
from service.config import REPO_ROOT


def parse_args(argv: list[str] | None = None) -> tuple[BenchConfig, bool]:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    defaults = BenchConfig(results=Path())
    parser.add_argument("--dataset", default=defaults.dataset, choices=("mnist", "fashion-mnist"))
    parser.add_argument("--engines", nargs="+", default=defaults.engines, choices=tuple(engines(1, 0)))
    parser.add_argument("--concurrency", nargs="+", type=int, default=defaults.concurrency)
    parser.add_argument("--duration", type=float, default=defaults.duration_s, help="seconds measured per point")
    parser.add_argument("--rounds", type=int, default=defaults.rounds, help="repeat every engine, interleaved")
    parser.add_argument("--warmup", type=float, default=defaults.warmup_s, help="seconds of load before each window")
    parser.add_argument("--max-batch-size", type=int, default=defaults.max_batch_size)
    parser.add_argument("--peer-batch-timeout-ms", type=float, default=defaults.peer_batch_timeout_ms,
                        help="how long LitServe and Ray Serve wait to fill a batch")
    parser.add_argument("--inprocess-repeats", type=int, default=defaults.inprocess_repeats)
    parser.add_argument(
        "--variant",
        action="append",
        type=parse_variant,
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="also run the service as ours-NAME with these PURIFIER_* settings (repeatable)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the service at the highest concurrency")
    parser.add_argument("--results", type=Path, help="output folder (default results/bench/<UTC time>)")
    parser.add_argument("--write-docs", action="store_true", help="regenerate docs/performance.md and its figures")
    args = parser.parse_args(argv)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    config = BenchConfig(
        results=args.results or REPO_ROOT / "results" / "bench" / stamp,
        dataset=args.dataset,
        engines=tuple(args.engines) + tuple(f"ours-{name}" for name, _ in args.variant),
        concurrency=tuple(sorted(set(args.concurrency))),
        duration_s=args.duration,
        warmup_s=args.warmup,
        rounds=args.rounds,
        max_batch_size=args.max_batch_size,
        peer_batch_timeout_ms=args.peer_batch_timeout_ms,
        inprocess_repeats=args.inprocess_repeats,
        profile=args.profile,
        variants=dict(args.variant),
    )
    return config, args.write_docs


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    config, write_docs = parse_args(argv)
    summary = run(config)
    report.render(summary, config.results / "performance.md", config.results)
    if write_docs:
        report.write_docs(summary)
    print(report.console(summary))
    print(f"\nwrote {config.results}/bench.json, performance.md and perf-*.png")


if __name__ == "__main__":
    main()
