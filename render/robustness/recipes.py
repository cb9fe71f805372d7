"""The recipe study's tables of docs/robustness.md: a pipeline's classifier beside its variants, each retrained
with one part of the recipe changed, under the same attacks on the same images."""

from __future__ import annotations

import math

from render.markdown import fmt, minutes, table_lines
from training.robustness.recipes import options
from training.robustness.results import Cells
from training.stats import paired_difference


def _change(change: dict, recipe: dict) -> str:
    return ", ".join(f"{k} {recipe.get(k)} -> {v}" for k, v in change.items())


def _apart(model: str, other: str, variants: dict, recipe: dict) -> dict:
    """{option: (other's value, model's value)} for each option the two recipes set differently."""
    def full(name: str) -> dict:
        return {**recipe, **variants.get(name, {}).get("change", {})}

    mine, theirs = full(model), full(other)
    changed = set().union(*(v["change"] for v in variants.values()))
    return {k: (theirs.get(k), mine.get(k)) for k in sorted(changed) if theirs.get(k) != mine.get(k)}


def _distance(apart: dict) -> tuple[int, float]:
    """How far two recipes are: the options they set differently, then how far apart their values are (as a ratio,
    so 12 epochs is nearer 6 than 3; a value with no ratio, such as an unset option or a method, is furthest)."""
    def ratio(a, b) -> float:
        numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in (a, b))
        return abs(math.log(a / b)) if numbers else math.inf
    return len(apart), sum(ratio(a, b) for a, b in apart.values())


def _baseline(name: str, variants: dict, recipe: dict) -> str:
    """What a variant is compared with: of the base pipeline and the variants listed before this one, the one whose
    recipe is fewest options away from its own, then nearest in value (on a tie, the one listed last). So a
    variant that adds a change to another, or sets one of its options to another value, isolates that one
    difference, against the nearest setting of it."""
    names = list(variants)
    earlier = [variants[name]["base"], *names[:names.index(name)]]
    return min(reversed(earlier), key=lambda other: _distance(_apart(name, other, variants, recipe)))


def _delta(apgd: dict | None, against: dict | None) -> str:
    """The paired difference in APGD accuracy from ``against`` with its 95% CI; empty while either cell is
    missing."""
    if not (apgd and against):
        return ""
    d, lo, hi = paired_difference(apgd["hits"], against["hits"])
    return f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def replicates(pipelines: dict, variants: dict) -> dict[str, str]:
    """{served pipeline: variant} for each pipeline trained again, in a run of its own, with a variant's recipe."""
    out = {}
    for name, pipeline in pipelines.items():
        training = pipeline.get("training") or {}
        for variant, v in variants.items():
            if training.get("out") != f"{variant}.ckpt" and options(training) == options(v.get("train_config") or {}):
                out[name] = variant
    return out


def recipe_tables(cells: Cells) -> list[str]:
    """Per studied pipeline, its classifier beside each variant: the change, what it cost, clean, PGD and APGD
    accuracy, and the paired APGD delta from the model it is compared with, naming the one difference isolated.
    Empty until the recipes stage has run."""
    variants = cells.result.get("recipes", {})
    bases = [b for b in dict.fromkeys(v["base"] for v in variants.values()) if b in cells.result.get("pipelines", {})]
    if not bases:
        return []
    eps, n, steps = cells.cfg["autoattack_eps"], cells.cfg["n"], cells.cfg["eot_steps"]
    out: list[str] = []
    for base in bases:
        out += _base_table(cells, base, {k: v for k, v in variants.items() if v["base"] == base}, eps, n, steps)
    return out


def _base_table(cells: Cells, base: str, variants: dict, eps: float, n: int, steps: int) -> list[str]:
    pipeline = cells.result["pipelines"][base]
    recipe = options(pipeline.get("training") or {})
    rows = []
    for name, v in [(base, None), *variants.items()]:
        apgd, pgd = cells.get(name, "apgd", eps, n, k=1), cells.get(name, "eot-pgd", eps, n, steps=steps, k=1)
        baseline = _baseline(name, variants, recipe) if v else ""
        delta = _delta(apgd, cells.get(baseline, "apgd", eps, n, k=1) if v else None)
        isolated = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in _apart(name, baseline, variants, recipe).items()) \
            if v else ""
        history = ", ".join(f"{h:.3f}" for h in v["history"]) if v and v.get("history") else ""
        kept = f" (kept {v['best_epoch']})" if v else ""
        label = f"{name} (default)" if v is None and pipeline.get("default") else name
        rows.append([label, _change(v["change"], recipe) if v else "shipped recipe",
                     minutes(v["train_seconds"] if v else pipeline.get("train_seconds")), history + kept if history else "",
                     fmt(cells.result["clean"].get(name)), fmt(pgd), fmt(apgd), baseline, isolated, delta])
    for name, variant in replicates(cells.result.get("pipelines", {}), variants).items():
        apgd = cells.get(name, "apgd", eps, n, k=1)
        rows.append([name, f"{variant}'s recipe, trained again", minutes(cells.result["pipelines"][name].get(
            "train_seconds")), "", fmt(cells.result["clean"].get(name)),
            fmt(cells.get(name, "eot-pgd", eps, n, steps=steps, k=1)), fmt(apgd), variant, "another run",
            _delta(apgd, cells.get(variant, "apgd", eps, n, k=1))])
    return ["", *table_lines(["model", "change", "train time", "val accuracy by epoch", "clean", f"PGD-{steps}",
                              "APGD-CE + APGD-DLR", "compared with", "difference", "delta APGD"], rows)]
