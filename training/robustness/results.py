"""Stored cells of the robustness study: the results file it writes, and the lookup (with per-image worst
cases) that the report reads."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from ..stats import wilson
from .threats import Threat

# the attacks an image must all survive to count in a defense's worst case
WORST_CASE_ATTACKS = ("eot-pgd", "bpda", "transfer", "square", "autoattack", "apgd")


class Results:
    """``<docs>/robustness/<dataset>.json``, rewritten after every update (a partial run leaves a valid file)."""

    def __init__(self, path: Path, dataset: str, config: dict) -> None:
        self.path = Path(path)
        old = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.data = {"dataset": dataset, "config": config, "defenses": old.get("defenses", {}),
                     "clean": old.get("clean", {}), "cells": old.get("cells", {}), "detector": old.get("detector", {}),
                     "training": old.get("training", {}), "pipelines": old.get("pipelines", {}),
                     "recipes": old.get("recipes", {}), "certified": old.get("certified", {})}
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=1) + "\n")

    def defenses(self, labels: dict[str, str]) -> None:
        self.data["defenses"].update(labels)
        self.save()

    def put(self, section: str, key: str, value) -> None:
        self.data[section][key] = value
        self.save()

    def forget_other_models(self, defense: str, fingerprint: str) -> None:
        """Drop the cells of ``defense`` measured on another model (one since retrained): they are not its figures,
        and an attack the new model is not put to (another input shape) must not count in its worst case."""
        stale = [key for key, c in self.data["cells"].items()
                 if c["defense"] == defense and c["fingerprint"] != fingerprint]
        for key in stale:
            del self.data["cells"][key]
        if stale:
            self.save()

    def cell(self, defense: str, threat: Threat, result: dict) -> None:
        self.put("cells", f"{defense}|{threat.key()}|n{result['n']}", {"defense": defense, **asdict(threat), **result})


class Cells:
    """Lookup of one dataset's cells by (defense, attack, eps, n, and optional steps/k)."""

    def __init__(self, result: dict) -> None:
        self.result, self.cfg = result, result["config"]
        self.all = list(result["cells"].values())

    def get(self, defense: str, attack: str, eps: float, n: int | None = None, **match) -> dict | None:
        n = n or self.cfg["n"]
        if attack in ("eot-pgd", "bpda"):
            match = {"steps": self.cfg["eot_steps"], "restarts": self.cfg["restarts"], **match}
        if attack in ("eot-pgd", "eot-fgsm", "bpda") and defense not in ("none", "adv-training"):
            match = {"k": self.cfg["eot_samples"], **match}
        for c in self.all:
            if (c["defense"], c["attack"], c["n"]) == (defense, attack, n) and abs(c["eps"] - eps) < 1e-9 \
                    and all(c[k] == v for k, v in match.items()):
                return c
        return None

    def autoattack_n(self, defense: str, eps: float) -> int | None:
        """The most test images AutoAttack ran on for ``defense`` at ``eps`` (it may differ between defenses:
        n=1000 where the cost allowed, 500 elsewhere); None if it has not run."""
        return max((c["n"] for c in self.all if c["defense"] == defense and c["attack"] == "autoattack"
                    and abs(c["eps"] - eps) < 1e-9), default=None)

    def worst_case_n(self, defense: str, eps: float) -> int | None:
        """The test images the worst case counts: AutoAttack's, else the most any attack of the suite ran on."""
        return self.autoattack_n(defense, eps) or max((c["n"] for c in self._worst_case_runs(defense, eps, 0)),
                                                      default=None)

    def _worst_case_runs(self, defense: str, eps: float, n: int) -> list[dict]:
        """The cells of the worst case's attacks run on ``defense`` at ``eps`` on at least ``n`` images."""
        return [c for c in self.all if c["defense"] == defense and abs(c["eps"] - eps) < 1e-9 and c["n"] >= n
                and c["attack"] in WORST_CASE_ATTACKS]

    def attacks_run(self, defense: str, eps: float, n: int) -> set[str]:
        """The kinds of attack of the worst case run on ``defense`` at ``eps`` on at least ``n`` images."""
        return {c["attack"] for c in self._worst_case_runs(defense, eps, n)}

    def worst_case(self, defense: str, eps: float, n: int,
                   attacks: tuple[str, ...] | set[str] = WORST_CASE_ATTACKS) -> tuple[dict | None, int]:
        """Accuracy on the first ``n`` images when an image must survive *every* white-box, transfer and
        black-box attack (of the kinds ``attacks``) run on it at ``eps`` (per-image minimum over attacks), and
        how many attacks that was."""
        runs = [c for c in self._worst_case_runs(defense, eps, n) if c["attack"] in attacks]
        if not runs:
            return None, 0
        survived = [all(c["hits"][i] == "1" for c in runs) for i in range(n)]
        lo, hi = wilson(sum(survived), n)
        return {"accuracy": sum(survived) / n, "ci95": [lo, hi], "n": n}, len(runs)

    def first(self, defense: str, attack: str, eps: float, n: int, **match) -> dict | None:
        """The cell on ``n`` images, else the first ``n`` images of the smallest run on more."""
        exact = self.get(defense, attack, eps, n, **match)
        if exact:
            return exact
        larger = [c for c in self.all if (c["defense"], c["attack"]) == (defense, attack) and c["n"] > n
                  and abs(c["eps"] - eps) < 1e-9 and all(c[k] == v for k, v in match.items())]
        return self.subset(min(larger, key=lambda c: c["n"]), n) if larger else None

    def subset(self, entry: dict | None, n: int) -> dict | None:
        """The same cell restricted to the first ``n`` images (the per-image hits are stored)."""
        if not entry:
            return None
        correct = entry["hits"][:n].count("1")
        lo, hi = wilson(correct, n)
        return {"accuracy": correct / n, "ci95": [lo, hi], "n": n}
