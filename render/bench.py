"""The tables and figures of docs/performance.md, from one benchmark JSON; and the console summary.

Each table is a marked block ``performance-<table>`` of the page; the prose around them is written by hand, and
a re-render replaces only the blocks. ``python -m render.bench results/bench/<time>/bench.json``
re-renders a page and its figures from that run alone; ``make bench`` keeps its JSON as docs/performance.json.
"""

import argparse
import json
from pathlib import Path

from loadtest.bench import analysis
from render import bench_plots as plots
from render.markdown import place, table
from service.config import REPO_ROOT

DOC = REPO_ROOT / "docs" / "performance.md"
RUN = REPO_ROOT / "docs" / "performance.json"  # the run the page shows
NO_GPU = "none in this run: the service runs on CUDA when present (`PURIFIER_DEVICE=auto`)"
FIGURES = REPO_ROOT / "docs" / "figures"
THROUGHPUT_PNG, CDF_PNG = "perf-throughput.png", "perf-latency-cdf.png"
QUOTED = "performance-figures.json"  # beside the page: the figures other pages quote


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
        f"--peer-batch-timeout-ms {config['peer_batch_timeout_ms']:g}",
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
        ["GPU", m["gpu"] or NO_GPU],
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


def _profiled(summary: dict) -> list[tuple[str, dict]]:
    """The profiled points the page shows: the service's; the JSON keeps every variant's."""
    return [("ours", p) for p in summary["engines"]["ours"]["points"] if p.get("profile")]


def profile_table(summary: dict) -> str:
    """py-spy per profiled point: how busy each thread was, and where its samples fell."""
    rows = []
    for key, p in _profiled(summary):
        profile = p["profile"]
        if "error" in profile:
            rows.append([key, str(p["concurrency"]), "py-spy failed", "–", profile["error"].strip(), ""])
            continue
        rows += [
            [
                key,
                str(p["concurrency"]),
                thread,
                _f(100 * t["busy"], ".0f") + " %",
                "; ".join(f"{name} {100 * share:.0f} %" for name, share in t["inclusive"].items()) or "–",
                "; ".join(f"`{frame}` {100 * share:.0f} %" for frame, share in t["top_self"][:4]),
            ]
            for thread, t in profile["threads"].items()
        ]
    if not rows:
        return "Not profiled in this run (add `--profile`)."
    return table(["engine", "c", "thread", "busy", "inclusive (of its samples)", "top self frames"], rows)


def stages_table(summary: dict) -> str:
    """CPU per request by stage, from each profiled window: the event loop's samples split by stage, and the
    inference threads' samples, turned into core-ms per request by the window's own throughput."""
    columns = [(key, p) for key, p in _profiled(summary) if "error" not in p["profile"]]
    if not columns:
        return "Not profiled in this run (add `--profile`)."
    per_request = [analysis.stage_ms(p) for _, p in columns]
    stages = list(dict.fromkeys(stage for ms in per_request for stage in ms))
    rows = [[stage, *(_f(ms.get(stage, 0.0), ".3f") for ms in per_request)] for stage in stages]
    return table(["core-ms per request", *(f"{key} c={p['concurrency']}" for key, p in columns)], rows)


def request_table(summary: dict) -> str:
    """Where the p50 of one request at concurrency 1 goes: in-process p50s, and the HTTP p50 less all of them."""
    ours1 = analysis.point(summary, "ours", 1)
    if not ours1:
        return "Not measured in this run (no concurrency 1)."
    ms = {case: summary["inprocess"][case]["p50_ms"] for case in ("ae_vgg_batch1", "defend_batch1", "decode")}
    parts = [
        ("the pipeline's forward passes (purifier and classifier, batch 1)", ms["ae_vgg_batch1"]),
        ("the rest of `defend`: the raw image's classifier call on the branch thread, the hand-off, softmax, "
         "`.tolist()`", ms["defend_batch1"] - ms["ae_vgg_batch1"]),
        ("PNG decoding", ms["decode"]),
        ("HTTP, the framework, the queue and the thread hand-off: the rest", analysis.http_overhead_ms(summary)),
    ]
    rows = [[name, f"{value:.2f}"] for name, value in parts] + [["p50 over HTTP at concurrency 1", f"{ours1['p50_ms']:.2f}"]]
    return table(["part", "ms"], rows)


def blocks(summary: dict) -> dict[str, str]:
    """{block name: markdown} of every table of the page."""
    targets = [
        [t.name, t.goal, t.measured, {True: "**met**", False: "**missed**", None: "–"}[t.met]]
        for t in analysis.targets(summary)
    ]
    ratios = [[k, _f(v, ".2f")] for k, v in analysis.ratios(summary).items()]
    return {
        "performance-command": f"```\n{command(summary)}\n```",
        "performance-targets": table(["target", "goal", "measured", ""], targets),
        "performance-side-by-side": side_by_side(summary),
        "performance-ratios": table(["ratio", "value"], ratios),
        "performance-request": request_table(summary),
        "performance-inprocess": inprocess_table(summary),
        "performance-profile": profile_table(summary),
        "performance-stages": stages_table(summary),
        "performance-machine": machine_table(summary),
    }


def render(summary: dict, doc: Path, figures: Path) -> None:
    """The figures, and ``doc`` with every table re-rendered (a new page gets the tables alone)."""
    figures.mkdir(parents=True, exist_ok=True)
    plots.throughput(summary, figures / THROUGHPUT_PNG)
    plots.latency_cdf(summary, figures / CDF_PNG)
    doc.write_text(place(doc.read_text() if doc.is_file() else "", blocks(summary)))
    doc.with_name(QUOTED).write_text(json.dumps(analysis.quoted(summary), indent=1) + "\n")


def write_docs(summary: dict) -> None:
    """docs/performance.md and its figures from this run, which becomes docs/performance.json."""
    RUN.write_text(json.dumps(summary, indent=1) + "\n")
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
    parser = argparse.ArgumentParser(prog="python -m render.bench", description=__doc__)
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
