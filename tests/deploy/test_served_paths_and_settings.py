"""What the deployment files ask of the app exists: every probed or scraped path answers 200 from the real app, and
every PURIFIER_* variable they set is a setting of service/config.py with a value it accepts."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from tests.deploy.files import (
    PROMETHEUS,
    compose,
    dockerfile_instructions,
    dockerfile_pairs,
    k8s_documents,
    load_yaml,
    of_kind,
    stage,
)

PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


def url_paths(command: list[str]) -> set[str]:
    return {urlsplit(arg).path for arg in command if arg.startswith(("http://", "https://"))}


def dockerfile_paths() -> set[str]:
    (healthcheck,) = [i for i in dockerfile_instructions() if i.keyword == "HEALTHCHECK"]
    return url_paths(healthcheck.exec_form(after="CMD"))


def compose_paths() -> set[str]:
    services = compose()["services"].values()
    return {
        path for service in services if "healthcheck" in service for path in url_paths(service["healthcheck"]["test"])
    }


def k8s_paths(documents: list[dict[str, Any]]) -> set[str]:
    template = of_kind(documents, "Deployment")["spec"]["template"]
    paths = {template["metadata"]["annotations"]["prometheus.io/path"]}
    for container in template["spec"]["containers"]:
        paths |= {container[probe]["httpGet"]["path"] for probe in PROBES if probe in container}
    return paths


def prometheus_paths() -> set[str]:
    return {job.get("metrics_path", "/metrics") for job in load_yaml(PROMETHEUS)["scrape_configs"]}


def named_paths() -> dict[str, set[str]]:
    documents = k8s_documents()
    return {
        "Dockerfile": dockerfile_paths(),
        "docker-compose.yml": compose_paths(),
        "k8s base": k8s_paths(documents["base"]),
        "k8s gpu": k8s_paths(documents["gpu"]),
        "prometheus.yml": prometheus_paths(),
    }


@pytest.fixture(scope="module")
def client(tiny_artifacts: Path) -> Iterator[TestClient]:
    """The app on tiny artifacts with its lifespan run, so /readyz answers as in a ready pod."""
    with TestClient(create_app(Settings(artifacts_dir=tiny_artifacts))) as test_client:
        yield test_client


@pytest.mark.parametrize("source", named_paths())
def test_every_probed_or_scraped_path_is_served(source: str, client: TestClient) -> None:
    paths = named_paths()[source]
    assert paths, f"{source}: no probe or scrape path found"
    assert {path: client.get(path).status_code for path in paths} == dict.fromkeys(paths, 200)


def test_a_path_the_app_does_not_serve_fails(client: TestClient) -> None:
    assert client.get("/health").status_code == 404


def image_env() -> dict[str, str]:
    return dockerfile_pairs(stage(dockerfile_instructions(), "runtime"), "ENV")


def environments() -> dict[str, dict[str, str]]:
    """The PURIFIER_* values each deployment sets, on top of those the image sets."""
    envs = {"Dockerfile": image_env()}
    for name, service in compose()["services"].items():
        if name.startswith("purifier"):
            set_here = {key: str(value) for key, value in service["environment"].items() if value is not None}
            envs[f"compose {name}"] = image_env() | set_here
    for variant, documents in k8s_documents().items():
        (container,) = of_kind(documents, "Deployment")["spec"]["template"]["spec"]["containers"]
        envs[f"k8s {variant}"] = image_env() | {
            item["name"]: item["value"] for item in container["env"] if "value" in item
        }
    return {source: {k: v for k, v in env.items() if k.startswith("PURIFIER_")} for source, env in envs.items()}


def unknown_settings(env: dict[str, str]) -> set[str]:
    """Names pydantic-settings would silently ignore (the Settings allow extra variables)."""
    return set(env) - {f"PURIFIER_{name.upper()}" for name in Settings.model_fields}


def test_a_misspelt_setting_is_caught() -> None:
    assert unknown_settings({"PURIFIER_DEVICES": "cuda", "PURIFIER_DEVICE": "cuda"}) == {"PURIFIER_DEVICES"}


@pytest.mark.parametrize("source", environments())
def test_every_setting_is_known_and_accepted(source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = environments()[source]
    assert not unknown_settings(env), f"{source} sets variables the service ignores"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()  # raises on a value the service would refuse at start-up
    assert (settings.host, settings.port) == ("0.0.0.0", 8000)
