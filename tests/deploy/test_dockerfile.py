"""The Dockerfile, statically: hadolint, a pinned base that matches the lock, the build context, the install."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from service.config import REPO_ROOT
from tests.deploy.files import (
    DOCKERFILE,
    DOCKERIGNORE,
    K8S,
    K8S_VARIANTS,
    REQUIREMENTS,
    compose,
    copy_sources,
    dockerfile_args,
    dockerfile_instructions,
    dockerfile_pairs,
    kustomize,
    of_kind,
    pyproject,
    read_lock,
    stage,
)

HADOLINT = Path(sys.executable).parent / "hadolint"


def hadolint(dockerfile: str) -> list[dict]:
    """hadolint's findings at every level (error, warning, info, style) for a Dockerfile's text."""
    done = subprocess.run(
        [HADOLINT, "--no-fail", "--format", "json", "-"], input=dockerfile, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_hadolint_finds_nothing() -> None:
    assert hadolint(DOCKERFILE.read_text()) == []


def test_hadolint_runs_its_rules() -> None:
    findings = hadolint("FROM python:latest\nRUN pip install fastapi\n")
    assert {finding["code"] for finding in findings} >= {"DL3007", "DL3013"}


def test_base_image_is_pinned_to_the_python_the_lock_was_compiled_for() -> None:
    """hadolint cannot see through ``FROM ${PYTHON_IMAGE}``, so the ARG's default is checked here."""
    image = dockerfile_args(dockerfile_instructions())["PYTHON_IMAGE"]
    match = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim-[a-z]+(@sha256:[0-9a-f]{64})?", image)
    assert match, f"{image}: not a pinned python:X.Y.Z-slim-<debian> tag"
    version = ".".join(match.groups()[:3])
    assert SpecifierSet(pyproject()["project"]["requires-python"]).contains(version)
    assert read_lock(REQUIREMENTS / "serve.txt").python == ".".join(match.groups()[:2])
    stages = [""]
    for instruction in (i for i in dockerfile_instructions() if i.keyword == "FROM"):
        assert instruction.args.split()[0] in {"${PYTHON_IMAGE}", *stages}, f"FROM {instruction.args}"
        stages.append(instruction.stage)


def test_runs_unprivileged_serves_8000_and_checks_its_health() -> None:
    instructions = dockerfile_instructions()
    assert instructions[-1].stage == "runtime", "the service image must be the default (last) target"
    runtime = stage(instructions, "runtime")
    final = {i.keyword: i for i in runtime}  # the last of each kind counts
    assert final["USER"].args.split(":")[0] not in ("0", "root")
    assert final["EXPOSE"].args == "8000"
    env = dockerfile_pairs(runtime, "ENV")
    assert env["PURIFIER_PORT"] == "8000" and env["PURIFIER_HOST"] == "0.0.0.0"
    assert final["HEALTHCHECK"].exec_form(after="CMD")[-1] == "http://127.0.0.1:8000/healthz"
    assert final["CMD"].exec_form() == ["python", "-m", "service"]


def test_image_version_is_the_project_version_everywhere() -> None:
    version = pyproject()["project"]["version"]
    labels = dockerfile_pairs(stage(dockerfile_instructions(), "runtime"), "LABEL")
    assert labels["org.opencontainers.image.version"] == version
    built = [service for service in compose()["services"].values() if "build" in service]
    tags = {re.fullmatch(r"\$\{\w+:-([\w.-]+):([\w.-]+)\}", service["image"]).groups() for service in built}
    assert tags == {("adversarial-purifier", version), ("adversarial-purifier-loadtest", version)}
    for variant in K8S_VARIANTS:
        (container,) = of_kind(kustomize(K8S / variant), "Deployment")["spec"]["template"]["spec"]["containers"]
        assert container["image"] == f"adversarial-purifier:{version}"


def test_dockerignore_lets_through_exactly_what_the_dockerfile_copies() -> None:
    patterns = [line for line in DOCKERIGNORE.read_text().splitlines() if line and not line.startswith("#")]
    assert patterns[0] == "*", ".dockerignore should be an allowlist"
    allowed = {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}
    sources = {source.rstrip("/") for source in copy_sources(dockerfile_instructions())}
    assert sources == allowed
    assert all((REPO_ROOT / source).exists() for source in sources)


@pytest.mark.timeout(180)
def test_the_image_install_serves_from_a_non_editable_package(tmp_path: Path, tiny_artifacts: Path) -> None:
    """What the build stage does: the copied context installed with --no-deps, then the app from it alone.

    Catches a package the service imports but the image does not copy, and package data (the demo page)
    that a non-editable install leaves out.
    """
    context, target = tmp_path / "context", tmp_path / "site"
    context.mkdir()
    for source in copy_sources(stage(dockerfile_instructions(), "build")):
        if source.startswith("requirements/"):  # installed from the lock before the project
            continue
        if (REPO_ROOT / source).is_dir():
            shutil.copytree(REPO_ROOT / source, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO_ROOT / source, context / source)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            target,
            context,
        ],
        check=True,
        capture_output=True,
    )
    static = sorted(path.name for path in (REPO_ROOT / "service" / "static").iterdir())
    script = f"""
import service
from fastapi.testclient import TestClient
from service.app import create_app
assert service.__file__.startswith({str(target)!r}), service.__file__
with TestClient(create_app()) as client:
    for path in ["/healthz", "/readyz", "/"] + ["/static/" + name for name in {static!r}]:
        assert client.get(path).status_code == 200, path
"""
    env = {**os.environ, "PYTHONPATH": str(target), "PURIFIER_ARTIFACTS_DIR": str(tiny_artifacts)}
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
