"""The figure of docs/robustness.md: accuracy against eps per defense and threat model, with 95% CIs."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SERIES = [("none", "eot-pgd", "no defense, white-box", "k", "-"), ("paper", "pgd", "paper purifier, oblivious", "C0", "--"),
          ("paper", "eot-pgd", "paper purifier, EOT", "C0", "-"), ("default", "pgd", "default purifier, oblivious",
                                                                   "C1", "--"),
          ("default", "eot-pgd", "default purifier, EOT", "C1", "-"), ("vote", "eot-pgd", "majority vote, EOT", "C2", "-"),
          ("finetuned", "eot-pgd", "fine-tuned classifier, EOT", "C3", "-"),
          ("adv-training", "eot-pgd", "FGSM-RS adv. training, white-box", "C4", "-"),
          ("default", "transfer", "default purifier, transfer", "C1", ":")]


def accuracy_vs_eps(result: dict, path: Path) -> None:
    """PGD-family accuracy against eps (clean accuracy at eps 0) for every series with data."""
    n, clean = result["config"]["n"], result["clean"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for defense, attack, label, color, style in SERIES:
        points = sorted((c["eps"], c) for c in result["cells"].values()
                        if c["defense"] == defense and c["attack"] == attack and c["n"] == n
                        and (attack != "eot-pgd" or c["steps"] == result["config"]["eot_steps"]))
        if not points:
            continue
        if defense in clean:
            points = [(0.0, clean[defense])] + points
        eps = [e for e, _ in points]
        ax.plot(eps, [c["accuracy"] for _, c in points], style, color=color, marker="o", ms=3, label=label)
        ax.fill_between(eps, [c["ci95"][0] for _, c in points], [c["ci95"][1] for _, c in points],
                        color=color, alpha=0.12)
    ax.set_title(f"{result['dataset']}: PGD-family attacks (n={n}; eps 0: clean, full test set; 95% CIs)")
    ax.set_xlabel("epsilon (l-inf)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
