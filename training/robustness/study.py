"""``robustness``: oblivious, adaptive (EOT, BPDA), transfer and black-box attacks on the purifiers,
an adversarially trained baseline and the improvement candidates, with Wilson 95% CIs.

Stages, in priority order (each resumable; every adversarial set is cached in chunks under
``<workdir>/<dataset>/robust/``, keyed by attack and by a fingerprint of the attacked model):

- ``table``: clean accuracy; oblivious FGSM/PGD (the paper's threat model); EOT-FGSM and EOT-PGD
  through the paper's and the default purifier; majority vote evaluated on the latter's examples.
- ``baselines``: trains what is missing (FGSM-RS adversarial training, the classifier fine-tuned on
  purified images, the transfer surrogate), then their white-box cells and the transfer attack.
- ``checks``: convergence in steps and in EOT samples, BPDA, Square (black-box).
- ``autoattack``: the reference AutoAttack on every served pipeline, and the rest of the suite on those the
  stages above do not cover; each pipeline's numbers go into the manifest that names it.
- ``recipes``: trains a served pipeline's classifier again with one part of its recipe changed at a time
  (``recipes.VARIANTS``) and attacks every variant and the pipeline with AutoAttack's APGD-CE and APGD-DLR and
  with PGD: which change the robust accuracy depends on.

After each stage the reconstruction-error detector's ROC AUC is measured on the EOT-PGD sets that exist.

Results are upserted into ``<docs>/robustness/<dataset>.json`` after every cell, and ``render.robustness``
re-renders the pages from all datasets' JSON (``--report-only`` does just that).
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from torch import Tensor

from render.robustness import report
from .. import data, train_classifier
from ..advsets import AdvSetSpec, cached
from ..models import INPUT_SHAPE
from ..runs import pick_device, read_timings
from ..steps import Common, derive, from_args
from ..stats import rate
from . import certified, recipes, train_adversarial
from .defenses import ADV_TRAINED, FINETUNED, SURROGATE, Defense, build
from .manifest_metrics import record_pipelines
from .results import Results
from .threats import Threat, craft, detector_auc, fingerprint

log = logging.getLogger(__name__)
KNOWN_DEFENSES = ("none", "paper", "default", "vote", "finetuned", "adv-training")
STAGES = ("table", "baselines", "checks", "autoattack", "recipes")
FGSM_EPS = (0.1, 0.2, 0.3, 0.6)
PGD_EPS = (0.1, 0.2, 0.3)
OBLIVIOUS = ("none", "paper", "default", "vote")  # an oblivious attack targets the undefended classifier
# crafted on another model (the undefended classifier, the surrogate) at the shared shape; other shapes: self-attacks
CRAFTED_ELSEWHERE = ("fgsm", "pgd", "transfer")
ADAPTIVE_TABLE = ("default", "vote", "paper")
ADAPTIVE_BASELINES = ("finetuned", "adv-training")
CHECKED = ("default", "finetuned")  # convergence in steps and BPDA: the default purifier and the trained candidate
# where the default purifier keeps some accuracy under EOT-PGD, so that convergence is visible
CONVERGENCE_EPS = {"mnist": 0.2, "fashion-mnist": 0.1}
STEPS_GRID = (20, 50, 100, 200)
K_GRID = (1, 4, 8, 16, 32)
# where AutoAttack runs: each dataset's usual l-inf budget, the one its robust pipelines train at
AUTOATTACK_EPS = data.THREAT_EPS
# (width, seed, epochs) of the transfer surrogate: independently trained, narrower, other seed
SURROGATE_CONFIG = (0.125, 1, 3)


# The comparison models' recipes, per dataset. Wong et al.'s exact FGSM-RS (alpha = 1.25 eps, full eps from the
# first step) overfits catastrophically on MNIST at eps 0.3 with this VGG within 4 epochs, so this baseline ramps
# eps up over the first half of training and steps alpha = eps.
BASELINES = {
    ADV_TRAINED: {"mnist": dict(inputs="fgsm-rs", epochs=4, lr=2e-3, eps_ramp=0.5, alpha_ratio=1.0),
                  "fashion-mnist": dict(inputs="fgsm-rs", epochs=3, lr=2e-3, eps_ramp=0.0, alpha_ratio=1.25)},
    FINETUNED: {dataset: dict(inputs="purified", init="classifier.ckpt", purifier="autoencoder.pt", epochs=2, lr=5e-4)
                for dataset in ("mnist", "fashion-mnist")},
}


@dataclass(frozen=True)
class Config(Common):
    stages: tuple[str, ...] = STAGES
    n: int = 1000  # test images for the main table
    check_n: int = 200  # test images for convergence, BPDA and Square
    steps: int = 50  # EOT-PGD steps (alpha = 2.5 eps / steps)
    eot: int = 8  # noise draws per EOT gradient
    restarts: int = 1
    queries: int = 1000  # Square Attack query budget per image
    square_eps: tuple[float, ...] = (0.1, 0.3)
    votes: int = 8  # noise draws of the majority-vote candidate
    chunk: int = 100  # images per cached (resumable) attack chunk
    seed: int = 0  # seed of the latent noise at evaluation
    docs: Path = Path("docs")
    report_only: bool = False  # only re-render docs/robustness.md from the JSON
    autoattack_n: int = 1000  # test images for AutoAttack and the served pipelines' suite
    defenses: tuple[str, ...] = ()  # only these defenses' cells (default: every defense the stage plans)
    attacks: tuple[str, ...] = ()  # only these attacks' cells (default: every attack the stage plans)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stages", nargs="+", choices=STAGES, default=list(Config.stages))
    p.add_argument("--n", type=int, default=Config.n, help="test images for the main table")
    p.add_argument("--check-n", type=int, default=Config.check_n, help="test images for convergence, BPDA and Square")
    p.add_argument("--steps", type=int, default=Config.steps, help="EOT-PGD steps (alpha = 2.5 eps / steps)")
    p.add_argument("--eot", type=int, default=Config.eot, help="noise draws per EOT gradient")
    p.add_argument("--restarts", type=int, default=Config.restarts)
    p.add_argument("--queries", type=int, default=Config.queries, help="Square Attack query budget per image")
    p.add_argument("--square-eps", type=float, nargs="+", default=list(Config.square_eps))
    p.add_argument("--votes", type=int, default=Config.votes, help="noise draws of the majority-vote candidate")
    p.add_argument("--chunk", type=int, default=Config.chunk, help="images per cached (resumable) attack chunk")
    p.add_argument("--seed", type=int, default=Config.seed, help="seed of the latent noise at evaluation")
    p.add_argument("--docs", type=Path, default=Config.docs)
    p.add_argument("--report-only", action="store_true", help="only re-render docs/robustness.md from the JSON")
    p.add_argument("--autoattack-n", type=int, default=Config.autoattack_n,
                   help="test images for AutoAttack and the served pipelines' attack suite")
    p.add_argument("--defenses", nargs="+", default=list(Config.defenses),
                   help="only these defenses' cells (e.g. one served pipeline); default: all the stage plans")
    p.add_argument("--attacks", nargs="+", default=list(Config.attacks),
                   help="only these attacks' cells (e.g. transfer); default: all the stage plans")


def train_missing(config: Config) -> None:
    """The comparison models, each resumable (a finished checkpoint returns at once)."""
    width, seed, epochs = SURROGATE_CONFIG
    train_classifier.run(derive(train_classifier.Config, config, width=width, seed=seed, epochs=epochs,
                                out=SURROGATE, lr=2e-3, batch_size=64))
    for out, by_dataset in BASELINES.items():
        train_adversarial.run(derive(train_adversarial.Config, config, out=out, **by_dataset[config.dataset]))


def trained_models(run: Path) -> dict:
    """What the baselines stage trained: recipe, validation metrics and wall time of each checkpoint."""
    timings = read_timings(run)
    out = {}
    for name in (SURROGATE, ADV_TRAINED, FINETUNED):
        if (run / name).is_file():
            ckpt = torch.load(run / name, map_location="cpu", weights_only=False)
            out[name] = {k: ckpt.get(k) for k in ("config", "train_config", "val_accuracy", "best_epoch",
                                                  "val_selection_metric", "epoch")}
            out[name]["seconds"] = timings.get(f"train-{name.removesuffix('.ckpt')}")
    return out


def autoattack_plan(defenses: dict[str, Defense], args: Config) -> list[tuple[str, Threat, int]]:
    """AutoAttack on every served pipeline and on the undefended classifier, most robust candidates first; and,
    for the pipelines the other stages do not cover, the rest of the suite (EOT-PGD, BPDA, transfer, Square)."""
    n, eot = args.autoattack_n, dict(steps=args.steps, k=args.eot, restarts=args.restarts)
    pipelines = [name for name in defenses if name not in KNOWN_DEFENSES]
    cells = []
    for d in pipelines:
        cells += [(d, Threat("autoattack", AUTOATTACK_EPS[args.dataset]), n)]
        cells += [(d, Threat("eot-pgd", e, **eot), n) for e in PGD_EPS]
        cells += [(d, Threat("square", e, queries=args.queries), n) for e in args.square_eps]
        cells += [(d, Threat("transfer", e, steps=args.steps, k=1), n) for e in PGD_EPS]
        cells += [(d, Threat("bpda", e, **eot), n) for e in PGD_EPS if defenses[d].stochastic]
    # the checked candidates too: a candidate's worst case must face the same attacks as the default purifier's
    return cells + [(d, Threat("autoattack", AUTOATTACK_EPS[args.dataset]), n) for d in (*CHECKED, "none")]


def recipes_plan(args: Config) -> list[tuple[str, Threat, int]]:
    """Each studied pipeline and its recipe variants, each under APGD-CE + APGD-DLR and PGD at the dataset's eps;
    and any other pipeline named with ``--defenses`` (a retrained recipe, to compare on the same images)."""
    eps, n = AUTOATTACK_EPS[args.dataset], args.n
    names = [name for base in recipes.bases(args.artifact_dir) for name in (base, *recipes.variants(base))]
    names += [name for name in args.defenses if name not in names]
    return [(d, t, n) for d in names for t in (Threat("apgd", eps), Threat("eot-pgd", eps, steps=args.steps, k=1))]


def plan(stage: str, defenses: dict[str, Defense], args: Config) -> list[tuple[str, Threat, int]]:
    """(defense, threat, n) cells of one stage, cheap and most important first."""
    if stage == "autoattack":
        cells = autoattack_plan(defenses, args)
    elif stage == "recipes":
        cells = recipes_plan(args)
    else:
        cells = _attack_plan(stage, list(defenses), args)
    return [(d, t, k) for d, t, k in cells if d in defenses and (not args.defenses or d in args.defenses)
            and (not args.attacks or t.attack in args.attacks)
            and (t.attack not in CRAFTED_ELSEWHERE or defenses[d].side == INPUT_SHAPE[1])]


def _attack_plan(stage: str, names: list[str], args: Config) -> list[tuple[str, Threat, int]]:
    n, m = args.n, args.check_n
    eot = dict(steps=args.steps, k=args.eot, restarts=args.restarts)
    cells: list[tuple[str, Threat, int]] = []
    if stage == "table":
        cells += [(d, Threat("fgsm", e), n) for e in FGSM_EPS for d in OBLIVIOUS]
        cells += [(d, Threat("pgd", e), n) for e in PGD_EPS for d in OBLIVIOUS]
        cells += [(d, Threat("eot-fgsm", e, steps=1, k=args.eot), n) for d in ADAPTIVE_TABLE for e in FGSM_EPS]
        # white-box PGD on the undefended classifier: the paper's PGD (no random start, alpha 0.01) is weak
        cells += [("none", Threat("eot-pgd", e, **eot), n) for e in PGD_EPS]
        cells += [(d, Threat("eot-pgd", e, **eot), n) for d in ADAPTIVE_TABLE for e in PGD_EPS]
    elif stage == "baselines":
        cells += [(d, Threat("transfer", e, steps=args.steps, k=1), n) for e in PGD_EPS for d in names]
        cells += [(d, Threat("eot-fgsm", e, steps=1, k=args.eot), n) for d in ADAPTIVE_BASELINES for e in FGSM_EPS]
        cells += [(d, Threat("eot-pgd", e, **eot), n) for d in ADAPTIVE_BASELINES for e in PGD_EPS]
    else:
        eps = CONVERGENCE_EPS[args.dataset]
        # the candidates' gains must survive a longer attack and BPDA, or they are gradient masking
        cells += [(d, Threat("eot-pgd", eps, steps=s, k=args.eot, restarts=1), m)
                  for s in sorted(STEPS_GRID, reverse=True) for d in CHECKED]  # the longest attack first
        cells += [(d, Threat("bpda", e, **eot), m) for d in CHECKED for e in PGD_EPS]
        cells += [("default", Threat("eot-pgd", eps, steps=args.steps, k=k, restarts=1), m) for k in K_GRID]
        cells += [("paper", Threat("bpda", e, **eot), m) for e in PGD_EPS]
        cells += [(d, Threat("square", e, queries=args.queries), m) for e in args.square_eps
                  for d in ("none", *CHECKED, "vote", "adv-training")]  # every checked candidate too
    return [(d, t, k) for d, t, k in cells if d in names]


def test_images(args: Config, side: int) -> tuple[Tensor, Tensor]:
    """The test split at ``side`` x ``side``: each defense is evaluated on the images it takes, loaded once."""
    return _test_split(Path(args.root), args.dataset, args.limit, side)


@cache
def _test_split(root: Path, dataset: str, limit: int | None, side: int) -> tuple[Tensor, Tensor]:
    x, y = data.load_splits(root, dataset, limit=limit, side=side)["test"].tensors
    return x, y


def measure_clean(results: Results, defenses: dict[str, Defense], args: Config, device) -> None:
    """Each defense's clean (and, if certifiable, certified) accuracy, unless measured on this very model."""
    for name, d in defenses.items():  # clean accuracy, unless measured on this very model already
        model_id = fingerprint(d)
        if name not in KNOWN_DEFENSES:  # a served pipeline retrained since: its old model's cells go
            results.forget_other_models(name, model_id)
        dx, dy = test_images(args, d.side)
        if results.data["clean"].get(name, {}).get("fingerprint") != model_id:
            results.put("clean", name, {**rate(d.predict(dx, args.seed, device) == dy), "fingerprint": model_id})
        measured = results.data["certified"].get(name, {}).get("fingerprint") == model_id
        if certified.certifiable(d) and not measured:
            results.put("certified", name, {**certified.summary(d, dx, dy, AUTOATTACK_EPS[args.dataset], device),
                                            "fingerprint": model_id})


