"""Start-up refuses broken settings or artifacts: the process exits before serving, with one clear line."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.config import REPO_ROOT
from tests.e2e.conftest import free_port


def _tamper(root: Path) -> None:
    (root / "mnist" / "classifier.pt").write_bytes(b"tampered")


def _drop_manifest(root: Path) -> None:
    (root / "fashion-mnist" / "manifest.json").unlink()


def _drop_model(root: Path) -> None:
    (root / "mnist" / "autoencoder-pgd.pt").unlink()


def _garble_manifest(root: Path) -> None:
    (root / "mnist" / "manifest.json").write_text('{"format_version": 1, "dataset": ')


def _rename_purifier(root: Path) -> None:
    """A model name that could not be a query value (spaces, capitals, a path) is refused, not silently ignored."""
    path = root / "mnist" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["models"]["Autoencoder V2"] = manifest["models"].pop("autoencoder-pgd")
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "break_it, settings, named",
    [
        (_tamper, {}, "mnist/classifier.pt: sha256"),
        (_drop_manifest, {}, "fashion-mnist/manifest.json: missing"),
        (_drop_model, {}, "mnist/autoencoder-pgd.pt: missing"),
        (_garble_manifest, {}, "mnist/manifest.json: not valid JSON"),
        (_rename_purifier, {}, "invalid manifest (1 error(s): Value error, model name 'Autoencoder V2' is not of the form"),
        (lambda root: None, {"PURIFIER_MAX_BATCH_SIZE": "0"}, "invalid PURIFIER_* settings"),
        (lambda root: None, {"PURIFIER_CORS_ORIGINS": "not json"}, "invalid PURIFIER_* settings"),
    ],
    ids=[
        "tampered-model",
        "missing-manifest",
        "missing-model",
        "manifest-not-json",
        "manifest-unknown-purifier",
        "bad-setting",
        "setting-not-json",
    ],
)
def test_start_up_fails_with_one_line(tiny_artifacts: Path, tmp_path: Path, break_it, settings, named: str) -> None:
    root = Path(shutil.copytree(tiny_artifacts, tmp_path / "artifacts"))
    break_it(root)
    env = {**os.environ, "PURIFIER_ARTIFACTS_DIR": str(root), "PURIFIER_PORT": str(free_port()), **settings}
    command = [sys.executable, "-m", "service"]
    done = subprocess.run(command, check=False, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "start-up failed" in lines[0] and named in lines[0], done.stderr


def test_a_tampered_bundled_sample_fails_start_up_with_one_line(tmp_path: Path) -> None:
    root = Path(shutil.copytree(REPO_ROOT / "artifacts", tmp_path / "artifacts"))
    with (root / "mnist" / "samples" / "003.png").open("ab") as png:
        png.write(b"x")
    env = {**os.environ, "PURIFIER_ARTIFACTS_DIR": str(root), "PURIFIER_PORT": str(free_port())}
    done = subprocess.run([sys.executable, "-m", "service"], check=False, cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode != 0 and len(lines) == 1, done.stderr
    assert "start-up failed" in lines[0] and "mnist/samples/003.png: sha256" in lines[0]
