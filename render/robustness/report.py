"""The tables and figures of the robustness report, from ``docs/robustness/<dataset>.json`` (nothing else): each
dataset's on its own page, ``docs/robustness/<dataset>.md``, the certified-training runs on docs/robustness.md.

Each table is a marked block of a page, ``robustness-<dataset>-<table>``; the prose around them is written by
hand, and a re-render replaces only the blocks. A cell the run has not reached yet is *pending*, never estimated.
"""

from __future__ import annotations

import json
from pathlib import Path

from render.markdown import PENDING, fmt, minutes, place, table, table_lines
from . import figures
from .candidates import candidates, detector
from .pipelines import autoattack_table, study_commands, training_table
from .recipes import recipe_tables
from training.robustness.results import Cells

PAGE = "robustness.md"
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


def transfer(cells: Cells) -> list[str]:
    names = list(cells.result["defenses"])
    return table_lines(["eps"] + names, [[str(e)] + [fmt(cells.get(d, "transfer", e, k=1)) for d in names]
                                         for e in cells.cfg["pgd_eps"]])


def bpda(cells: Cells) -> list[str]:
    m = cells.cfg["check_n"]
    rows = [[d, str(e), fmt(cells.get(d, "bpda", e, m)), fmt(cells.subset(cells.get(d, "eot-pgd", e), m))]
            for d in ("default", "finetuned", "paper") for e in cells.cfg["pgd_eps"]]
    return table_lines(["defense", "eps", f"BPDA (n={m})", "EOT-PGD, same images"], rows)


def worst_case(cells: Cells) -> list[str]:
    names, m = list(cells.result["defenses"]), cells.cfg["check_n"]
    def cell(w, k):
        return f"{fmt(w)} ({k})" if w else PENDING
    return table_lines([f"eps (n={m}; attacks)"] + names,
                       [[str(e)] + [cell(*cells.worst_case(d, e, m)) for d in names] for e in cells.cfg["pgd_eps"]])


def square(cells: Cells) -> list[str]:
    names, m, queries = list(cells.result["defenses"]), cells.cfg["check_n"], cells.cfg["square_queries"]
    runs = [c for c in cells.all if c["attack"] == "square"]
    eps = sorted({c["eps"] for c in runs})
    names = [d for d in names if any(c["defense"] == d for c in runs)]
    return table_lines([f"eps ({queries} queries, n={m})"] + names,
                       [[str(e)] + [fmt(cells.first(d, "square", e, m, queries=queries)) for d in names]
                        for e in eps] or [[PENDING]])


def _spread(cells_: list) -> str:
    accs = [c["accuracy"] for c in cells_ if c]
    return f"{max(accs) - min(accs):.1%}" if len(accs) > 1 else PENDING


def steps(cells: Cells) -> list[str]:
    """EOT-PGD at the convergence eps against its number of steps, and the spread over them."""
    e, m, k = cells.cfg["convergence_eps"], cells.cfg["check_n"], cells.cfg["eot_samples"]
    counts = sorted({c["steps"] for c in cells.all if c["attack"] == "eot-pgd" and c["n"] == m} | {20, 50, 100, 200})
    rows = []
    for d in ("default", "finetuned"):
        row = [cells.get(d, "eot-pgd", e, m, steps=s, k=k, restarts=1) for s in counts]
        rows.append([d] + [fmt(c) for c in row] + [_spread(row)])
    return table_lines([f"eps={e}, n={m}, k={k}: steps"] + [str(s) for s in counts] + ["spread"], rows)


def draws(cells: Cells) -> list[str]:
    """EOT-PGD at the convergence eps against the EOT draws k, and the spread from the table's k up."""
    e, m, cfg = cells.cfg["convergence_eps"], cells.cfg["check_n"], cells.cfg
    ks = sorted({c["k"] for c in cells.all if c["attack"] == "eot-pgd" and c["n"] == m} | {1, 4, 8, 16, 32})
    row = [cells.get("default", "eot-pgd", e, m, steps=cfg["eot_steps"], k=k, restarts=1) for k in ks]
    used = [c for k, c in zip(ks, row, strict=True) if k >= cfg["eot_samples"]]
    return table_lines([f"eps={e}, n={m}, {cfg['eot_steps']} steps: k"] + [str(k) for k in ks]
                       + [f"spread from k={cfg['eot_samples']}"], [["default"] + [fmt(c) for c in row] + [_spread(used)]])


def convergence_worst(cells: Cells) -> list[str]:
    e, m = cells.cfg["convergence_eps"], cells.cfg["check_n"]
    worst = [(d, *cells.worst_case(d, e, m)) for d in ("default", "finetuned")]
    return table_lines([f"defense (eps={e}, n={m})", "attacks", "accuracy"], [[d, str(k), fmt(w)] for d, w, k in worst])


