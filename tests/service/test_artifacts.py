import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from service.app import create_app
from service.artifacts import load_dataset, resolve_device
from service.config import Settings
from service.errors import ArtifactError
from tests.service.tiny_artifacts import THRESHOLD


@pytest.fixture
def copy(tiny_artifacts: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_artifacts, tmp_path / "artifacts"))


def _edit_manifest(folder: Path, edit) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def test_loads_verifies_and_warms_up(tiny_artifacts: Path) -> None:
    artifacts = load_dataset(tiny_artifacts / "mnist", torch.device("cpu"))
    assert set(artifacts.purifiers) == {"autoencoder", "autoencoder-fgsm", "autoencoder-pgd"}
    assert artifacts.manifest.detector_threshold("autoencoder") == THRESHOLD
    assert artifacts.manifest.detector_threshold("autoencoder-pgd") is None
    assert artifacts.preprocessing.height == 32 and len(artifacts.model_id("classifier")) == 12


def test_optimize_for_inference_keeps_outputs(tiny_artifacts: Path) -> None:
    plain = load_dataset(tiny_artifacts / "mnist", torch.device("cpu"))
    optimized = load_dataset(tiny_artifacts / "mnist", torch.device("cpu"), optimize_classifier=True)
    batch = torch.rand(4, 1, 32, 32)
    with torch.inference_mode():
        assert torch.allclose(plain.classifier(batch), optimized.classifier(batch))


def _tamper(folder: Path) -> None:
    with (folder / "autoencoder-pgd.pt").open("ab") as handle:
        handle.write(b"\0")


def _drop_threshold(folder: Path) -> None:
    _edit_manifest(folder, lambda m: m["models"]["autoencoder"].pop("detector"))


def _wrong_dataset(folder: Path) -> None:
    _edit_manifest(folder, lambda m: m.update(dataset="cifar10"))


def _unknown_classifier(folder: Path) -> None:
    _edit_manifest(folder, lambda m: m.update(classifier="resnet"))


@pytest.mark.parametrize(
    "break_it, names",
    [
        (_tamper, "autoencoder-pgd.pt: sha256"),
        (lambda f: (f / "classifier.pt").unlink(), "classifier.pt: missing"),
        (lambda f: (f / "manifest.json").unlink(), "manifest.json: missing"),
        (lambda f: (f / "manifest.json").write_text("{not json"), "manifest.json: not valid JSON"),
        (_drop_threshold, "manifest.json: invalid manifest"),
        (_wrong_dataset, "manifest.json: dataset 'cifar10'"),
        (_unknown_classifier, "manifest.json: invalid manifest"),
        (lambda f: (f / "classifier.pt").write_bytes(b"x"), "classifier.pt: sha256"),
    ],
    ids=[
        "tampered",
        "missing-model",
        "missing-manifest",
        "bad-json",
        "no-threshold",
        "wrong-dataset",
        "unknown-model",
        "garbage",
    ],
)
def test_a_broken_artifact_is_named(copy: Path, break_it, names: str) -> None:
    break_it(copy / "mnist")
    with pytest.raises(ArtifactError, match=names.replace(".", r"\.")):
        load_dataset(copy / "mnist", torch.device("cpu"))


def test_a_broken_artifact_stops_start_up_with_one_clear_line(copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    _tamper(copy / "fashion-mnist")
    app = create_app(Settings(artifacts_dir=copy))
    with caplog.at_level(logging.ERROR, logger="service.app"), pytest.raises(ArtifactError), TestClient(app):
        pass
    lines = [r.getMessage() for r in caplog.records if r.name == "service.app"]
    assert len(lines) == 1 and "fashion-mnist/autoencoder-pgd.pt" in lines[0]
    assert not app.state.runtime.ready


def test_auto_device_is_cuda_only_when_available() -> None:
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ArtifactError):
            resolve_device("cuda")
