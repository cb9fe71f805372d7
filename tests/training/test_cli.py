"""The CLI end to end on a tiny subset: every step runs, the artifacts load, the docs render."""

import json
import subprocess
import sys

import pytest

from training.__main__ import COMMANDS

from .conftest import DATA_ROOT, REPO


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help(command):
    out = subprocess.run([sys.executable, "-m", "training", command, "--help"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert "--dataset" in out


def test_all_on_a_tiny_subset(tmp_path):
    cmd = [sys.executable, "-m", "training", "all", "--dataset", "mnist", "--root", str(DATA_ROOT),
           "--workdir", str(tmp_path / "runs"), "--artifacts", str(tmp_path / "art"),
           "--docs", str(tmp_path / "docs"), "--limit", "48", "--pgd-sweep-n", "8", "--dry-run", "--threads", "1"]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, timeout=600)
    manifest = json.loads((tmp_path / "art" / "mnist" / "manifest.json").read_text())
    assert set(manifest["models"]) == {"classifier", "autoencoder", "autoencoder-fgsm", "autoencoder-pgd"}
    assert manifest["metrics"]["table"]["fgsm-0.6"]["undefended"]["n"] == 48
    assert manifest["models"]["autoencoder"]["selection"]["chosen"].startswith("ablation/")
    assert "timings" not in manifest and manifest["training_wall_time_s"]["train-classifier"] >= 0
    results = (tmp_path / "docs" / "results.md").read_text()
    assert "The paper's table beside ours" in results
    assert (tmp_path / "docs" / "figures" / "mnist-sweep.png").stat().st_size > 1000

    before = manifest["metrics"]
    subprocess.run([*cmd[:3], "evaluate", *cmd[4:], "--latency-only"], cwd=REPO, check=True, capture_output=True,
                   timeout=300)
    after = json.loads((tmp_path / "art" / "mnist" / "manifest.json").read_text())["metrics"]
    assert {k: v for k, v in after.items() if k != "latency"} == {k: v for k, v in before.items() if k != "latency"}
    assert after["latency"][0]["load_average_1m"] >= 0 and after["latency"] != before["latency"]
