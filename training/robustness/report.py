"""Render docs/robustness.md and its figures from ``docs/robustness/<dataset>.json`` (nothing else).

A cell the run has not reached yet is printed as *pending*, never estimated.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..markdown import markers, splice, table_lines
from . import figures
from .pipelines_report import pipelines_section
from .recipes_report import recipes_section
from .results import PENDING, Cells, fmt
from .verdict import RULE, candidates, verdict

REPORT = "robustness-report"  # the generated block of docs/robustness.md
# (column title, defense, attack for FGSM rows, attack for PGD rows); None = this column's clean row only
COLUMNS = [
    ("no defense (white-box)", "none", "fgsm", "eot-pgd"),
    ("paper purifier, oblivious", "paper", "fgsm", "pgd"),
    ("paper purifier, adaptive (EOT)", "paper", "eot-fgsm", "eot-pgd"),
    ("default purifier, oblivious", "default", "fgsm", "pgd"),
    ("default purifier, adaptive (EOT)", "default", "eot-fgsm", "eot-pgd"),
    ("candidate: majority vote, adaptive", "vote", "eot-fgsm", "eot-pgd"),
    ("candidate: fine-tuned classifier, adaptive", "finetuned", "eot-fgsm", "eot-pgd"),
    ("FGSM-RS adversarial training (white-box)", "adv-training", "eot-fgsm", "eot-pgd"),
]


def main_table(cells: Cells) -> list[str]:
    clean = cells.result["clean"]
    rows = [["clean (n={:,})".format(clean["none"]["n"]) if "none" in clean else "clean"]
            + [fmt(clean.get(d)) for _, d, _, _ in COLUMNS]]
    for family, eps_list, idx in (("FGSM", cells.cfg["fgsm_eps"], 2), ("PGD", cells.cfg["pgd_eps"], 3)):
        for eps in eps_list:
            rows.append([f"{family} eps={eps}"] + [fmt(cells.get(col[1], col[idx], eps)) for col in COLUMNS])
    return table_lines(["attack"] + [c[0] for c in COLUMNS], rows)


def other_threats(cells: Cells) -> list[str]:
    names = list(cells.result["defenses"])
    sur = cells.cfg["surrogate"]
    out = [f"**Transfer** (PGD-{cells.cfg['eot_steps']} with a random start, run to the end, on a surrogate trained "
           f"independently: width {sur['width']}, seed {sur['seed']}, {sur['epochs']} epochs; n={cells.cfg['n']}):", ""]
    out += table_lines(["eps"] + names, [[str(e)] + [fmt(cells.get(d, "transfer", e, k=1)) for d in names]
                                    for e in cells.cfg["pgd_eps"]])
    m = cells.cfg["check_n"]
    out += ["", f"**BPDA + EOT** beside full EOT-PGD on the same first {m} images (same steps, draws and restart):", ""]
    rows = []
    for d in ("default", "finetuned", "paper"):
        for e in cells.cfg["pgd_eps"]:
            rows.append([d, str(e), fmt(cells.get(d, "bpda", e, m)),
                         fmt(cells.subset(cells.get(d, "eot-pgd", e), m))])
    out += table_lines(["defense", "eps", "BPDA", "EOT-PGD"], rows)
    out += ["", f"**Worst case per image** over every white-box, transfer and black-box attack run at that eps "
            f"(first {m} test images; the number of attacks in brackets). This, not any single column, is the "
            "robust accuracy:", ""]
    out += table_lines(["eps"] + names, [[str(e)] + [(lambda w, k: f"{fmt(w)} ({k})" if w else PENDING)(
        *cells.worst_case(d, e, m)) for d in names] for e in cells.cfg["pgd_eps"]])
    out += ["", f"**Square Attack** (black-box, {cells.cfg['square_queries']} queries per image, n={m}):", ""]
    square = [c for c in cells.all if c["attack"] == "square"]
    eps_sq = sorted({c["eps"] for c in square})
    names_sq = [d for d in names if any(c["defense"] == d for c in square)]
    out += table_lines(["eps"] + names_sq, [[str(e)] + [fmt(cells.first(d, "square", e, m, queries=cells.cfg["square_queries"]))
                                                   for d in names_sq] for e in eps_sq] or [[PENDING]])
    return out


def convergence(cells: Cells) -> list[str]:
    e, m, cfg = cells.cfg["convergence_eps"], cells.cfg["check_n"], cells.cfg
    out = [f"EOT-PGD at eps={e}, first {m} test images, 1 restart.", ""]
    steps = sorted({c["steps"] for c in cells.all if c["attack"] == "eot-pgd" and c["n"] == m} | {20, 50, 100, 200})
    out += table_lines(["steps (k={})".format(cfg["eot_samples"])] + [str(s) for s in steps],
                  [[d] + [fmt(cells.get(d, "eot-pgd", e, m, steps=s, k=cfg["eot_samples"], restarts=1))
                          for s in steps] for d in ("default", "finetuned")])
    out.append("")
    for d in ("default", "finetuned"):
        accs = [c["accuracy"] for c in (cells.get(d, "eot-pgd", e, m, steps=s, k=cfg["eot_samples"], restarts=1)
                                        for s in steps) if c]
        if len(accs) > 1:
            spread = max(accs) - min(accs)
            out.append(f"- {d}: accuracy over {len(accs)} step counts spans {spread:.1%} "
                       + ("(flat: the attack has converged in steps)." if spread <= 0.05 else
                          "(not flat: the result depends on the step size alpha = 2.5 eps / steps, so the table's "
                          "50-step number is not a converged bound for it; trust the worst case below)."))
    worst = [(d, *cells.worst_case(d, e, m)) for d in ("default", "finetuned")]
    out += ["", "Worst case over every attack run at this eps (per image: it must survive all of them):", ""]
    out += table_lines(["defense", "attacks", "accuracy"], [[d, str(k), fmt(w)] for d, w, k in worst])
    ks = sorted({c["k"] for c in cells.all if c["attack"] == "eot-pgd" and c["n"] == m} | {1, 4, 8, 16, 32})
    out += [""] + table_lines(["EOT draws k ({} steps)".format(cfg["eot_steps"])] + [str(k) for k in ks],
                         [["default"] + [fmt(cells.get("default", "eot-pgd", e, m, steps=cfg["eot_steps"], k=k,
                                                         restarts=1)) for k in ks]])
    by_k = [(k, c) for k in ks if (c := cells.get("default", "eot-pgd", e, m, steps=cfg["eot_steps"], k=k, restarts=1))]
    used = [c["accuracy"] for k, c in by_k if k >= cfg["eot_samples"]]
    if len(used) > 1:
        spread = max(used) - min(used)
        out += ["", f"- default: from k={cfg['eot_samples']} (the table's) up to k={by_k[-1][0]} accuracy spans "
                f"{spread:.1%}" + (" (flat: more draws do not strengthen the attack)." if spread <= 0.05 else
                                   " (not flat: the table's k is too small).")]
    return out


def render(results: list[dict]) -> str:
    out = ["## The full report: adaptive attacks, baselines, AutoAttack and certificates", "",
           "Generated by `python -m training robustness --dataset <d>` (re-render only: `--report-only`) from "
           "`docs/robustness/<dataset>.json`. Accuracies on the first *n* test images with Wilson 95% CIs; "
           f"{PENDING} marks a cell the (resumable) run has not reached yet. To reproduce or finish: "
           "`python -m training robustness --dataset mnist --threads 1`, then `--dataset fashion-mnist` (stages "
           "`table`, `baselines`, `checks`, `autoattack`, `recipes` in that order; cached adversarial sets and trained checkpoints under "
           "`runs/<dataset>/` are reused, so a re-run only computes what is missing).", "",
           "Threat models: **oblivious** attacks use the undefended classifier's gradient (the paper's setting); "
           "**adaptive** attacks (EOT-FGSM, EOT-PGD) differentiate through purifier and classifier, averaging the "
           "gradient over k draws of the latent noise; **BPDA** replaces the purifier's backward pass by the "
           "identity; **transfer** examples come from an independently trained surrogate; **Square** only sees "
           "output scores. Deterministic defenses (no defense, adversarial training) get k=1: for them EOT-PGD is "
           "plain PGD with a random start. A stochastic defense is evaluated with one seeded draw of its noise "
           "(as the service answers), the majority-vote candidate with a majority over several draws.", ""]
    for r in results:
        cells, cfg = Cells(r), r["config"]
        out += [f"## {r['dataset']}", "",
                f"EOT-PGD: {cfg['eot_steps']} steps, alpha = 2.5 eps / steps, random start, {cfg['restarts']} "
                f"restart(s), k={cfg['eot_samples']}; an image stops once all k draws misclassify it. Oblivious "
                f"PGD: 40 steps, alpha 0.01, no random start (the paper's). Majority vote: {cfg['votes']} draws.", "",
                f"![{r['dataset']} robustness](figures/robustness-{r['dataset']}.png)", ""]
        out += stale(r) + main_table(cells) + [""] + other_threats(cells)
        out += ["", "### Do the attacks converge?", ""] + convergence(cells)
        cand, verdicts = candidates(cells)
        out += ["", "### Improvement candidates", "", f"Rule: {RULE}. The majority vote is attacked with the default "
                "purifier's EOT examples (EOT already targets the expected prediction that a vote estimates). Not "
                "measured: training the purifier on adaptive (through-the-purifier) examples, which costs an EOT "
                "attack per training image and epoch (k x steps forward-backward passes), beyond this CPU budget.",
                ""] + cand
        out += pipelines_section(cells) + recipes_section(cells)
        out += ["", "### Verdict", ""] + verdict(cells, verdicts)
        out += ["", "### Models trained for the comparison", ""] + trained(r)
        out += ["", "### Cost", ""] + cost(r) + [""]
    return "\n".join(out)


def stale(result: dict) -> list[str]:
    """A warning when a defense's cells were measured on different models (an artifact changed mid-run)."""
    seen: dict[str, set] = {}
    for entry in list(result["cells"].values()) + [dict(v, defense=k) for k, v in result["clean"].items()]:
        if entry.get("fingerprint"):
            seen.setdefault(entry["defense"], set()).add(entry["fingerprint"])
    mixed = sorted(d for d, prints in seen.items() if len(prints) > 1)
    if not mixed:
        return []
    return [f"**Warning:** cells of {', '.join(mixed)} were measured on different model versions (the "
            "artifacts changed during the run); re-run the stages to refresh them.", ""]


