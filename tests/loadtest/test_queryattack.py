"""``python -m loadtest.queryattack`` end to end on a tiny budget: real servers, real attack clients, the
JSON and the rendered block of the security page."""

import json
import shutil
from pathlib import Path

import pytest

from loadtest.queryattack import __main__ as runner
from render.queryattack import BLOCK, DOC
from render.markdown import markers
from service.config import REPO_ROOT


def test_the_runner_measures_attacks_and_benign_clients_and_renders_them(tmp_path: Path) -> None:
    if not (REPO_ROOT / "data" / "MNIST").is_dir() or not (REPO_ROOT / "artifacts" / "mnist").is_dir():
        pytest.skip("needs the MNIST test set and the committed artifacts")
    doc, out = tmp_path / "security.md", tmp_path / "queries.json"
    shutil.copy(DOC, doc)
    runner.main(["--dataset", "mnist", "--n", "2", "--budget", "60", "--threads", "2", "--benign-clients", "2",
                 "--per-client", "10", "--skip", "overhead", "--out", str(out), "--doc", str(doc),
                 "--work", str(tmp_path / "work")])
    entry = json.loads(out.read_text())["mnist"]
    summaries = {(s["attack"], s["detail"], s["defense"]): s for s in entry["attacks"]["summaries"]}
    assert set(summaries) == {(a, d, m) for m, runs in runner.CONFIGS.items() for a, d in runs}
    for summary in summaries.values():
        assert summary["attacked"] + summary["skipped_misclassified"] == 2
    blocked = summaries[("square", "label", "block")]
    assert blocked["refused_queries"] > 0 and blocked["flagged"] == blocked["attacked"]
    assert [b["scenario"] for b in entry["benign"]] == ["stream", "retry", "edits", "mix"]
    assert all(b["requests"] == 20 for b in entry["benign"])
    text = doc.read_text()
    begin, end = markers(BLOCK)
    block = text[text.index(begin) : text.index(end)]
    assert "| hopskipjump | label | block |" in block and "| edits | 2 | 20 |" in block
