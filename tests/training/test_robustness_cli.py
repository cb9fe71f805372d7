"""``python -m training robustness`` end to end on a tiny subset (--dry-run trains one batch per epoch),
and the report's refusal to print numbers it does not have."""

import json
import shutil
import subprocess
import sys

from render.markdown import markers
from training.models import VGG16, VGGConfig
from training.robustness.defenses import PIPELINE_DEFENSES
from render.robustness.recipes import recipe_tables, replicates
from render.robustness.report import PENDING, blocks
from training.robustness.results import WORST_CASE_ATTACKS, Cells
from training.robustness.study import Config, plan
from training.runs import save_checkpoint

from .conftest import ARTIFACTS, DATA_ROOT, REPO


def add_study_base(folder):
    """The recipe study's base, a study model no longer served, added back as ``export --add`` would: its recorded
    recipe, and weights that will do for a smoke run."""
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    study = json.loads((REPO / "docs" / "robustness" / "mnist.json").read_text())["pipelines"]["adv-pgd"]
    shutil.copy(folder / "adv-pgd10-16ep.pt", folder / "adv-pgd.pt")
    manifest["models"]["adv-pgd"] = {**manifest["models"]["adv-pgd10-16ep"], "file": "adv-pgd.pt",
                                     "training": study["training"]}
    manifest["pipelines"]["adv-pgd"] = {"purifier": None, "classifier": "adv-pgd.pt", "metrics": {}}
    manifest["files"]["adv-pgd.pt"] = manifest["files"]["adv-pgd10-16ep.pt"]
    path.write_text(json.dumps(manifest, indent=2) + "\n")


