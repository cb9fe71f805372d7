"""Over real HTTP, on the committed artifacts: every pipeline the manifest names is served under its name."""

import json

import httpx

from service.artifacts import read_manifest
from tests.e2e.conftest import REAL_ARTIFACTS

PNG = {"content-type": "image/png"}


def test_each_named_pipeline_answers_with_its_own_classifier(real_server: str) -> None:
    manifest = read_manifest(REAL_ARTIFACTS / "mnist")
    sample = (REAL_ARTIFACTS / "mnist" / "samples" / "000.png").read_bytes()
    label = json.loads((REAL_ARTIFACTS / "mnist" / "manifest.json").read_text())["samples"][0]["label"]
    with httpx.Client(base_url=real_server, timeout=30) as client:
        default = client.post("/defended-classify", content=sample, headers=PNG, params={"dataset": "mnist"}).json()
        assert default["pipeline"] == manifest.default_pipeline
        for name, pipeline in manifest.pipelines.items():
            body = client.post("/defended-classify", content=sample, headers=PNG,
                               params={"dataset": "mnist", "pipeline": name}).json()
            assert body["pipeline"] == name and body["label"] == label, name
            assert body["model"] == manifest.files[pipeline.classifier].sha256[:12], name
            assert (body["reconstruction_mse"] is None) == (pipeline.purifier is None), name
        listed = client.get("/models").json()["datasets"]["mnist"]["pipelines"]
        assert set(listed) == set(manifest.pipelines)
        unknown = client.post("/defended-classify", content=sample, headers=PNG,
                              params={"dataset": "mnist", "pipeline": "no-such-pipeline"})
    assert unknown.status_code == 422 and unknown.json()["error"] == "unknown_pipeline"
    assert all(name in unknown.json()["detail"] for name in manifest.pipelines)