def blocks(results: list[dict], runs: dict[str, dict] | None = None) -> dict[str, str]:
    """{block name: markdown} of every table of the page, per dataset; ``runs``: the certified-training runs
    of each dataset (``load``)."""
    out = {f"certified-runs-{dataset}": certified_runs(by_name) for dataset, by_name in (runs or {}).items()}
    for r in results:
        cells = Cells(r)
        tables = {
            "attacks": stale(r) + main_table(cells), "transfer": transfer(cells), "bpda": bpda(cells),
            "worst-case": worst_case(cells), "square": square(cells), "steps": steps(cells), "draws": draws(cells),
            "convergence-worst-case": convergence_worst(cells), "candidates": candidates(cells),
            "detector": detector(cells), "autoattack": autoattack_table(cells),
            "training": training_table(r.get("pipelines", {})),
            "study-models": study_commands(r.get("pipelines", {})) or ["None."],
            "recipes": recipe_tables(cells) or [PENDING], "trained": trained(r), "cost": cost(r),
        }
        out |= {f"robustness-{r['dataset']}-{name}": "\n".join(lines).strip("\n") for name, lines in tables.items()}
    return out


def routed(results: list[dict], runs: dict[str, dict] | None = None) -> dict[str, dict[str, str]]:
    """{page, relative to docs/: {block name: markdown}}: each dataset's tables on its own report page
    (``robustness/<dataset>.md``), the certified-training runs on ``robustness.md``."""
    out: dict[str, dict[str, str]] = {PAGE: {}}
    for name, block in blocks(results, runs).items():
        page = next((f"robustness/{r['dataset']}.md" for r in results if name.startswith(f"robustness-{r['dataset']}-")),
                    PAGE)
        out.setdefault(page, {})[name] = block
    return out


def load(docs: Path) -> tuple[list[dict], dict[str, dict]]:
    """Each dataset's results (``robustness/<dataset>.json``) and certified-training runs
    (``robustness/certified-runs/<dataset>.json``)."""
    folder = Path(docs) / "robustness"
    results = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    runs = {p.stem: json.loads(p.read_text()) for p in sorted((folder / "certified-runs").glob("*.json"))}
    return results, runs


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
    return table_lines(["defense", "attack or model", "eps", "n", "steps", "k", "wall seconds"], rows)


def recipe_of(recipe: dict) -> str:
    """A certified run's loss recipe in a few words; an option the run predates is read as it then ran (no L1,
    batch statistics, the clean mix as a schedule of kappa)."""
    mix = (f"κ→{recipe['kappa_end']}" if recipe.get("kappa_end") is not None
           else f"robust {recipe['robust_weight']}" + (" ramped" if recipe.get("robust_ramp") else ""))
    parts = [f"train ε {recipe['train_eps']}", mix, f"ramp {recipe['ramp_epochs']}",
             f"L1 {recipe['l1']:g}" if recipe.get("l1") else "no L1",
             "population BN" if recipe.get("pop_bn_stats") else "batch BN"]
    if not recipe.get("reg_lambda"):
        parts.append("no warm-up regularizers")
    if recipe.get("limit"):
        parts.append(f"{recipe['limit']:,} images")
    return ", ".join(parts)


CHECKPOINT_EPOCHS = (9, 12)  # where the certified runs are compared epoch for epoch, mid-ramp and after it


def certified_runs(runs: dict) -> str:
    """Certified-training runs side by side (``python -m training certified-runs``): the hardware each trained on
    (the CPU's model, with "AMX" where it has AMX-BF16; "–" for runs from before it was recorded), recipe, progress,
    and the validation IBP-certified accuracy at the same epochs, then at the best epoch with its clean accuracy."""
    rows = []
    for name, r in runs.items():
        history, recipe = r["history"], r["recipe"]
        best = max(range(len(history)), key=lambda i: history[i]["certified"])
        at = [f"{100 * history[e - 1]['certified']:.1f}%" if len(history) >= e else "–" for e in CHECKPOINT_EPOCHS]
        machines = "; ".join(dict.fromkeys(h["machine"] for h in history if h.get("machine"))) or "–"
        rows.append([f"`{name}`", machines, recipe["precision"], str(recipe["width"]), recipe_of(recipe),
                     f"{recipe['input_side']}×{recipe['input_side']}", f"{recipe['side']}×{recipe['side']}",
                     f"{r['epochs_run']} of {recipe['epochs']}" + ("" if r["complete"] else " (unfinished)"),
                     minutes(r["train_seconds"]), *at, f"{100 * history[best]['certified']:.1f}% (epoch {best + 1})",
                     f"{100 * history[best]['clean']:.1f}%"])
    return table(["run", "hardware", "precision", "width", "recipe", "input", "working input", "epochs", "training",
                  *(f"certified, epoch {e}" for e in CHECKPOINT_EPOCHS), "best certified", "clean there"], rows)


def write(docs: Path) -> None:
    """The figures, and the tables of docs/robustness.md and of each dataset's report page (one a page does not
    place yet is appended)."""
    results, runs = load(docs)
    for r in results:
        figures.accuracy_vs_eps(r, Path(docs) / "figures" / f"robustness-{r['dataset']}.png")
    for name, tables in routed(results, runs).items():
        page = Path(docs) / name
        page.write_text(place(page.read_text() if page.is_file() else "", tables))
