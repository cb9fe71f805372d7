"""docs/security.md's measured tables, rendered from docs/security-queries.json into its generated block."""

from pathlib import Path

from render.markdown import splice
from render.markdown import table_lines as table
from service.config import REPO_ROOT

DOC = REPO_ROOT / "docs" / "security.md"
BLOCK = "security-queries"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _ci(low_high: list[float]) -> str:
    return f"[{100 * low_high[0]:.0f}, {100 * low_high[1]:.0f}]"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def attack_table(summaries: list[dict]) -> list[str]:
    rows = [
        [
            s["attack"], s["detail"], s["defense"], str(s["attacked"]),
            f"{_pct(s['success_rate'])} {_ci(s['success_ci'])}", _num(s["median_queries_to_success"]),
            _pct(s["flagged_within"]["50"]), _pct(s["flagged_within"]["100"]), _num(s["median_queries_to_flag"]),
            str(s["succeeded_before_flag"]),
        ]
        for s in summaries
    ]
    head = ["attack", "detail", "detector", "runs", "success (95% CI)", "median queries to success",
            "flagged ≤ 50", "flagged ≤ 100", "median queries to flag", "won before flagged"]
    return table(head, rows)


def benign_table(results: list[dict]) -> list[str]:
    rows = [[r["scenario"], str(r["clients"]), str(r["requests"]), f"{r['flagged_clients']}",
             f"{_pct(r['flagged_rate'])} {_ci(r['flagged_rate_ci'])}", str(r["flagged_answers"])] for r in results]
    return table(["benign scenario", "clients", "requests", "clients flagged", "rate (95% CI)", "flagged answers"], rows)


def overhead_lines(cost: dict) -> list[str]:
    c32, p50 = cost["c32"], cost["p50_ms_c1"]
    return [
        f"- Detector in-process: {cost['guard_us_per_image']['detector']} µs per image (median), "
        f"{cost['guard_us_per_image']['detector+budget']} µs with the budget too.",
        f"- `/defended-classify` p50 at c=1: {p50['off']} ms off, {p50['flag']} ms flag: "
        f"{cost['added_p50_ms_c1']:+.3f} ms.",
        f"- At c=32: {c32['requests_per_s']['off']} req/s off, {c32['requests_per_s']['flag']} req/s flag "
        f"(ratio {c32['ratio_flag_over_off']}, medians of alternating 5 s turns).",
        f"- Control, a second `off` server in the same run: {cost['control_p50_ms_c1']:+.3f} ms at c=1, "
        f"ratio {c32['ratio_control_over_off']} at c=32: the noise these figures sit in.",
    ]


def render(results: dict) -> list[str]:
    lines = []
    for dataset, entry in results.items():
        config = entry["config"]
        lines += [f"### {dataset} (ε = {config['eps']}, budget {config['budget']} queries, n = {config['n']}, "
                  f"measured {config['measured']})", ""]
        if "attacks" in entry:
            lines += attack_table(entry["attacks"]["summaries"]) + [""]
        if "benign" in entry:
            lines += benign_table(entry["benign"]) + [""]
        if "overhead" in entry:
            lines += overhead_lines(entry["overhead"]) + [""]
    return lines


def write(results: dict, doc: Path = DOC) -> None:
    doc.write_text(splice(doc.read_text(), BLOCK, "\n".join(render(results))))
