"""deploy/k8s: both kustomize variants rendered and checked against the Kubernetes API schemas, offline."""

import copy
from typing import Any

import kubernetes_validate
import pytest

from tests.deploy.files import K8S, K8S_VARIANTS, k8s_documents, kustomize, of_kind

# The oldest release the manifests target (the preStop `sleep` action is on by default since 1.30) and the newest
# whose schemas kubernetes-validate ships.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())


def schema_errors(documents: list[dict[str, Any]], version: str) -> list[str]:
    errors = []
    for doc in documents:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
    return errors


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("variant", K8S_VARIANTS)
def test_manifests_are_valid_kubernetes(variant: str, version: str) -> None:
    documents = kustomize(K8S / variant)
    assert {doc["kind"] for doc in documents} == {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }
    assert schema_errors(documents, version) == []


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_schema_check_rejects_a_misspelt_field(version: str) -> None:
    deployment = copy.deepcopy(of_kind(kustomize(K8S / "base"), "Deployment"))
    main = deployment["spec"]["template"]["spec"]["containers"][0]
    main["readinesProbe"] = main.pop("readinessProbe")
    (error,) = schema_errors([deployment], version)
    assert "'readinesProbe' was unexpected" in error


def container(documents: list[dict[str, Any]]) -> dict[str, Any]:
    (only,) = of_kind(documents, "Deployment")["spec"]["template"]["spec"]["containers"]
    return only


def test_deployment_probes_resources_and_graceful_shutdown() -> None:
    pod = of_kind(kustomize(K8S / "base"), "Deployment")["spec"]["template"]["spec"]
    (main,) = pod["containers"]
    assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert set(main["resources"]["requests"]) == set(main["resources"]["limits"]) == {"cpu", "memory"}
    assert main["lifecycle"]["preStop"]["sleep"]["seconds"] < pod["terminationGracePeriodSeconds"]
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_gpu_variant_requests_a_gpu_and_runs_on_cuda() -> None:
    documents = k8s_documents()
    base, gpu = container(documents["base"]), container(documents["gpu"])
    assert "nvidia.com/gpu" not in base["resources"]["limits"]
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1
    environment = {item["name"]: item.get("value") for item in gpu["env"]}
    assert environment["PURIFIER_DEVICE"] == "cuda"
    assert [item["name"] for item in gpu["env"]] == [item["name"] for item in base["env"]]


@pytest.mark.parametrize("variant", K8S_VARIANTS)
def test_service_and_autoscaler_point_at_the_deployment(variant: str) -> None:
    documents = kustomize(K8S / variant)
    deployment, service = of_kind(documents, "Deployment"), of_kind(documents, "Service")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert of_kind(documents, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    port_names = {port["name"] for port in container(documents)["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= port_names
    hpa = of_kind(documents, "HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
