"""Render docs/robustness.md and its figures from ``docs/robustness/<dataset>.json`` (nothing else).

A cell the run has not reached yet is printed as *pending*, never estimated.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..markdown import table_lines
from . import figures
from .results import Cells

PENDING = "*pending*"
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
CANDIDATES = ("vote", "finetuned")
USEFUL = 0.10  # adaptive accuracy below this is no protection, whichever defense is "ahead"
LONGEST = 200  # steps of the longest EOT-PGD in the convergence check
RULE = ("adopted if its EOT-PGD accuracy, averaged over the table's PGD eps, is at least 1 point above the "
        "default purifier's, its purified-clean accuracy is at most 1 point below, and the gain (at least 1 point) "
        "survives in the worst case over every attack of the checks stage (an image counts only if it survives "
        f"EOT-PGD at every step count up to {LONGEST}, BPDA, transfer and Square), so that it is not gradient "
        "masking or a weak attack")


def _fmt(entry: dict | None, ci: bool = True) -> str:
    if not entry:
        return PENDING
    text = f"{entry['accuracy']:.3f}"
    return f"{text} [{entry['ci95'][0]:.3f}, {entry['ci95'][1]:.3f}]" if ci else text


def main_table(cells: Cells) -> list[str]:
    clean = cells.result["clean"]
    rows = [["clean (n={:,})".format(clean["none"]["n"]) if "none" in clean else "clean"]
            + [_fmt(clean.get(d)) for _, d, _, _ in COLUMNS]]
    for family, eps_list, idx in (("FGSM", cells.cfg["fgsm_eps"], 2), ("PGD", cells.cfg["pgd_eps"], 3)):
        for eps in eps_list:
            rows.append([f"{family} eps={eps}"] + [_fmt(cells.get(col[1], col[idx], eps)) for col in COLUMNS])
    return table_lines(["attack"] + [c[0] for c in COLUMNS], rows)


def other_threats(cells: Cells) -> list[str]:
    names = list(cells.result["defenses"])
    sur = cells.cfg["surrogate"]
    out = [f"**Transfer** (PGD-{cells.cfg['eot_steps']} with a random start, run to the end, on a surrogate trained "
           f"independently: width {sur['width']}, seed {sur['seed']}, {sur['epochs']} epochs; n={cells.cfg['n']}):", ""]
    out += table_lines(["eps"] + names, [[str(e)] + [_fmt(cells.get(d, "transfer", e, k=1)) for d in names]
                                    for e in cells.cfg["pgd_eps"]])
    m = cells.cfg["check_n"]
    out += ["", f"**BPDA + EOT** beside full EOT-PGD on the same first {m} images (same steps, draws and restart):", ""]
    rows = []
    for d in ("default", "finetuned", "paper"):
        for e in cells.cfg["pgd_eps"]:
            rows.append([d, str(e), _fmt(cells.get(d, "bpda", e, m)),
                         _fmt(cells.subset(cells.get(d, "eot-pgd", e), m))])
    out += table_lines(["defense", "eps", "BPDA", "EOT-PGD"], rows)
    out += ["", f"**Worst case per image** over every white-box, transfer and black-box attack run at that eps "
            f"(first {m} test images; the number of attacks in brackets). This, not any single column, is the "
            "robust accuracy:", ""]
    out += table_lines(["eps"] + names, [[str(e)] + [(lambda w, k: f"{_fmt(w)} ({k})" if w else PENDING)(
        *cells.worst_case(d, e, m)) for d in names] for e in cells.cfg["pgd_eps"]])
    out += ["", f"**Square Attack** (black-box, {cells.cfg['square_queries']} queries per image, n={m}):", ""]
    square = [c for c in cells.all if c["attack"] == "square"]
    eps_sq = sorted({c["eps"] for c in square})
    names_sq = [d for d in names if any(c["defense"] == d for c in square)]
    out += table_lines(["eps"] + names_sq, [[str(e)] + [_fmt(cells.get(d, "square", e, m, queries=cells.cfg["square_queries"]))
                                                   for d in names_sq] for e in eps_sq] or [[PENDING]])
    return out


def convergence(cells: Cells) -> list[str]:
    e, m, cfg = cells.cfg["convergence_eps"], cells.cfg["check_n"], cells.cfg
    out = [f"EOT-PGD at eps={e}, first {m} test images, 1 restart.", ""]
    steps = sorted({c["steps"] for c in cells.all if c["attack"] == "eot-pgd" and c["n"] == m} | {20, 50, 100, 200})
    out += table_lines(["steps (k={})".format(cfg["eot_samples"])] + [str(s) for s in steps],
                  [[d] + [_fmt(cells.get(d, "eot-pgd", e, m, steps=s, k=cfg["eot_samples"], restarts=1))
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
    out += table_lines(["defense", "attacks", "accuracy"], [[d, str(k), _fmt(w)] for d, w, k in worst])
    ks = sorted({c["k"] for c in cells.all if c["attack"] == "eot-pgd" and c["n"] == m} | {1, 4, 8, 16, 32})
    out += [""] + table_lines(["EOT draws k ({} steps)".format(cfg["eot_steps"])] + [str(k) for k in ks],
                         [["default"] + [_fmt(cells.get("default", "eot-pgd", e, m, steps=cfg["eot_steps"], k=k,
                                                         restarts=1)) for k in ks]])
    by_k = [(k, c) for k in ks if (c := cells.get("default", "eot-pgd", e, m, steps=cfg["eot_steps"], k=k, restarts=1))]
    used = [c["accuracy"] for k, c in by_k if k >= cfg["eot_samples"]]
    if len(used) > 1:
        spread = max(used) - min(used)
        out += ["", f"- default: from k={cfg['eot_samples']} (the table's) up to k={by_k[-1][0]} accuracy spans "
                f"{spread:.1%}" + (" (flat: more draws do not strengthen the attack)." if spread <= 0.05 else
                                   " (not flat: the table's k is too small).")]
    return out


def candidates(cells: Cells) -> tuple[list[str], dict]:
    clean = cells.result["clean"]
    base = clean.get("default")
    rows, verdicts = [], {}
    for c in CANDIDATES:
        adaptive = [(cells.get(c, "eot-pgd", e), cells.get("default", "eot-pgd", e)) for e in cells.cfg["pgd_eps"]]
        if c not in clean or not base or any(a is None or b is None for a, b in adaptive):
            rows.append([cells.result["defenses"].get(c, c), _fmt(clean.get(c)), PENDING, PENDING, PENDING])
            continue
        d_clean = clean[c]["accuracy"] - base["accuracy"]
        d_adv = sum(a["accuracy"] - b["accuracy"] for a, b in adaptive) / len(adaptive)
        has_longest = all(cells.get(d, "eot-pgd", cells.cfg["convergence_eps"], cells.cfg["check_n"], steps=LONGEST,
                                    k=cells.cfg["eot_samples"], restarts=1) for d in (c, "default"))
        strong = [cells.worst_case(d, cells.cfg["convergence_eps"], cells.cfg["check_n"])[0] for d in (c, "default")]
        d_strong = strong[0]["accuracy"] - strong[1]["accuracy"] if has_longest and all(strong) else None
        passed = d_adv >= 0.01 and d_clean >= -0.01
        if passed and d_strong is None:
            status = f"{PENDING} (passes the table; the worst-case check is not run yet)"
        else:
            verdicts[c] = passed and d_strong >= 0.01
            status = "adopted" if verdicts[c] else "rejected"
        rows.append([cells.result["defenses"][c], _fmt(clean[c]), f"{d_clean:+.3f}", f"{d_adv:+.3f}",
                     f"{d_strong:+.3f}" if d_strong is not None else PENDING if passed else "not run (fails the table)",
                     status])
    out = table_lines(["candidate", "purified-clean accuracy", "clean change vs default", "mean EOT-PGD change",
                  f"worst-case change (eps={cells.cfg['convergence_eps']}, n={cells.cfg['check_n']})",
                  "verdict"], rows)
    det = cells.result.get("detector", {}).get("default")
    if det and det["auc"]:
        out += ["", f"**Reconstruction-error detector** (ROC AUC, clean vs EOT-PGD examples, n={det['n']} each; "
                "the attack did not try to keep the error low, so this is an upper bound):", ""]
        out += table_lines(["eps"] + list(det["auc"]), [["AUC"] + [f"{v:.3f}" for v in det["auc"].values()]])
    return out, verdicts


def verdict(cells: Cells, verdicts: dict) -> list[str]:
    """Plain-language statements, each computed from the cells it cites."""
    out, clean = [], cells.result["clean"]
    for e in cells.cfg["pgd_eps"]:
        obl, ada = cells.get("default", "pgd", e), cells.get("default", "eot-pgd", e)
        at, none = cells.get("adv-training", "eot-pgd", e), cells.get("none", "eot-pgd", e)
        if not (obl and ada):
            out.append(f"- eps={e}: {PENDING}.")
            continue
        text = (f"- eps={e}: the shipped purifier keeps {obl['accuracy']:.1%} against the paper's oblivious PGD "
                f"but {ada['accuracy']:.1%} when the attacker differentiates through it (EOT-PGD)")
        if none:
            text += f"; the undefended classifier keeps {none['accuracy']:.1%}"
        if at:
            side = "above" if ada["ci95"][0] > at["ci95"][1] else "below" if ada["ci95"][1] < at["ci95"][0] else \
                "not separable from"
            text += (f"; FGSM-RS adversarial training keeps {at['accuracy']:.1%} under white-box PGD, so the "
                     f"purifier is {side} the baseline (95% CIs)")
        out.append(text + ".")
    sides = {}
    for e in cells.cfg["pgd_eps"]:
        ada, at = cells.get("default", "eot-pgd", e), cells.get("adv-training", "eot-pgd", e)
        if ada and at:
            sides[e] = "above" if ada["ci95"][0] > at["ci95"][1] else "below" if ada["ci95"][1] < at["ci95"][0] \
                else "level with"
    if sides and "default" in clean and "adv-training" in clean:
        cheaper = clean["default"]["accuracy"] > clean["adv-training"]["accuracy"]
        wins = [str(e) for e, side in sides.items() if side == "above"]
        # a win at accuracies this low protects nobody: say so rather than count it
        hollow = [str(e) for e, side in sides.items()
                  if side == "above" and cells.get("default", "eot-pgd", e)["accuracy"] < USEFUL]
        out.append("- **Worth offering over adversarial training?** Under white-box attack the purifier is "
                   + ", ".join(f"{side} it at eps={e}" for e, side in sides.items())
                   + f"; on clean images it costs {'less' if cheaper else 'more'} accuracy than adversarial training. "
                   + ("It wins at eps=" + ", ".join(wins) + "." if wins else
                      "It wins nowhere under white-box attack" + (", only on clean accuracy." if cheaper else "."))
                   + (f" At eps={', '.join(hollow)} both keep under {USEFUL:.0%}: neither protects there, so the "
                      "win is of no use." if hollow else ""))
    if "default" in clean and "adv-training" in clean:
        out.append(f"- Clean accuracy: purified {clean['default']['accuracy']:.1%}, adversarially trained "
                   f"{clean['adv-training']['accuracy']:.1%}, undefended {clean['none']['accuracy']:.1%}.")
    for d in ("paper", "default"):
        above = [c for c in cells.all if c["defense"] == d and c["attack"] in ("fgsm", "pgd") and d in clean
                 and c["ci95"][0] > clean[d]["accuracy"]]
        if above:
            worst = max(above, key=lambda c: c["accuracy"])
            out.append(f"- The {cells.result['defenses'][d]} is *more* accurate on {len(above)} oblivious adversarial "
                       f"sets than on clean images (e.g. {worst['attack'].upper()} eps={worst['eps']}: "
                       f"{worst['accuracy']:.1%} vs clean {clean[d]['accuracy']:.1%}): most likely it has learned to read the "
                       "attack's own perturbation, which depends on the true label (label leaking, Kurakin et al. 2017), "
                       "so its oblivious numbers overstate it.")
    for attack, what in (("transfer", "transfer examples from an independently trained model"),
                         ("square", f"Square Attack ({cells.cfg['square_queries']} queries, n={cells.cfg['check_n']})")):
        def other(d, e, c):
            return cells.get(d, attack, e, c["n"]) if attack == "square" else cells.get(d, attack, e, k=1)
        rows = sorted((c["eps"], c, other("none", c["eps"], c), other("adv-training", c["eps"], c))
                      for c in cells.all if c["defense"] == "default" and c["attack"] == attack)
        if rows:
            def others(u, a):
                text = "; ".join(f"{name}: {o['accuracy']:.1%}" for name, o in
                                 (("no defense", u), ("adversarial training", a)) if o)
                return f" ({text})" if text else ""
            out.append(f"- Against {what}, the shipped purifier keeps " + ", ".join(
                f"{c['accuracy']:.1%} at eps={e}{others(u, a)}" for e, c, u, a in rows) + ".")
    status = {c: ("adopted" if verdicts[c] else "rejected") if c in verdicts else PENDING for c in CANDIDATES}
    out.append("- Improvement candidates: " + "; ".join(f"{cells.result['defenses'].get(c, c)}: {v}"
                                                         for c, v in status.items()) + f" (rule: {RULE}).")
    return out


def render(results: list[dict]) -> str:
    out = ["# Robustness: adaptive attacks, a baseline, and an improvement", "",
           "Generated by `python -m training robustness --dataset <d>` (re-render only: `--report-only`) from "
           "`docs/robustness/<dataset>.json`. Accuracies on the first *n* test images with Wilson 95% CIs; "
           f"{PENDING} marks a cell the (resumable) run has not reached yet. To reproduce or finish: "
           "`python -m training robustness --dataset mnist --threads 1`, then `--dataset fashion-mnist` (stages "
           "`table`, `baselines`, `checks` in that order; cached adversarial sets and trained checkpoints under "
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
    results = [json.loads(p.read_text()) for p in sorted((Path(docs) / "robustness").glob("*.json"))]
    for r in results:
        figures.accuracy_vs_eps(r, Path(docs) / "figures" / f"robustness-{r['dataset']}.png")
    (Path(docs) / "robustness.md").write_text(render(results))