def test_all_stages_on_a_tiny_subset(tmp_path):
    run = tmp_path / "runs" / "mnist"
    run.mkdir(parents=True)
    # a copy of the committed artifacts: the autoattack stage records its figures in the manifest it reads
    artifacts = tmp_path / "artifacts"
    shutil.copytree(ARTIFACTS / "mnist", artifacts / "mnist")
    add_study_base(artifacts / "mnist")
    served = {name for name in json.loads((artifacts / "mnist" / "manifest.json").read_text()).get("pipelines", {})
              if name not in PIPELINE_DEFENSES}
    # the purified fine-tune starts from the run's classifier; a random one will do for a smoke run
    save_checkpoint(run / "classifier.ckpt", "vgg16", VGGConfig(), VGG16(VGGConfig()))
    cmd = [sys.executable, "-m", "training", "robustness", "--dataset", "mnist", "--root", str(DATA_ROOT),
           "--workdir", str(tmp_path / "runs"), "--docs", str(tmp_path / "docs"), "--artifacts", str(artifacts),
           "--limit", "12", "--n", "12",
           "--check-n", "6", "--steps", "2", "--eot", "2", "--queries", "5", "--chunk", "6", "--votes", "3",
           "--square-eps", "0.3", "--autoattack-n", "2", "--dry-run", "--threads", "1"]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, timeout=600)
    result = json.loads((tmp_path / "docs" / "robustness" / "mnist.json").read_text())
    assert set(result["defenses"]) == {"none", "paper", "default", "vote", "finetuned", "adv-training"} | served
    cells = result["cells"].values()
    assert {c["attack"] for c in cells} == {"fgsm", "pgd", "eot-fgsm", "eot-pgd", "transfer", "bpda", "square",
                                            "autoattack", "apgd"}
    for c in cells:
        assert c["n"] in (2, 6, 12) and len(c["hits"]) == c["n"] and c["hits"].count("1") == c["correct"]
        assert c["ci95"][0] <= c["accuracy"] <= c["ci95"][1]
    # deterministic defenses are attacked with one draw per gradient, purifiers with --eot draws
    assert {c["k"] for c in cells if c["attack"] == "eot-pgd" and c["defense"] == "adv-training"} == {1}
    assert 2 in {c["k"] for c in cells if c["attack"] == "eot-pgd" and c["defense"] == "default"}
    # the worst case that decides a candidate must cover the same attacks as the default purifier's
    attacks = {d: {c["attack"] for c in cells if c["defense"] == d and c["attack"] in WORST_CASE_ATTACKS}
               for d in ("default", "finetuned")}
    assert attacks["finetuned"] == attacks["default"] == set(WORST_CASE_ATTACKS) - {"apgd"}
    # the recipe study: each variant trained from the manifest's recipe with one change, attacked beside the default
    variants = result["recipes"]
    assert set(variants) == {"adv-pgd-epochs4", "adv-pgd-width0.125", "adv-pgd-epochs4-steps10",
                             "adv-pgd-epochs4-trades", "adv-pgd-epochs4-steps10-seed1",
                             "adv-pgd-epochs4-steps20", "adv-pgd-steps10", "adv-pgd-epochs4-steps10-width0.5",
                             "adv-pgd-steps10-epochs16", "adv-pgd-epochs4-steps10-apgd",
                             "adv-pgd-epochs4-steps10-eps0.35", "adv-pgd-steps10-epochs32-select-by-apgd"}
    tc = variants["adv-pgd-width0.125"]["train_config"]
    assert (tc["width"], tc["epochs"], tc["steps"], tc["eps"]) == (0.125, 8, 5, 0.3)  # the rest: the default's recipe
    tc = variants["adv-pgd-epochs4-steps10-width0.5"]["train_config"]
    assert (tc["width"], tc["epochs"], tc["steps"], tc["seed"]) == (0.5, 4, 10, 0)
    tc = variants["adv-pgd-epochs4-trades"]["train_config"]
    assert (tc["inputs"], tc["width"], tc["epochs"], tc["steps"]) == ("trades", 0.25, 4, 5)
    tc = variants["adv-pgd-epochs4-steps10-apgd"]["train_config"]
    assert (tc["inputs"], tc["attack"], tc["epochs"], tc["steps"]) == ("apgd", "APGD", 4, 10)
    tc = variants["adv-pgd-epochs4-steps10-eps0.35"]["train_config"]
    assert (tc["inputs"], tc["eps"], tc["epochs"], tc["steps"]) == ("pgd", 0.35, 4, 10)
    tc = variants["adv-pgd-steps10-epochs32-select-by-apgd"]["train_config"]
    assert (tc["inputs"], tc["epochs"], tc["selection"]) == ("pgd", 32, "val APGD-10 accuracy")
    assert all(len(v["history"]) == v["train_config"]["epochs"] for v in variants.values())
    assert not set(variants) & set(result["defenses"])  # not columns of the other tables
    for name in ("adv-pgd", *variants):
        assert {c["attack"] for c in cells if c["defense"] == name} >= {"apgd", "eot-pgd"}
    assert "| adv-pgd-width0.125 |" in blocks([result])["robustness-mnist-recipes"]
    assert set(result["training"]["models"]) == {"surrogate.ckpt", "classifier-fgsm-rs.ckpt",
                                                 "classifier-purified.ckpt"}
    doc = (tmp_path / "docs" / "robustness" / "mnist.md").read_text()
    assert all(markers(name)[0] in doc for name in blocks([result])), "every table of the run is in the page"
    assert (tmp_path / "docs" / "figures" / "robustness-mnist.png").stat().st_size > 1000
    # a second run finds every adversarial set in the cache and reproduces every number
    subprocess.run(cmd + ["--stages", "table"], cwd=REPO, check=True, capture_output=True, timeout=600)
    again = json.loads((tmp_path / "docs" / "robustness" / "mnist.json").read_text())
    assert all(again["cells"][k]["hits"] == v["hits"] for k, v in result["cells"].items())


