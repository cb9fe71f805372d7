"""The demo page's server side: GET / and its static files, GET /samples, and the samples' start-up checks."""

import json
import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.artifacts import read_manifest
from service.config import Settings
from service.errors import ArtifactError
from service.samples import load_samples


def test_the_page_and_its_assets_are_served_without_anything_external(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert sorted(assets) == ["/static/app.js", "/static/style.css"]
    for path in assets:  # and the modules they import, transitively
        response = client.get(path)
        assert response.status_code == 200 and "http://" not in response.text and "https://" not in response.text
        assets += [f"/static/{name}" for name in re.findall(r'from "\./([\w-]+\.js)"', response.text)]
    assert sorted(set(assets)) == ["/static/api.js", "/static/app.js", "/static/panels.js", "/static/style.css"]
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/missing.js").json()["error"] == "not_found"


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_samples_are_listed_and_served(client: TestClient, dataset: str) -> None:
    listed = client.get("/samples", params={"dataset": dataset}).json()
    assert listed["dataset"] == dataset
    assert [(s["index"], s["label"], s["class_name"]) for s in listed["samples"]] == [
        (level, level, f"class-{level}") for level in range(10)
    ]
    for sample in listed["samples"][::3]:
        png = client.get(sample["url"])
        assert png.headers["content-type"] == "image/png"
        classified = client.post("/classify", content=png.content, headers={"content-type": "image/png"}).json()
        assert classified["label"] == sample["label"]


@pytest.mark.parametrize(
    "path, status, code", [("/samples/10", 404, "not_found"), ("/samples/x", 422, "invalid_request")]
)
def test_missing_samples(client: TestClient, path: str, status: int, code: str) -> None:
    response = client.get(path)
    assert response.status_code == status and response.json()["error"] == code
    assert client.get("/samples", params={"dataset": "svhn"}).json()["error"] == "unknown_dataset"


def _copy(tiny_artifacts: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_artifacts / "mnist", tmp_path / "mnist"))


def test_a_tampered_sample_stops_start_up(tiny_artifacts: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_artifacts, tmp_path)
    (folder / "samples" / "004.png").write_bytes(b"tampered")
    with pytest.raises(ArtifactError, match=r"samples/004\.png: sha256"):
        load_samples(folder, read_manifest(folder))
    app = create_app(Settings(artifacts_dir=tmp_path, datasets=("mnist",)))
    with pytest.raises(ArtifactError, match=r"samples/004\.png: sha256"), TestClient(app):
        pass


def test_a_manifest_without_samples_serves_none(tiny_artifacts: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_artifacts, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["samples"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert load_samples(folder, read_manifest(folder)) == []
    manifest["samples"] = [{"file": "samples/000.png", "label": 12}]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="label 12"):
        load_samples(folder, read_manifest(folder))
