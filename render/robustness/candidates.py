"""The improvement candidates' table: each candidate against the default purifier, by the rule in
docs/robustness.md (adopted only if its gain survives the worst case over every attack of the checks stage)."""

from __future__ import annotations

from render.markdown import PENDING, fmt, table_lines
from training.robustness.results import Cells

CANDIDATES = ("vote", "finetuned")
LONGEST = 200  # steps of the longest EOT-PGD in the convergence check


def candidates(cells: Cells) -> list[str]:
    clean = cells.result["clean"]
    base = clean.get("default")
    rows = []
    for c in CANDIDATES:
        adaptive = [(cells.get(c, "eot-pgd", e), cells.get("default", "eot-pgd", e)) for e in cells.cfg["pgd_eps"]]
        if c not in clean or not base or any(a is None or b is None for a, b in adaptive):
            rows.append([cells.result["defenses"].get(c, c), fmt(clean.get(c)), PENDING, PENDING, PENDING])
            continue
        d_clean = clean[c]["accuracy"] - base["accuracy"]
        d_adv = sum(a["accuracy"] - b["accuracy"] for a, b in adaptive) / len(adaptive)
        eps, n = cells.cfg["convergence_eps"], cells.cfg["check_n"]
        has_longest = all(cells.get(d, "eot-pgd", eps, n, steps=LONGEST, k=cells.cfg["eot_samples"], restarts=1)
                          for d in (c, "default"))
        # over the kinds of attack both faced: a candidate is not credited for an attack only the default faced
        shared = cells.attacks_run(c, eps, n) & cells.attacks_run("default", eps, n)
        strong = [cells.worst_case(d, eps, n, attacks=shared)[0] for d in (c, "default")]
        d_strong = strong[0]["accuracy"] - strong[1]["accuracy"] if has_longest and all(strong) else None
        passed = d_adv >= 0.01 and d_clean >= -0.01
        if passed and d_strong is None:
            status = f"{PENDING} (passes the table; the worst-case check is not run yet)"
        else:
            status = "adopted" if passed and d_strong >= 0.01 else "rejected"
        rows.append([cells.result["defenses"][c], fmt(clean[c]), f"{d_clean:+.3f}", f"{d_adv:+.3f}",
                     f"{d_strong:+.3f}" if d_strong is not None else PENDING if passed else "not run (fails the table)",
                     status])
    out = table_lines(["candidate", "purified-clean accuracy", "clean change vs default", "mean EOT-PGD change",
                  f"worst-case change (eps={cells.cfg['convergence_eps']}, n={cells.cfg['check_n']})",
                  "verdict"], rows)
    return out


def detector(cells: Cells) -> list[str]:
    """ROC AUC of the default purifier's reconstruction error, clean against EOT-PGD examples, per eps."""
    det = cells.result.get("detector", {}).get("default")
    if not (det and det["auc"]):
        return [PENDING]
    return table_lines(["eps"] + list(det["auc"]), [[f"AUC (n={det['n']} each)"] + [f"{v:.3f}" for v in det["auc"].values()]])