def test_the_report_marks_missing_cells_pending_and_invents_nothing():
    config = {"n": 1000, "check_n": 200, "eot_steps": 50, "eot_samples": 8, "restarts": 1, "square_queries": 1000,
              "votes": 8, "seed": 0, "convergence_eps": 0.2, "fgsm_eps": [0.1], "pgd_eps": [0.3],
              "surrogate": {"width": 0.125, "seed": 1, "epochs": 3}}
    hits = ("1" * 21 + "0" * 29) * 20  # 42% everywhere, and on the first 200 images too
    result = {"dataset": "mnist", "config": config, "defenses": {"none": "no defense", "default": "default"},
              "clean": {}, "detector": {}, "training": {},
              "cells": {"x": {"defense": "default", "attack": "eot-pgd", "eps": 0.3, "steps": 50, "k": 8,
                              "restarts": 1, "queries": 1000, "n": 1000, "accuracy": 0.42, "correct": 420,
                              "ci95": [0.389, 0.451], "hits": hits, "attack_seconds": 12.0}}}
    doc = "\n".join(blocks([result]).values())
    row = next(line for line in doc.splitlines() if line.startswith("| PGD eps=0.3"))
    assert "0.420 [0.389, 0.451]" in row and row.count(PENDING) == 7
    # the BPDA comparison reuses the stored per-image hits for the first check_n images
    assert "| default | 0.3 | *pending* | 0.420 [" in doc


def test_worst_case_counts_an_image_only_if_it_survives_every_attack():
    def cell(attack, hits):
        return {"defense": "default", "attack": attack, "eps": 0.2, "n": 4, "hits": hits, "steps": 50, "k": 8}
    cells = Cells({"config": {"n": 4}, "cells": {"a": cell("eot-pgd", "1101"), "b": cell("bpda", "0111"),
                                                  "c": cell("pgd", "0000")}})  # oblivious: not a worst-case attack
    worst, attacks = cells.worst_case("default", 0.2, 4)
    assert attacks == 2 and worst["accuracy"] == 0.5  # images 1 and 3 survive both


def test_a_worst_case_restricted_to_some_kinds_of_attack_and_autoattack_n_per_defense():
    def cell(defense, attack, hits):
        return {"defense": defense, "attack": attack, "eps": 0.1, "n": len(hits), "hits": hits, "steps": 50, "k": 8}
    cells = Cells({"config": {"n": 4}, "cells": {
        "a": cell("default", "eot-pgd", "1111"), "b": cell("default", "autoattack", "0011"),
        "c": cell("default", "autoattack", "00110000"), "d": cell("finetuned", "eot-pgd", "1110")}})
    assert cells.attacks_run("default", 0.1, 4) == {"eot-pgd", "autoattack"}
    assert cells.attacks_run("finetuned", 0.1, 4) == {"eot-pgd"}
    shared = cells.attacks_run("default", 0.1, 4) & cells.attacks_run("finetuned", 0.1, 4)
    assert cells.worst_case("default", 0.1, 4, attacks=shared)[0]["accuracy"] == 1.0
    assert cells.worst_case("default", 0.1, 4)[0]["accuracy"] == 0.5  # every kind, AutoAttack included
    assert cells.autoattack_n("default", 0.1) == 8 and cells.autoattack_n("finetuned", 0.1) is None


def test_a_table_on_fewer_images_reads_the_first_images_of_a_larger_run():
    def cell(n, hits, queries=1000):
        return {"defense": "adv", "attack": "square", "eps": 0.3, "n": n, "hits": hits, "queries": queries,
                "accuracy": hits.count("1") / n}
    cells = Cells({"config": {"n": 4}, "cells": {"a": cell(8, "00111111"), "b": cell(6, "011111"),
                                                  "c": cell(6, "000000", queries=10)}})
    assert cells.first("adv", "square", 0.3, 2, queries=1000)["accuracy"] == 0.5  # the 6-image run's first two
    assert cells.first("adv", "square", 0.3, 8, queries=1000)["accuracy"] == 0.75  # an exact run as it is
    assert cells.first("adv", "square", 0.3, 9, queries=1000) is None
    assert cells.first("adv", "square", 0.1, 2) is None


