"""Pipelines named by the manifest: each is served and listed, ?pipeline= selects it, the manifest's default
answers; ?purifier= puts any served purifier before the manifest's classifier without listing that pair."""

import base64
import io
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from service.artifacts import read_manifest
from service.config import Settings
from service.errors import ArtifactError
from tests.service.tiny_artifacts import (
    CENTRES,
    CERTIFICATE,
    CERTIFIED_SIDE,
    PIPELINES,
    brightness_png,
    write_dataset,
)

PNG = {"content-type": "image/png"}


@pytest.fixture(scope="module")
def pipeline_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pipelines")
    write_dataset(root / "mnist", "mnist", pipelines=True)
    return root


@pytest.fixture
def pipeline_client(pipeline_artifacts: Path) -> Iterator[TestClient]:
    settings = Settings(artifacts_dir=pipeline_artifacts, datasets=("mnist",))
    with TestClient(create_app(settings)) as client:
        yield client


def _defend(client: TestClient, level: int, **params: str):
    return client.post("/defended-classify", content=brightness_png(level), headers=PNG, params=params)


def test_the_manifests_default_pipeline_answers(pipeline_client: TestClient) -> None:
    body = _defend(pipeline_client, 3).json()
    assert body["pipeline"] == "autoencoder+mirror" and body["label"] == 6  # the mirror classifier
    assert body["undefended"]["label"] == 3 and body["reconstruction_mse"] is not None


def test_pipeline_selects_the_named_models(pipeline_client: TestClient) -> None:
    body = _defend(pipeline_client, 2, pipeline="mirror").json()
    assert (body["pipeline"], body["label"], body["reconstruction_mse"]) == ("mirror", 7, None)
    assert body["suspected_adversarial"]  # the labels disagree
    paper = _defend(pipeline_client, 2, purifier="autoencoder").json()
    assert (paper["label"], paper["undefended"]["label"], paper["suspected_adversarial"]) == (2, 2, False)
    assert paper["pipeline"] == "autoencoder" and paper["reconstruction_mse"] is not None


def test_purifier_keeps_selecting_that_purifier_before_the_manifests_classifier(pipeline_client: TestClient) -> None:
    body = _defend(pipeline_client, 4, purifier="autoencoder-fgsm").json()
    assert (body["pipeline"], body["label"]) == ("autoencoder-fgsm", 4)
    both = _defend(pipeline_client, 4, purifier="autoencoder", pipeline="mirror")
    assert both.status_code == 422 and both.json()["error"] == "invalid_parameters"
    unlisted = _defend(pipeline_client, 4, pipeline="autoencoder-fgsm")  # a composition, not a named pipeline
    assert unlisted.status_code == 422 and unlisted.json()["error"] == "unknown_pipeline"
    unknown = _defend(pipeline_client, 4, purifier="no-such-purifier")
    assert unknown.status_code == 422 and unknown.json()["error"] == "unknown_purifier"


@pytest.mark.parametrize("name", ["no-such-pipeline", "../classifier.pt"])
def test_an_unknown_pipeline_gets_422_listing_the_served_ones(pipeline_client: TestClient, name: str) -> None:
    response = _defend(pipeline_client, 1, pipeline=name)
    assert response.status_code == 422 and response.json()["error"] == "unknown_pipeline"
    for served in PIPELINES:
        assert served in response.json()["detail"]
    assert "autoencoder-fgsm" not in response.json()["detail"]  # a purifier's composition is not listed


def test_models_lists_every_pipeline_with_its_numbers(pipeline_client: TestClient) -> None:
    info = pipeline_client.get("/models").json()["datasets"]["mnist"]
    assert info["default_pipeline"] == "autoencoder+mirror"
    assert info["classifiers"] == ["certified", "classifier", "mirror"]
    assert info["pipelines"]["mirror"] == {
        "purifier": None, "classifier": "mirror", "input_shape": [1, 32, 32],
        "description": "the mirror classifier alone", "method": "none", "certificate": None,
        "metrics": {"clean_accuracy": 0.5}}
    assert info["pipelines"]["certified"]["certificate"]["eps"] == CERTIFICATE["eps"]
    assert info["pipelines"]["certified"]["input_shape"] == [1, CERTIFIED_SIDE, CERTIFIED_SIDE]
    assert info["input_shape"] == [1, 32, 32]
    assert set(info["pipelines"]) == set(PIPELINES)  # the purifiers' compositions are not listed
    assert info["purifiers"] == ["autoencoder", "autoencoder-fgsm", "autoencoder-pgd"]
    schema = pipeline_client.get("/openapi.json").json()
    parameters = {p["name"]: p for p in schema["paths"]["/defended-classify"]["post"]["parameters"]}
    assert set(parameters["pipeline"]["schema"]["anyOf"][0]["enum"]) == set(info["pipelines"])


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("classifier", "nothing.pt", "'nothing.pt' is not the file of a classifier"),
        ("classifier", "autoencoder.pt", "'autoencoder.pt' is not the file of a classifier"),
        ("purifier", "mirror.pt", "'mirror.pt' is not the file of a purifier"),
    ],
)
def test_a_pipeline_naming_a_missing_or_wrong_kind_of_file_fails_start_up(
    pipeline_artifacts: Path, tmp_path: Path, key: str, value: str, message: str
) -> None:
    folder = shutil.copytree(pipeline_artifacts / "mnist", tmp_path / "mnist")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["pipelines"]["mirror"][key] = value
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=message):
        read_manifest(folder)


