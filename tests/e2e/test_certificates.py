"""Over real HTTP, on the committed artifacts: certifiable pipelines answer with a certificate, others without,
and no attack within a returned radius changes the returned label."""

import json

import httpx
import pytest

from service.artifacts import read_manifest
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
            if certificate is not None:
                assert body["certified"] == (body["certified_radius"] >= certificate.eps), name
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