def test_the_recipe_section_shows_each_change_beside_the_default_on_the_same_images():
    def cell(defense, attack, hits, **kw):
        return {"defense": defense, "attack": attack, "eps": 0.3, "n": 4, "hits": hits, "k": 1, "steps": kw.get("s", 100),
                "restarts": 1, "accuracy": hits.count("1") / 4, "ci95": [0.0, 1.0]}
    result = {"dataset": "mnist", "config": {"n": 4, "eot_steps": 50, "restarts": 1, "eot_samples": 8,
                                             "autoattack_eps": 0.3},
              "clean": {}, "pipelines": {"adv-pgd": {"default": True, "train_seconds": 600,
                                                     "training": {"epochs": 8, "width": 0.25, "steps": 5}}},
              "recipes": {"adv-pgd-epochs4": {"base": "adv-pgd", "change": {"epochs": 4},
                                              "history": [0.5, 0.7, 0.8, 0.75], "best_epoch": 3, "train_seconds": 300},
                          "adv-pgd-epochs4-steps10": {"base": "adv-pgd", "change": {"epochs": 4, "steps": 10},
                                                      "best_epoch": 4, "train_seconds": 600},
                          "adv-pgd-epochs4-steps20": {"base": "adv-pgd", "change": {"epochs": 4, "steps": 20},
                                                      "best_epoch": 4, "train_seconds": 900},
                          "adv-pgd-epochs16": {"base": "adv-pgd", "change": {"epochs": 16}, "best_epoch": 16,
                                               "train_seconds": 1200},
                          "adv-pgd-select-by-apgd": {"base": "adv-pgd", "change": {"select_by": "apgd"},
                                                     "best_epoch": 8, "train_seconds": 600}},
              "cells": {"a": cell("adv-pgd", "apgd", "1111"), "b": cell("adv-pgd-epochs4", "apgd", "1100"),
                        "c": cell("adv-pgd", "eot-pgd", "1111", s=50),
                        "d": cell("adv-pgd-epochs4-steps10", "apgd", "1110"),
                        "e": cell("adv-pgd-epochs4-steps20", "apgd", "1111"),
                        "f": cell("adv-pgd-epochs16", "apgd", "1111")}}
    lines = recipe_tables(Cells(result))
    row = next(line for line in lines if line.startswith("| adv-pgd-epochs4 "))
    assert "epochs 8 -> 4" in row and "5 min" in row and "0.500, 0.700, 0.800, 0.750 (kept 3)" in row
    assert "| adv-pgd | epochs 8 -> 4 | -0.500 [" in row  # two of four images lost, none gained
    # a variant that extends another is compared with it, so its delta is that of the added change alone
    row = next(line for line in lines if line.startswith("| adv-pgd-epochs4-steps10 "))
    assert "epochs 8 -> 4, steps 5 -> 10" in row and "| adv-pgd-epochs4 | steps 5 -> 10 | +0.250 [" in row
    # one that sets an option of an earlier variant to another value is compared with that variant
    row = next(line for line in lines if line.startswith("| adv-pgd-epochs4-steps20 "))
    assert "| adv-pgd-epochs4-steps10 | steps 10 -> 20 | +0.250 [" in row  # the difference it isolates
    # of two earlier models one option away, the one nearer in value: 16 epochs against 8, not against 4
    row = next(line for line in lines if line.startswith("| adv-pgd-epochs16 "))
    assert "| adv-pgd | epochs 8 -> 16 | +0.000 [" in row
    # an option the pipeline's record predates reads as the default it was trained with
    row = next(line for line in lines if line.startswith("| adv-pgd-select-by-apgd "))
    assert "select_by pgd -> apgd" in row
    default = next(line for line in lines if line.startswith("| adv-pgd (default)"))
    assert "shipped recipe" in default and "10 min" in default and default.count(PENDING) == 1  # no clean cell
    assert recipe_tables(Cells({**result, "recipes": {}})) == []


