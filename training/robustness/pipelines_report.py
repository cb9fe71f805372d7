"""The served pipelines' section of docs/robustness.md: AutoAttack and the worst case per image over every attack,
beside the published MNIST results."""

from __future__ import annotations

from ..markdown import table_lines
from .results import PENDING, Cells, fmt, minutes

# MNIST, l-inf eps 0.3, clean / AutoAttack accuracy (%): the AutoAttack README and the MadryLab mnist_challenge
# leaderboard, as Croce & Hein (2020) report them.
LITERATURE = [
    ("FGSM-RS, Wong, Rice & Kolter 2020 (10 epochs, alpha 0.375)", 98.50, 82.93),
    ("PGD-AT, Madry et al. 2018 (PGD-40, step 0.01, ~83 epochs)", 98.53, 88.50),
    ("TRADES, Zhang et al. 2019 (beta 1, 100 epochs)", 99.48, 92.81),
    ("Gowal et al. 2020", 99.26, 96.34),
]
# MNIST, l-inf eps 0.3, certified training (trained at eps 0.4): clean / AutoAttack / IBP-or-CROWN-certified (%),
# from deepmind/interval-bound-propagation's and huanzhang12/CROWN-IBP's READMEs.
CERTIFIED_LITERATURE = [
    ("IBP, Gowal et al. 2018 (large CNN)", 98.34, 92.83, 91.79),
    ("CROWN-IBP, Zhang et al. 2020 (DM-large)", 98.38, 93.96, 93.32),
]


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


def pipelines_section(cells: Cells) -> list[str]:
    """Empty until the autoattack stage has run."""
    cfg = cells.cfg
    if "autoattack_eps" not in cfg:
        return []
    eps = cfg["autoattack_eps"]
    defenses = list(dict.fromkeys(c["defense"] for c in cells.all if c["attack"] == "autoattack"))
    rows = [row for d in defenses if (row := _row(cells, d, eps))]
    if not rows:
        return []
    out = ["", "### AutoAttack and the served pipelines", "",
           f"The reference AutoAttack (Croce & Hein 2020, `pyautoattack`) at eps={eps} on the first n test images: "
           "version `standard` (APGD-CE, APGD-T, FAB-T, Square 5000) on deterministic defenses, `rand` (APGD-CE and "
           "APGD-DLR with EOT over 20 draws) on those with latent noise. The worst case counts an image only if it "
           "survives AutoAttack and every other attack run on it at this eps (EOT-PGD, BPDA, transfer, Square; "
           "their number in brackets). Certified accuracy is proved by interval bounds (IBP) on every test image, "
           "for the pipelines whose classifier carries them; no attack can lower it.", ""]
    out += table_lines(["defense", "clean", "n", f"AutoAttack eps={eps}", "worst case over all attacks",
                        "certified"], rows)
    out += _recipes(cells.result.get("pipelines", {}))
    if cells.result["dataset"] == "mnist" and abs(eps - 0.3) < 1e-9:
        out += ["", "Published MNIST results at the same eps, for comparison (clean / AutoAttack, %):", ""]
        out += table_lines(["model", "clean", "AutoAttack"], [[m, f"{c:.2f}", f"{a:.2f}"] for m, c, a in LITERATURE])
        out += ["", "Published certified training at the same eps (clean / AutoAttack / certified, %):", ""]
        out += table_lines(["model", "clean", "AutoAttack", "certified"],
                           [[m, f"{c:.2f}", f"{a:.2f}", f"{v:.2f}"] for m, c, a, v in CERTIFIED_LITERATURE])
    return out


def _recipes(pipelines: dict) -> list[str]:
    """How each adversarially trained pipeline classifier was trained, and what it cost; the study models (no
    longer served) with the command that retrains each."""
    rows, study = [], []
    for name, p in pipelines.items():
        tc = p.get("training") or {}
        if tc.get("method") == "IBP":
            keys = ("method", "train_eps", "width", "epochs", "clean_epochs", "ramp_epochs", "kappa_end",
                    "reg_lambda", "lr", "batch_size", "precision")
        elif tc.get("attack"):
            keys = ("attack", "eps", "steps", "alpha", *(("beta",) if tc.get("inputs") == "trades" else ()),
                    "eps_ramp", "epochs", "lr", "batch_size", "width", "purifier")
        else:
            continue
        if tc.get("joint"):  # the purifier trained with it
            keys += ("joint", "latent_dim", "noise_std", "recon_weight")
        recipe = ", ".join(f"{k}={tc[k]}" for k in keys if tc.get(k) is not None)
        seconds = p.get("train_seconds")
        served = p.get("served", True)
        label = " (default)" if p.get("default") else "" if served else " (study model)"
        rows.append([name + label, recipe, tc.get("selection", ""), minutes(seconds)])
        if not served and tc.get("attack"):
            study.append(f"- `{name}`: `{retrain_command(tc)}`")
    if not rows:
        return []
    out = ["", "Training of the trained pipelines (adversarial: Adam, one-cycle learning rate; IBP: Adam, step "
           "decay; wall time on the 2-core CPU that trained them):", ""]
    out += table_lines(["pipeline", "recipe", "epoch kept by", "train time"], rows)
    if study:
        out += ["", "Study models are measured here but no longer served; each is retrained, then added to the "
                "artifacts with `python -m training export --add NAME=CHECKPOINT`, by:", "", *study]
    return out


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
