"""Schemathesis against a real server's /openapi.json, every operation and phase: no 5xx, every response as
documented, no stack trace, every error the one JSON shape.

The suite runs a bounded number of examples per operation; docs/reliability.md records a longer run
of the same command. ``positive_data_acceptance`` is left out: it expects any schema-valid body to be
accepted, and a schema can only say "binary" or "base64 string", not "a decodable image", so random
bytes rightly get a 422 ``invalid_image``. Every other built-in check runs.
"""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from service.config import REPO_ROOT
from tests.reliability.conftest import KEY, Server

MAX_EXAMPLES = 20
SEED = 20231205


def schemathesis_command(url: str, reports: Path, max_examples: int, seed: int) -> list[str]:
    """The CLI run (also the one docs/reliability.md records, with more examples)."""
    return [
        str(Path(sys.executable).parent / "schemathesis"), "run", f"{url}/openapi.json",
        "--checks", "all", "--exclude-checks", "positive_data_acceptance",
        "--header", f"X-API-Key: {KEY}",
        "--max-examples", str(max_examples), "--seed", str(seed), "--workers", "1",
        "--generation-database", "none", "--no-color",
        "--report", "json,har", "--report-json-path", str(reports / "report.json"),
        "--report-har-path", str(reports / "requests.har"),
    ]  # fmt: skip


def test_every_operation_conforms_and_never_fails(hostile_server: Server, tmp_path: Path, measured: dict) -> None:
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.reliability.schemathesis_hooks", "PYTHONPATH": str(REPO_ROOT)}
    command = schemathesis_command(hostile_server.url, tmp_path, MAX_EXAMPLES, SEED)
    # cwd=tmp_path: Schemathesis keeps a crash cache in ./.schemathesis/
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    entries = json.loads((tmp_path / "requests.har").read_text())["log"]["entries"]
    statuses = Counter(entry["response"]["status"] for entry in entries)
    assert report["operations"]["tested"] == report["operations"]["selected"] >= 7
    assert not [status for status in statuses if status >= 500], statuses
    measured[f"schemathesis, {MAX_EXAMPLES} examples/operation"] = {
        "operations": report["operations"]["tested"],
        "test_cases": report["test_cases"]["generated"],
        "responses_by_status": dict(sorted(statuses.items())),
    }