def test_a_pipeline_trained_again_with_a_variants_recipe_is_shown_as_the_spread_between_two_runs():
    def cell(defense, hits):
        return {"defense": defense, "attack": "apgd", "eps": 0.3, "n": 4, "hits": hits, "k": 1, "steps": 100,
                "restarts": 1, "accuracy": hits.count("1") / 4, "ci95": [0.0, 1.0]}
    recipe = {"epochs": 8, "steps": 10, "width": 0.25, "seed": 0}
    variant = {"base": "adv-pgd", "change": {"epochs": 16}, "best_epoch": 11, "train_seconds": 1200,
               "train_config": {**recipe, "epochs": 16, "out": "adv-pgd-epochs16.ckpt", "workdir": "runs"}}
    pipelines = {"adv-pgd": {"training": {**recipe, "out": "adv-pgd.ckpt"}},
                 "adv-pgd-16ep": {"training": {**recipe, "epochs": 16, "out": "adv-pgd-16ep.ckpt", "workdir": "/x"},
                                  "train_seconds": 900, "default": True},
                 "adv-pgd-seed1": {"training": {**recipe, "epochs": 16, "seed": 1, "out": "adv-pgd-seed1.ckpt"}},
                 "adv-pgd-epochs16": {"training": {**variant["train_config"]}}}
    # where it ran and its file name are not the recipe; the variant's own export and another seed are no replicate
    assert replicates(pipelines, {"adv-pgd-epochs16": variant}) == {"adv-pgd-16ep": "adv-pgd-epochs16"}
    result = {"dataset": "mnist", "config": {"n": 4, "eot_steps": 50, "restarts": 1, "eot_samples": 8, "autoattack_eps": 0.3},
              "clean": {}, "pipelines": {k: pipelines[k] for k in ("adv-pgd", "adv-pgd-16ep")},
              "recipes": {"adv-pgd-epochs16": variant},
              "cells": {"a": cell("adv-pgd", "1100"), "b": cell("adv-pgd-epochs16", "1111"),
                        "c": cell("adv-pgd-16ep", "1110")}}
    lines = recipe_tables(Cells(result))
    row = next(line for line in lines if line.startswith("| adv-pgd-16ep "))
    assert "adv-pgd-epochs16's recipe, trained again" in row and "15 min" in row
    assert "| adv-pgd-epochs16 | another run | -0.250 [" in row


def test_the_recipe_stage_also_measures_a_pipeline_named_on_the_command_line():
    names = ("adv-trades", "adv-trades-epochs12", "adv-joint", "adv-through-purifier")
    config = Config(dataset="fashion-mnist", artifacts=ARTIFACTS, defenses=("adv-joint",))
    cells = plan("recipes", dict.fromkeys(names), config)
    assert {(d, t.attack, n) for d, t, n in cells} == {("adv-joint", "apgd", config.n),
                                                       ("adv-joint", "eot-pgd", config.n)}
    # without it, the study covers its own pipelines and variants, and no other served pipeline
    assert {d for d, _, _ in plan("recipes", dict.fromkeys(names), Config(dataset="fashion-mnist",
                                                                         artifacts=ARTIFACTS))} == {
        "adv-trades", "adv-trades-epochs12"}


def test_a_pipeline_on_its_own_input_shape_faces_only_attacks_on_itself_and_old_models_cells_are_dropped(tmp_path):
    from torch import nn

    from training.robustness.defenses import Defense
    from training.robustness.results import Results
    from training.robustness.threats import Threat

    defenses = {"at-32": Defense("at-32", "", nn.Identity()), "at-28": Defense("at-28", "", nn.Identity(), side=28)}
    cells = plan("autoattack", defenses, Config(dataset="mnist"))
    attacks = {name: {t.attack for d, t, _ in cells if d == name} for name in defenses}
    assert "transfer" in attacks["at-32"]  # crafted on the surrogate at the shared 32x32
    assert attacks["at-28"] == {"autoattack", "eot-pgd", "square"}
    results = Results(tmp_path / "mnist.json", "mnist", config={})
    for defense, fingerprint in (("at-28", "old"), ("at-28", "new"), ("at-32", "old")):
        results.cell(defense, Threat("square", 0.1 if fingerprint == "old" else 0.3),
                     {"n": 10, "accuracy": 0.5, "fingerprint": fingerprint})
    results.forget_other_models("at-28", "new")
    kept = json.loads((tmp_path / "mnist.json").read_text())["cells"].values()
    assert sorted((c["defense"], c["fingerprint"]) for c in kept) == [("at-28", "new"), ("at-32", "old")]
