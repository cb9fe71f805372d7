"""Crafting for the robustness study: threats, chunk-cached adversarial sets, the detector's ROC AUC."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from advattacks import BPDA, EOTPGD, Square

from .autoattack import EOT_DRAWS, ReferenceAutoAttack

from ..advsets import model_fingerprint
from ..runs import predict
from .defenses import Defense

CHUNK_SEED = 1 << 20

@dataclass(frozen=True)
class Threat:
    """``fgsm``/``pgd``: oblivious (the undefended classifier's gradient, the paper's threat model);
    ``transfer``: PGD with a random start on the surrogate, run all ``steps`` (not stopped at the first success,
    which transfers better); ``eot-fgsm``/``eot-pgd``: white-box through the whole
    defense, gradients averaged over ``k`` noise draws; ``bpda``: EOT with the purifier's backward
    pass replaced by the identity; ``square``: black-box, ``queries`` per image; ``autoattack``: the reference
    AutoAttack, version ``rand`` (EOT over ``k`` = 20 draws) on a stochastic defense, else ``standard``;
    ``apgd``: only AutoAttack's APGD-CE and APGD-DLR (version ``rand``'s pair, EOT over ``k`` draws)."""

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
        if self.attack == "autoattack":
            return f"autoattack-{'rand' if self.k > 1 else 'standard'}-eps{self.eps}"
        if self.attack == "apgd":
            return f"apgd-ce-dlr-eps{self.eps}-k{self.k}"
        if self.attack == "eot-fgsm":
            return f"eot-fgsm-eps{self.eps}-k{self.k}"
        return f"{self.attack}-eps{self.eps}-s{self.steps}-k{self.k}-r{self.restarts}"

    def for_defense(self, defense: Defense) -> "Threat":
        """A deterministic defense needs one draw per gradient, not ``k``; AutoAttack's ``rand`` takes 20."""
        if self.attack in ("autoattack", "apgd"):
            return replace(self, k=EOT_DRAWS if defense.stochastic else 1, steps=100, restarts=1)
        return self if defense.stochastic or self.attack == "square" else replace(self, k=1, restarts=1)

    def attack_for(self, defense: Defense, seed: int):
        if self.attack in ("autoattack", "apgd"):
            return ReferenceAutoAttack(defense.model, self.eps, stochastic=self.k > 1, seed=seed,
                                       apgd_only=self.attack == "apgd")
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


def fingerprint(defense: Defense) -> str:
    """What the defense's model computes on a fixed probe batch at its input shape (``advsets.model_fingerprint``)."""
    torch.manual_seed(1234)  # the purifier's latent noise, so that a stochastic model hashes stably
    return model_fingerprint(defense.model, shape=(1, defense.side, defense.side))


def craft(threat: Threat, defense: Defense, x: Tensor, y: Tensor, cache: Path, device, chunk: int,
          cached_only: bool = False) -> tuple[Tensor | None, float, list[str]]:
    """Adversarial images against ``defense``, the attack's total seconds and what it reported about the defense
    (AutoAttack's checks, deduplicated), in cached chunks of ``chunk`` images (a chunk's seed is its first
    index, so any prefix of the test set reuses them)."""
    folder = Path(cache) / f"{threat.key()}-{fingerprint(defense)}"
    advs, seconds, notes = [], 0.0, []
    for start in tqdm(range(0, len(x), chunk), desc=f"{defense.name} {threat.key()}", disable=cached_only):
        stop = min(start + chunk, len(x))
        path = folder / f"{start:05d}-{stop:05d}.pt"
        if path.is_file():
            blob = torch.load(path)
        elif cached_only:
            return None, seconds, []
        else:
            torch.manual_seed(CHUNK_SEED + start)  # the attack's noise draws, apart from the evaluation's
            began = time.perf_counter()
            attack = threat.attack_for(defense, seed=start)
            adv = attack(x[start:stop].to(device), y[start:stop].to(device)).cpu()
            blob = {"adv": adv, "seconds": time.perf_counter() - began, "notes": getattr(attack, "notes", [])}
            folder.mkdir(parents=True, exist_ok=True)
            torch.save(blob, path.with_suffix(".tmp"))
            path.with_suffix(".tmp").replace(path)
        advs.append(blob["adv"])
        seconds += blob["seconds"]
        notes += blob.get("notes", [])
    return torch.cat(advs), round(seconds, 1), list(dict.fromkeys(notes))


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
        adv, _, _ = craft(threat, defense, x, y, run / "robust", device, args.chunk, cached_only=True)
        if adv is not None:
            out["auc"][str(eps)] = roc_auc(mse(adv), clean)
    return out
