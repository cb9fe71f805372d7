"""docs/performance.md and its figures, generated from one benchmark JSON; and the console summary.

``python -m loadtest.bench.report results/bench/<time>/bench.json`` rewrites ``docs/performance.md``
and ``docs/figures/perf-*.png`` from that run alone: no figure in the document is typed by hand.
"""

import argparse
import json
import os
from pathlib import Path

from loadtest.bench import analysis, levers, plots, prose
from service.config import REPO_ROOT
from training.markdown import table

DOC = REPO_ROOT / "docs" / "performance.md"
FIGURES = REPO_ROOT / "docs" / "figures"
THROUGHPUT_PNG, CDF_PNG = "perf-throughput.png", "perf-latency-cdf.png"


def _f(value: float | None, spec: str = ".2f") -> str:
    return "–" if value is None else f"{value:{spec}}"


def command(summary: dict) -> str:
    config = summary["config"]
    parts = [
        "python -m loadtest.bench",
        f"--dataset {config['dataset']}",
        "--engines "
        + " ".join(e for e in config["engines"] if e.removeprefix("ours-") not in config.get("variants", {})),
        "--concurrency " + " ".join(map(str, config["concurrency"])),
        f"--duration {config['duration_s']:g}",
        f"--warmup {config['warmup_s']:g}",
        f"--rounds {config['rounds']}",
        f"--max-batch-size {config['max_batch_size']}",
        f"--litserve-batch-timeout-ms {config['litserve_batch_timeout_ms']:g}",
    ]
    variants = [
        f"--variant {name}:" + ",".join(f"{k}={v}" for k, v in settings.items())
        for name, settings in config.get("variants", {}).items()
    ]
    return " ".join(parts + variants + (["--profile"] if config["profile"] else []))


def _others(summary: dict) -> list[float]:
    return [p["cpu"]["other_cores"] for e in summary["engines"].values() for p in e["points"] if p.get("cpu")]


def machine_table(summary: dict) -> str:
    m, others = summary["machine"], _others(summary)
    busy = f"mean {sum(others) / len(others):.2f} cores (max {max(others):.2f})" if others else "–"
    rows = [
        ["date (UTC)", m["date"]],
        ["commit", m.get("git_commit") or "–"],
        ["CPU", f"{m['cpu']}, {m['logical_cpus']} logical CPUs"],
        ["GPU", m["gpu"] or prose.NO_GPU],
        ["software", f"Python {m['python']}, torch {m['torch']}, {m['platform']}"],
        ["packages", ", ".join(f"{name} {version}" for name, version in m.get("packages", {}).items() if version)],
        ["service settings", ", ".join(f"{k}={v}" for k, v in summary["settings"].items())],
        [
            "load average (1/5/15 min) at start / end",
            f"{' / '.join(map(str, m['load_average']))} → {' / '.join(map(str, m.get('load_average_end', [])))}",
        ],
        ["CPU used by other processes during the load windows", busy],
    ]
    return table(["", ""], rows)


def side_by_side(summary: dict) -> str:
    rows = []
    for key, engine in summary["engines"].items():
        for p in engine["points"]:
            failed = sum(n for status, n in p["statuses"].items() if status != "200") + sum(p["errors"].values())
            rows.append(
                [
                    key,
                    str(p["concurrency"]),
                    _f(p["throughput_rps"], ".0f"),
                    _f(p.get("p50_ms")),
                    _f(p.get("p95_ms")),
                    _f(p.get("p99_ms")),
                    _f(p["server_cpu_ms_per_request"]),
                    _f(p.get("mean_batch_size"), ".1f"),
                    _f(p["cpu"].get("client_cores")),
                    _f(p["cpu"].get("other_cores")),
                    str(failed),
                ]
            )
    header = [
        "engine",
        "c",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "server CPU ms/req",
        "mean batch",
        "client cores",
        "others' cores",
        "non-200",
    ]
    return table(header, rows)


def inprocess_table(summary: dict) -> str:
    rows = [
        [
            name,
            str(int(s["batch_size"])),
            _f(s["p50_ms"], ".3f"),
            _f(s["p95_ms"], ".3f"),
            _f(s["per_image_ms"], ".3f"),
            str(s["n"]),
        ]
        for name, s in summary["inprocess"].items()
    ]
    return table(["what", "batch", "p50 ms", "p95 ms", "per image ms (p50 / batch)", "runs"], rows)


