"""The pieces of ``robustness``: threats, chunk-cached crafting, the results file, the detector's AUC, and
the lookup of stored cells (with per-image worst cases) that the report reads."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from advattacks import BPDA, EOTPGD, Square
from .advsets import model_fingerprint
from .defenses import Defense
from .runs import predict
from .stats import wilson

# the attacks an image must all survive to count in a defense's worst case
WORST_CASE_ATTACKS = ("eot-pgd", "bpda", "transfer", "square")

CHUNK_SEED = 1 << 20

@dataclass(frozen=True)
class Threat:
    """``fgsm``/``pgd``: oblivious (the undefended classifier's gradient, the paper's threat model);
    ``transfer``: PGD with a random start on the surrogate, run all ``steps`` (not stopped at the first success,
    which transfers better); ``eot-fgsm``/``eot-pgd``: white-box through the whole
    defense, gradients averaged over ``k`` noise draws; ``bpda``: EOT with the purifier's backward
    pass replaced by the identity; ``square``: black-box, ``queries`` per image."""

    attack: str
    eps: float
    steps: int = 50
    k: int = 8
    restarts: int = 1
    queries: int = 1000

    def key(self) -> str:
        if self.attack in ("fgsm", "pgd"):
            return f"{self.attack}-eps{self.eps}"
        if self.attack == "transfer":
            return f"transfer-eps{self.eps}-s{self.steps}"
        if self.attack == "square":
            return f"square-eps{self.eps}-q{self.queries}"
        if self.attack == "eot-fgsm":
            return f"eot-fgsm-eps{self.eps}-k{self.k}"
        return f"{self.attack}-eps{self.eps}-s{self.steps}-k{self.k}-r{self.restarts}"

    def for_defense(self, defense: Defense) -> "Threat":
        """A deterministic defense needs one draw per gradient, not ``k``."""
        return self if defense.stochastic or self.attack == "square" else replace(self, k=1, restarts=1)

    def attack_for(self, defense: Defense, seed: int):
        if self.attack == "square":
            return Square(defense.model, eps=self.eps, n_queries=self.queries, seed=seed)
        if self.attack == "eot-fgsm":
            return EOTPGD(defense.model, eps=self.eps, alpha=self.eps, steps=1, eot_samples=self.k,
                          random_start=False)
        if self.attack == "transfer":
            return EOTPGD(defense.model, eps=self.eps, steps=self.steps, eot_samples=1, stop_when_fooled=False)
        kwargs = dict(eps=self.eps, steps=self.steps, eot_samples=self.k, restarts=self.restarts)
        if self.attack == "bpda":
            return BPDA(defense.purifier, defense.classifier, **kwargs)
        return EOTPGD(defense.model, **kwargs)


def fingerprint(model) -> str:
    torch.manual_seed(1234)  # the purifier's latent noise, so that a stochastic model hashes stably
    return model_fingerprint(model)


def craft(threat: Threat, defense: Defense, x: Tensor, y: Tensor, cache: Path, device, chunk: int,
          cached_only: bool = False) -> tuple[Tensor | None, float]:
    """Adversarial images against ``defense`` and the attack's total seconds, in cached chunks of
    ``chunk`` images (a chunk's seed is its first index, so any prefix of the test set reuses them)."""
    folder = Path(cache) / f"{threat.key()}-{fingerprint(defense.model)}"
    advs, seconds = [], 0.0
    for start in tqdm(range(0, len(x), chunk), desc=f"{defense.name} {threat.key()}", disable=cached_only):
        stop = min(start + chunk, len(x))
        path = folder / f"{start:05d}-{stop:05d}.pt"
        if path.is_file():
            blob = torch.load(path)
        elif cached_only:
            return None, seconds
        else:
            torch.manual_seed(CHUNK_SEED + start)  # the attack's noise draws, apart from the evaluation's
            began = time.perf_counter()
            adv = threat.attack_for(defense, seed=start)(x[start:stop].to(device), y[start:stop].to(device)).cpu()
            blob = {"adv": adv, "seconds": time.perf_counter() - began}
            folder.mkdir(parents=True, exist_ok=True)
            torch.save(blob, path.with_suffix(".tmp"))
            path.with_suffix(".tmp").replace(path)
        advs.append(blob["adv"])
        seconds += blob["seconds"]
    return torch.cat(advs), round(seconds, 1)


def roc_auc(positive: Tensor, negative: Tensor) -> float:
    """P(score of a random positive > score of a random negative), ties counted half (Mann-Whitney)."""
    greater = (positive[:, None] > negative[None, :]).float().mean()
    ties = (positive[:, None] == negative[None, :]).float().mean()
    return round((greater + 0.5 * ties).item(), 4)


def detector_auc(defense: Defense, x: Tensor, y: Tensor, run: Path, args, eps_list, device) -> dict:
    """ROC AUC of the default purifier's reconstruction MSE, clean vs its EOT-PGD examples (those
    already crafted), per eps.  The attack did not try to keep the MSE low: an upper bound."""
    def mse(images: Tensor) -> Tensor:
        torch.manual_seed(args.seed)
        return ((predict(defense.purifier, images, device=device) - images) ** 2).flatten(1).mean(1)

    clean = mse(x)
    out = {"score": "per-image reconstruction MSE of the default purifier", "n": len(x), "auc": {}}
    for eps in eps_list:
        threat = Threat("eot-pgd", eps, steps=args.steps, k=args.eot, restarts=args.restarts)
        adv, _ = craft(threat, defense, x, y, run / "robust", device, args.chunk, cached_only=True)
        if adv is not None:
            out["auc"][str(eps)] = roc_auc(mse(adv), clean)
    return out


class Results:
    """``<docs>/robustness/<dataset>.json``, rewritten after every update (a partial run leaves a valid file)."""

    def __init__(self, path: Path, dataset: str, config: dict) -> None:
        self.path = Path(path)
        old = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.data = {"dataset": dataset, "config": config, "defenses": old.get("defenses", {}),
                     "clean": old.get("clean", {}), "cells": old.get("cells", {}), "detector": old.get("detector", {}),
                     "training": old.get("training", {})}
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

    def worst_case(self, defense: str, eps: float, n: int) -> tuple[dict | None, int]:
        """Accuracy on the first ``n`` images when an image must survive *every* white-box, transfer and
        black-box attack run on it at ``eps`` (per-image minimum over attacks), and how many attacks that was."""
        runs = [c for c in self.all if c["defense"] == defense and abs(c["eps"] - eps) < 1e-9 and c["n"] >= n
                and c["attack"] in WORST_CASE_ATTACKS]
        if not runs:
            return None, 0
        survived = [all(c["hits"][i] == "1" for c in runs) for i in range(n)]
        lo, hi = wilson(sum(survived), n)
        return {"accuracy": sum(survived) / n, "ci95": [lo, hi], "n": n}, len(runs)

    def subset(self, entry: dict | None, n: int) -> dict | None:
        """The same cell restricted to the first ``n`` images (the per-image hits are stored)."""
        if not entry:
            return None
        correct = entry["hits"][:n].count("1")
        lo, hi = wilson(correct, n)
        return {"accuracy": correct / n, "ci95": [lo, hi], "n": n}
