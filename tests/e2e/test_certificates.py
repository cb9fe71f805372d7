"""Over real HTTP, on the committed artifacts: certifiable pipelines answer with a certificate, others without;
the certificate is the model's own, to one grey level; and no attack within a returned radius changes the
returned label."""

import json
import math

import httpx
import pytest
import torch

from bounds import CERTIFICATE_METHODS, LEVELS, RadiusSearch, certified_margin
from service.artifacts import load_module, read_manifest
from service.images import Preprocessing, decode_image
from tests.e2e.conftest import REAL_ARTIFACTS, real_datasets

PNG = {"content-type": "image/png"}
JSON = PNG | {"accept": "application/json"}
SAMPLES = 8


def certified_pipelines(dataset: str) -> list[str]:
    manifest = read_manifest(REAL_ARTIFACTS / dataset)
    return [name for name in manifest.pipelines if manifest.certificate(name) is not None]


def test_mnist_serves_a_certified_pipeline() -> None:
    assert certified_pipelines("mnist")


@pytest.mark.parametrize("dataset", real_datasets())
def test_certificates_come_with_certifiable_pipelines_only(real_server: str, dataset: str) -> None:
    manifest = read_manifest(REAL_ARTIFACTS / dataset)
    sample = (REAL_ARTIFACTS / dataset / "samples" / "000.png").read_bytes()
    with httpx.Client(base_url=real_server, timeout=30) as client:
        for name in manifest.pipelines:
            body = client.post("/defended-classify", content=sample, headers=PNG,
                               params={"dataset": dataset, "pipeline": name}).json()
            certificate = manifest.certificate(name)
            assert ("certified" in body) == ("certified_radius" in body) == (certificate is not None), name
            if certificate is not None:  # the radius is whole grey levels, and eps need not be one
                levels = body["certified_radius"] * LEVELS
                assert math.ceil(levels - 1e-3) - levels < 1e-3, (name, body)
                assert body["certified"] >= (body["certified_radius"] >= certificate.eps), name
                assert not body["certified"] or levels >= math.floor(certificate.eps * LEVELS) - 1e-3, name
        listed = client.get("/models").json()["datasets"][dataset]["pipelines"]
    for name in certified_pipelines(dataset):
        assert listed[name]["certificate"]["eps"] == manifest.certificate(name).eps
        assert listed[name]["metrics"]["certified"]["accuracy"] > 0


@pytest.mark.parametrize("dataset", real_datasets())
def test_no_attack_within_the_returned_radius_changes_the_label(real_server: str, dataset: str) -> None:
    samples = json.loads((REAL_ARTIFACTS / dataset / "manifest.json").read_text())["samples"][:SAMPLES]
    checked = 0
    with httpx.Client(base_url=real_server, timeout=120) as client:
        for pipeline in certified_pipelines(dataset):
            for sample in samples:
                png = (REAL_ARTIFACTS / dataset / sample["file"]).read_bytes()
                params = {"dataset": dataset, "pipeline": pipeline}
                answer = client.post("/defended-classify", content=png, headers=PNG, params=params).json()
                radius = answer["certified_radius"]
                if radius == 0:
                    continue
                for attack in ({"attack": "pgd", "steps": 50, "alpha": radius / 10}, {"attack": "fgsm"}):
                    adv = client.post("/attack", content=png, headers=JSON,
                                      params={**params, **attack, "target": "pipeline", "eps": radius}).json()
                    assert adv["eps"] == radius and adv["linf"] <= radius + 1e-6, (pipeline, sample, attack)
                    assert adv["original"]["label"] == answer["label"], (pipeline, sample)
                    assert adv["adversarial"]["label"] == answer["label"], (pipeline, sample, attack, radius)
                checked += 1
    if certified_pipelines(dataset):
        assert checked >= SAMPLES // 2, "most samples should carry a non-zero radius"


@pytest.mark.parametrize("dataset", real_datasets())
def test_the_certificate_over_http_is_the_models_own_to_one_grey_level(real_server: str, dataset: str) -> None:
    folder = REAL_ARTIFACTS / dataset
    manifest = read_manifest(folder)
    raw = json.loads((folder / "manifest.json").read_text())
    for pipeline in certified_pipelines(dataset):
        certificate, file = manifest.certificate(pipeline), manifest.pipelines[pipeline].classifier
        model = load_module((folder / file).read_bytes(), folder / file, torch.device("cpu"), True, CERTIFICATE_METHODS)
        prep = Preprocessing.from_manifest(manifest.pipeline_input_shape(pipeline), raw["preprocessing"])
        pngs = [(folder / s["file"]).read_bytes() for s in raw["samples"][:SAMPLES]]
        x = torch.stack([decode_image(png, prep, 10**6) for png in pngs])
        _, certified, found = RadiusSearch(certificate.radius_prior).certify(model, x, certificate.eps)
        with httpx.Client(base_url=real_server, timeout=60) as client:
            answers = [client.post("/defended-classify", content=png, headers=PNG,
                                   params={"dataset": dataset, "pipeline": pipeline}).json() for png in pngs]
        assert [a["certified"] for a in answers] == certified.tolist()
        assert [a["certified_radius"] for a in answers] == [math.floor(f / LEVELS * 1e6) / 1e6 for f in found.tolist()]
        with torch.no_grad():  # proved at the radius, and not one grey level above it
            labels = model(x).argmax(1)
            at = certified_margin(model.bounds(x, found / LEVELS, labels)[1], labels) > 0
            above = certified_margin(model.bounds(x, (found + 1) / LEVELS, labels)[1], labels) > 0
        assert at[found > 0].all() and not above[found < LEVELS].any()
