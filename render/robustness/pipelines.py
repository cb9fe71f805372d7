"""The served pipelines' tables of docs/robustness.md: AutoAttack and the worst case per image over every attack,
how each was trained, and the commands that retrain the study models."""

from __future__ import annotations

from render.markdown import PENDING, fmt, minutes, table_lines
from training.robustness.results import Cells


def _row(cells: Cells, defense: str, eps: float) -> list[str] | None:
    n = cells.autoattack_n(defense, eps)
    autoattack = cells.get(defense, "autoattack", eps, n) if n else None
    if autoattack is None:
        return None
    worst, attacks = cells.worst_case(defense, eps, n)
    version = "rand" if autoattack["k"] > 1 else "standard"
    certified = cells.result.get("certified", {}).get(defense)
    return [cells.result["defenses"].get(defense, defense), fmt(cells.result["clean"].get(defense)), str(n),
            f"{fmt(autoattack)} ({version})", f"{fmt(worst)} ({attacks})" if worst else PENDING,
            f"{fmt(certified)} (n={certified['n']:,})" if certified else "–"]


def autoattack_table(cells: Cells) -> list[str]:
    """Each pipeline under AutoAttack at the dataset's eps, its worst case over every attack, and its certified
    accuracy; pending until the autoattack stage has run."""
    eps = cells.cfg.get("autoattack_eps")
    defenses = list(dict.fromkeys(c["defense"] for c in cells.all if c["attack"] == "autoattack"))
    rows = [row for d in defenses if eps is not None and (row := _row(cells, d, eps))]
    if not rows:
        return [PENDING]
    return table_lines(["defense", "clean", "n", f"AutoAttack eps={eps}", "worst case over all attacks", "certified"],
                       rows)


def training_table(pipelines: dict) -> list[str]:
    """How each trained pipeline's classifier was trained, what it cost, and whether it is still served."""
    rows = []
    for name, p in pipelines.items():
        tc = p.get("training") or {}
        if tc.get("method") == "IBP":
            keys = ("method", "train_eps", "width", "epochs", "clean_epochs", "ramp_epochs", "kappa_end",
                    "robust_weight", "l1", "pop_bn_stats", "reg_lambda", "lr", "batch_size", "precision")
        elif tc.get("attack"):
            keys = ("attack", "eps", "steps", "alpha", *(("beta",) if tc.get("inputs") == "trades" else ()),
                    "eps_ramp", "epochs", "lr", "batch_size", "width", "purifier")
        else:
            continue
        if tc.get("joint"):  # the purifier trained with it
            keys += ("joint", "latent_dim", "noise_std", "recon_weight")
        recipe = ", ".join(f"{k}={tc[k]}" for k in keys if tc.get(k) is not None)
        label = " (default)" if p.get("default") else "" if p.get("served", True) else " (study model)"
        rows.append([name + label, recipe, tc.get("selection", ""), minutes(p.get("train_seconds"))])
    return table_lines(["pipeline", "recipe", "epoch kept by", "train time"], rows) if rows else [PENDING]


def study_commands(pipelines: dict) -> list[str]:
    """The command that retrains each study model (measured, no longer served)."""
    return [f"- `{name}`: `{retrain_command(p['training'])}`" for name, p in pipelines.items()
            if not p.get("served", True) and (p.get("training") or {}).get("attack")]


# the options of train-adversarial that make a recipe, in the order a command gives them
RETRAIN_OPTIONS = ("inputs", "eps", "steps", "beta", "eps_ramp", "purifier", "width", "epochs", "batch_size", "lr",
                   "seed", "out")


def retrain_command(training: dict) -> str:
    """The ``train-adversarial`` command line that retrains a recorded training config."""
    args = [f"--{k.replace('_', '-')} {training[k]}" for k in RETRAIN_OPTIONS
            if training.get(k) is not None and not (k == "beta" and training.get("inputs") != "trades")]
    if training.get("selection", "").startswith("val APGD"):
        args.append("--select-by apgd")
    return " ".join(["python -m training train-adversarial --dataset", training["dataset"], *args])