def attack_cells(results: Results, defenses: dict[str, Defense], surrogate, planned, args: Config, device) -> None:
    """Each planned (defense, threat, n) cell: craft or load the adversarial set, count what the defense keeps."""
    run = args.run_dir
    for name, threat, n in planned:
        if threat.attack == "transfer" and surrogate is None:
            continue
        d = defenses[name]
        xs, ys = (t[:n] for t in test_images(args, d.side))
        if threat.attack in ("fgsm", "pgd"):
            spec = (AdvSetSpec("fgsm", eps=threat.eps) if threat.attack == "fgsm"
                    else AdvSetSpec("pgd", eps=threat.eps, alpha=0.01, steps=40))
            adv, seconds, found = cached(run / "adv", defenses["none"].model, xs, ys, spec, tag="test0",
                                         device=device), None, []
        elif threat.attack == "transfer":
            adv, seconds, found = craft(threat, Defense("surrogate", "transfer surrogate", surrogate), xs, ys,
                                        run / "robust", device, args.chunk)
        else:
            threat, attacked = threat.for_defense(d), defenses[d.attacked_as or name]
            adv, seconds, found = craft(threat, attacked, xs, ys, run / "robust", device, args.chunk)
        hits = d.predict(adv, args.seed, device) == ys
        # what AutoAttack reported about the defense, kept with the cell (the attack cache may not last)
        reported = {"notes": found} if threat.attack in ("autoattack", "apgd") else {}
        results.cell(name, threat, {**rate(hits), "attack_seconds": seconds, "fingerprint": fingerprint(d),
                                    "hits": "".join("1" if h else "0" for h in hits.tolist()), **reported})
        log.info("%s %s n=%d: %.4f", name, threat.key(), n, hits.float().mean())