def profile_section(summary: dict) -> str:
    profiled = [(key, p) for key, e in summary["engines"].items() for p in e["points"] if "profile" in p]
    if not profiled:
        return "Not profiled in this run (add `--profile`)."
    parts = []
    for key, p in profiled:
        if "error" in p["profile"]:
            parts.append(f"py-spy failed on {key} at c={p['concurrency']}: `{p['profile']['error'].strip()}`")
            continue
        rows = [
            [
                thread,
                _f(100 * t["busy"], ".0f") + " %",
                "; ".join(f"{name} {100 * share:.0f} %" for name, share in t["inclusive"].items()) or "–",
                "; ".join(f"`{frame}` {100 * share:.0f} %" for frame, share in t["top_self"][:4]),
            ]
            for thread, t in p["profile"].items()
        ]
        parts.append(
            f"py-spy on **{key}** at concurrency {p['concurrency']}, warm-up and window: how busy each thread was "
            "(non-idle samples over the whole time), and where its samples fell. A thread near 100 % is the "
            "bottleneck; two threads well below it, with the machine's other load beside them, mean the process "
            "got no more CPU.\n\n" + table(["thread", "busy", "inclusive (of its samples)", "top self frames"], rows)
        )
    return "\n\n".join(parts)


def markdown(summary: dict, figures: str) -> str:
    ratios = analysis.ratios(summary)
    target_rows = [
        [t.name, t.goal, t.measured, {True: "**met**", False: "**missed**", None: "–"}[t.met]]
        for t in analysis.targets(summary)
    ]
    return (
        "\n\n".join(
            [
                "# Performance",
                prose.header(command(summary)),
                "## Machine and load\n\n" + machine_table(summary),
                "## Performance targets\n\n"
                + table(["target", "goal", "measured", ""], target_rows)
                + "\n\n"
                + prose.load_note(summary, _others(summary)),
                "## Side by side: `/defended-classify`\n\n" + prose.ENGINES + "\n\n" + side_by_side(summary),
                "## Ratios\n\n" + table(["ratio", "value"], [[k, _f(v, ".2f")] for k, v in ratios.items()]),
                "## In-process model time (no HTTP)\n\n" + prose.INPROCESS + "\n\n" + inprocess_table(summary),
                f"## Figures\n\n![throughput]({figures}/{THROUGHPUT_PNG})\n\n![latency CDF]({figures}/{CDF_PNG})",
                "## What bounds it\n\n" + prose.bounds(summary, table) + "\n\n" + profile_section(summary),
                levers.levers(summary),
                prose.SETTINGS,
                prose.METHOD,
                prose.LOCUST,
            ]
        )
        + "\n"
    )


def render(summary: dict, doc: Path, figures: Path) -> None:
    figures.mkdir(parents=True, exist_ok=True)
    plots.throughput(summary, figures / THROUGHPUT_PNG)
    plots.latency_cdf(summary, figures / CDF_PNG)
    doc.write_text(markdown(summary, os.path.relpath(figures, doc.parent)))


def write_docs(summary: dict) -> None:
    render(summary, DOC, FIGURES)


def console(summary: dict) -> str:
    lines = [side_by_side(summary), "", "ratios:"]
    lines += [f"  {name}: {_f(value)}" for name, value in analysis.ratios(summary).items()]
    lines += ["", "targets:"]
    lines += [
        f"  [{ {True: 'met', False: 'MISSED', None: '-'}[t.met] }] {t.name}: {t.measured} (goal {t.goal})"
        for t in analysis.targets(summary)
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench.report", description=__doc__)
    parser.add_argument("bench_json", type=Path)
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--figures", type=Path, default=FIGURES)
    args = parser.parse_args(argv)
    summary = json.loads(args.bench_json.read_text())
    render(summary, args.doc, args.figures)
    print(console(summary))
    print(f"\nwrote {args.doc} and {args.figures}/perf-*.png")


if __name__ == "__main__":
    main()
