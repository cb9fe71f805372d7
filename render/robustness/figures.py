"""The figure of docs/robustness.md: accuracy against eps for the served pipelines, with 95% CIs.

Each served pipeline under EOT-PGD (the attacker differentiates through everything, averaging over any noise),
the paper's pipeline also under the paper's oblivious PGD, the undefended classifier for reference, and each
certified model's IBP-certified accuracy, which no attack can lower.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from training.robustness.defenses import PAPER_PURIFIER, PIPELINE_DEFENSES  # noqa: E402

PAPER = PIPELINE_DEFENSES[PAPER_PURIFIER]  # the study's defense for the paper's pipeline


def _points(result: dict, defense: str, attack: str) -> list[tuple[float, dict]]:
    """(eps, cell) of one defense and attack at the run's EOT-PGD steps, the largest n at each eps, and clean
    accuracy at eps 0."""
    best: dict[float, dict] = {}
    for c in result["cells"].values():
        if c["defense"] == defense and c["attack"] == attack and c["steps"] == result["config"]["eot_steps"]:
            if c["eps"] not in best or c["n"] > best[c["eps"]]["n"]:
                best[c["eps"]] = c
    if not best:
        return []
    clean = result["clean"].get(defense)
    return ([(0.0, clean)] if clean else []) + sorted(best.items())


def series(result: dict) -> list[tuple[str, list[tuple[float, dict]], str]]:
    """(label, points, line style) of every curve the figure draws."""
    out = [("no defense, white-box PGD", _points(result, "none", "eot-pgd"), ":")]
    served = {name: row for name, row in result.get("pipelines", {}).items() if row.get("served", True)}
    defenses = {row["defense"]: name for name, row in served.items()}
    defenses.setdefault(PAPER, PAPER_PURIFIER)
    for defense, name in defenses.items():
        default = " (default)" if served.get(name, {}).get("default") else ""
        out.append((f"{name}{default}, EOT-PGD", _points(result, defense, "eot-pgd"), "-"))
    out.append((f"{PAPER_PURIFIER} (the paper's), oblivious PGD", _points(result, PAPER, "pgd"), "--"))
    for defense, summary in result.get("certified", {}).items():
        curve = [(p["eps"], p) for p in summary.get("curve", [])]
        out.append((f"{defenses.get(defense, defense)}, IBP-certified (all attacks)", curve, "-."))
    return [(label, points, style) for label, points, style in out if points]


def accuracy_vs_eps(result: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, (label, points, style) in enumerate(series(result)):
        eps = [e for e, _ in points]
        color = f"C{i % 10}"
        ax.plot(eps, [c["accuracy"] for _, c in points], style, color=color, marker="o", ms=3, label=label)
        ax.fill_between(eps, [c["ci95"][0] for _, c in points], [c["ci95"][1] for _, c in points],
                        color=color, alpha=0.12)
    ax.set_title(f"{result['dataset']}: the served pipelines (eps 0: clean accuracy; 95% CIs)")
    ax.set_xlabel("epsilon (l-inf)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