def run(args: Config) -> None:
    docs_json = args.docs / "robustness" / f"{args.dataset}.json"
    if args.report_only:
        report.write(args.docs)
        return
    device = pick_device(args.device)
    run = args.run_dir
    x, y = test_images(args, INPUT_SHAPE[1])
    results = Results(docs_json, args.dataset, config={
        "n": min(args.n, len(x)), "check_n": min(args.check_n, len(x)), "eot_steps": args.steps,
        "eot_samples": args.eot, "restarts": args.restarts, "square_queries": args.queries, "votes": args.votes,
        "seed": args.seed, "convergence_eps": CONVERGENCE_EPS[args.dataset], "fgsm_eps": FGSM_EPS,
        "pgd_eps": PGD_EPS, "oblivious_pgd": {"alpha": 0.01, "steps": 40, "random_start": False},
        "surrogate": dict(zip(("width", "seed", "epochs"), SURROGATE_CONFIG)),
        "autoattack_n": min(args.autoattack_n, len(x)), "autoattack_eps": AUTOATTACK_EPS[args.dataset]})
    for stage in [s for s in STAGES if s in args.stages]:
        if stage == "baselines":
            train_missing(args)
            results.put("training", "models", trained_models(run))
        defenses, surrogate = build(Path(args.artifacts) / args.dataset, run, device, args.votes)
        results.defenses({name: d.label for name, d in defenses.items()})
        if stage == "recipes":  # the variants are not defenses of the other tables
            variants = recipes.train(args, only=args.defenses)
            for name, variant in variants.items():
                results.put("recipes", name, recipes.summary(run, name, variant))
            defenses |= recipes.defenses(run, variants, device)
        measure_clean(results, defenses, args, device)
        attack_cells(results, defenses, surrogate, plan(stage, defenses, args), args, device)
        detector = detector_auc(defenses["default"], x[:args.n], y[:args.n], run, args, PGD_EPS, device)
        if detector["auc"]:  # measured on the EOT-PGD sets this run has; none cached leaves the last figures
            results.put("detector", "default", detector)
        if stage == "autoattack":
            record_pipelines(results, defenses, args.artifact_dir / "manifest.json", args.dataset)
        report.write(args.docs)


def main(args: argparse.Namespace) -> None:
    run(from_args(Config, args))
