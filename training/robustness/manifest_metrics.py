"""The served pipelines' measured accuracy, written into the manifest that names them (``/models`` shows it)."""

from __future__ import annotations

import json
from pathlib import Path

from .. import data
from . import certified
from .defenses import PIPELINE_DEFENSES, Defense
from .results import Cells, Results
from .threats import Threat


def record_pipelines(results: Results, defenses: dict[str, Defense], path: Path, dataset: str) -> None:
    """Each served pipeline's clean, AutoAttack and worst-case accuracy, into the manifest at ``path`` that names
    it, and beside the study's results."""
    manifest, cells = json.loads(path.read_text()), Cells(results.data)
    eps = data.THREAT_EPS[dataset]
    for name, pipeline in manifest.get("pipelines", {}).items():
        defense = PIPELINE_DEFENSES.get(name, name)
        if defense not in defenses:
            continue
        threat, n = Threat("autoattack", eps).for_defense(defenses[defense]), cells.autoattack_n(defense, eps)
        autoattack = None if n is None else cells.get(defense, "autoattack", eps, n, k=threat.k)
        worst_n = cells.worst_case_n(defense, eps)  # without AutoAttack, the rest of the suite's worst case
        worst, attacks = cells.worst_case(defense, eps, worst_n) if worst_n else (None, 0)
        certificate = results.data["certified"].get(defense)
        pipeline["metrics"] = {
            "clean": {k: v for k, v in results.data["clean"][defense].items() if k != "fingerprint"},
            "eps": eps,
            "certified": None if certificate is None else {
                **{k: v for k, v in certificate.items() if k not in ("hits", "fingerprint")},
                "violations": certified.violations(certificate, [c for c in cells.all if c["defense"] == defense])},
            "autoattack": None if autoattack is None else {
                "version": "rand" if threat.k > 1 else "standard", **cells.subset(autoattack, n),
                "notes": autoattack.get("notes", [])},
            "worst_case": None if worst is None else {**worst, "attacks": attacks},
        }
        models = {manifest["models"][m]["file"]: m for m in manifest["models"]}
        training = manifest["models"][models[pipeline["classifier"]]].get("training", {})
        step = f"train-{str(training.get('out', '')).removesuffix('.ckpt')}"
        results.put("pipelines", name, {
            "defense": defense, "purifier": models.get(pipeline["purifier"]), "classifier": models[pipeline["classifier"]],
            "training": training, "train_seconds": manifest.get("training_wall_time_s", {}).get(step),
            "default": name == manifest.get("default_pipeline"), **pipeline["metrics"]})
    for name, row in results.data["pipelines"].items():  # a pipeline dropped from the manifest stays measured
        row["served"] = name in manifest.get("pipelines", {})
    results.save()
    path.write_text(json.dumps(manifest, indent=2) + "\n")