def trained(result: dict) -> list[str]:
    models = result.get("training", {}).get("models", {})
    if not models:
        return [PENDING]
    rows = []
    for name, m in models.items():
        tc = m.get("train_config") or {}
        recipe = ", ".join(f"{k}={tc[k]}" for k in ("inputs", "attack", "eps", "alpha", "eps_ramp", "init", "epochs",
                                                      "lr", "seed") if tc.get(k) is not None)
        width = (m.get("config") or {}).get("width")
        metric = m.get("val_selection_metric")
        rows.append([name, str(width), recipe, str(m.get("best_epoch") or ""),
                     "" if metric is None else f"{metric:.3f} ({tc.get('selection', '')})",
                     f"{m['val_accuracy']:.3f}" if m.get("val_accuracy") is not None else "",
                     f"{m['seconds']:.0f}" if m.get("seconds") else ""])
    return table_lines(["checkpoint", "width", "recipe", "epoch kept", "validation selection metric",
                   "validation accuracy (clean)", "train seconds"], rows)


def cost(result: dict) -> list[str]:
    rows, seen = [], set()
    for c in result["cells"].values():
        attacked = "surrogate" if c["attack"] == "transfer" else c["defense"]  # one transfer set serves all
        key = (attacked, c["attack"], c["eps"], c["n"], c["steps"], c["k"])
        if c.get("attack_seconds") is None or c["defense"] == "vote" or key in seen:
            continue
        seen.add(key)
        rows.append([attacked, c["attack"], str(c["eps"]), str(c["n"]), str(c["steps"]), str(c["k"]),
                     f"{c['attack_seconds']:.0f}"])
    trained = result.get("training", {}).get("models", {})
    rows += [["(training)", name, "", "", "", "", f"{m['seconds']:.0f}" if m.get("seconds") else PENDING]
             for name, m in trained.items()]
    return ["Wall seconds on a 2-core CPU shared with other jobs, with `--threads` 1 or 2 (not recorded per cell; "
            "the runs of the last stages used 2, some paused while benchmarks ran) (attacks: summed over cached chunks; "
            "the majority vote reuses the default purifier's examples).", ""] + \
        table_lines(["defense", "attack or model", "eps", "n", "steps", "k", "seconds"], rows)


def write(docs: Path) -> None:
    """The figures, and the report's block of docs/robustness.md (the prose around it is written by hand)."""
    results = [json.loads(p.read_text()) for p in sorted((Path(docs) / "robustness").glob("*.json"))]
    for r in results:
        figures.accuracy_vs_eps(r, Path(docs) / "figures" / f"robustness-{r['dataset']}.png")
    page = Path(docs) / "robustness.md"
    text = page.read_text() if page.is_file() else "\n".join(markers(REPORT)) + "\n"
    page.write_text(splice(text, REPORT, render(results)))