def test_attack_targets_the_classifier_or_a_whole_pipeline(pipeline_client: TestClient) -> None:
    json_accept = {**PNG, "accept": "application/json"}
    alone = pipeline_client.post("/attack", content=brightness_png(3), headers=json_accept, params={"eps": 0.2})
    assert alone.status_code == 200 and (alone.json()["target"], alone.json()["original"]["label"]) == ("classifier", 3)
    params = {"eps": 0.2, "target": "pipeline", "attack": "pgd", "steps": 3, "eot": 2}
    whole = pipeline_client.post("/attack", content=brightness_png(3), headers=json_accept, params=params).json()
    assert whole["target"] == "autoencoder+mirror" and whole["original"]["label"] == 6  # through the mirror classifier
    assert whole["linf"] <= 0.2 + 1e-9
    named = pipeline_client.post("/attack", content=brightness_png(3), headers=json_accept,
                                 params={**params, "pipeline": "mirror"}).json()
    assert named["target"] == "mirror"
    unknown = pipeline_client.post("/attack", content=brightness_png(3), headers=json_accept,
                                   params={**params, "pipeline": "nope"})
    assert unknown.status_code == 422 and unknown.json()["error"] == "unknown_pipeline"
    stray = pipeline_client.post("/attack", content=brightness_png(3), headers=json_accept, params={"pipeline": "mirror"})
    assert stray.status_code == 422


def test_a_certifiable_pipeline_answers_with_its_certificate_and_others_without(pipeline_client: TestClient) -> None:
    outcomes = set()
    for level in range(10):
        body = _defend(pipeline_client, level, pipeline="certified").json()
        assert body["pipeline"] == "certified" and body["label"] == level
        # the tiny network's bounds are exact: a flat image's radius is its distance to the nearest class boundary
        brightness = round(level / 9 * 255) / 255
        exact = min(abs(brightness - (a + b) / 2) for a, b in zip(CENTRES, CENTRES[1:]))
        assert body["certified_radius"] == math.floor(math.floor(exact * 255) / 255 * 1e6) / 1e6, level
        assert body["certified"] == (exact > CERTIFICATE["eps"]), level
        outcomes.add(body["certified"])
    assert outcomes == {True, False}, "the tiny network should certify some inputs and not others"
    for params in ({"pipeline": "mirror"}, {"pipeline": "autoencoder+mirror"}, {"purifier": "autoencoder"}):
        body = _defend(pipeline_client, 3, **params).json()
        assert "certified" not in body and "certified_radius" not in body


@pytest.mark.parametrize("detail", ["topk", "label"])
def test_the_certified_radius_follows_the_response_detail(pipeline_artifacts: Path, detail: str) -> None:
    settings = Settings(artifacts_dir=pipeline_artifacts, datasets=("mnist",), response_detail=detail)
    with TestClient(create_app(settings)) as client:
        bodies = [_defend(client, level, pipeline="certified").json() for level in range(10)]
    with TestClient(create_app(Settings(artifacts_dir=pipeline_artifacts, datasets=("mnist",)))) as client:
        full = [_defend(client, level, pipeline="certified").json() for level in range(10)]
    for body, exact in zip(bodies, full, strict=True):
        assert body["certified"] == exact["certified"]
        if detail == "label":
            assert "certified_radius" not in body and "probabilities" not in body
        else:  # rounded down, so it still holds
            assert body["certified_radius"] <= exact["certified_radius"]
            assert exact["certified_radius"] - body["certified_radius"] < 10**-settings.response_decimals


def test_a_model_with_its_own_input_shape_gets_images_resized_to_it(pipeline_client: TestClient) -> None:
    side = CERTIFIED_SIDE
    json_accept = {**PNG, "accept": "application/json"}
    params = {"eps": 0.1, "target": "pipeline", "pipeline": "certified", "attack": "fgsm"}
    for size in ((32, 32), (28, 28), (57, 40)):  # any upload: the certified pipeline sees it at 28x28
        body = pipeline_client.post("/attack", content=brightness_png(5, size=size), headers=json_accept,
                                    params=params).json()
        for key in ("image", "original_image"):
            assert Image.open(io.BytesIO(base64.b64decode(body[key]))).size == (side, side)
        assert _defend(pipeline_client, 5, pipeline="certified").status_code == 200
    classifier = pipeline_client.post("/attack", content=brightness_png(5), headers=json_accept, params={"eps": 0.1})
    assert Image.open(io.BytesIO(base64.b64decode(classifier.json()["image"]))).size == (32, 32)


def test_a_pipeline_whose_purifier_and_classifier_take_different_shapes_fails_start_up(
    pipeline_artifacts: Path, tmp_path: Path
) -> None:
    folder = shutil.copytree(pipeline_artifacts / "mnist", tmp_path / "mnist")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["pipelines"]["certified"]["purifier"] = "autoencoder.pt"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"makes \[1, 32, 32\] images, classifier 'certified' takes \[1, 28, 28\]"):
        read_manifest(folder)


def test_a_manifest_certificate_on_a_file_without_bounds_fails_at_startup(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path / "mnist", "mnist", pipelines=True)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["models"]["mirror"]["certificate"] = manifest["models"]["certified"]["certificate"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="lacks"):
        with TestClient(create_app(Settings(artifacts_dir=tmp_path, datasets=("mnist",)))):
            pass
