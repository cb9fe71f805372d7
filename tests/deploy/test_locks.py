"""The hash-pinned lock files: in step with pyproject.toml, and installed by the Dockerfile and the Makefile."""

import re

import pytest
from packaging.utils import canonicalize_name

from service.config import REPO_ROOT
from tests.deploy.files import (
    REQUIREMENTS,
    LockFile,
    dockerfile_instructions,
    installed_requirement_files,
    pip_requirement_files,
    project_requirements,
    read_lock,
)

LOCKS = ("serve.txt", "loadtest.txt", "dev.txt")
RELOCK = "re-lock with `make lock` after changing dependencies in pyproject.toml"


def makefile_install_commands() -> list[str]:
    """The recipe lines of the Makefile's venv install target (``$(VENV)/.test``)."""
    recipe = re.search(r"^\$\(VENV\)/\.test:.*\n((?:\t.*\n)+)", (REPO_ROOT / "Makefile").read_text(), re.MULTILINE)
    assert recipe, "Makefile: no $(VENV)/.test target"
    return [line.strip().replace("$(PIP)", "pip") for line in recipe.group(1).splitlines()]


def stale_pins(lock: LockFile) -> list[str]:
    """Requirements of the lock's extras that it does not pin, or pins at a version outside the specifier."""
    problems = []
    for requirement in project_requirements(lock.extras):
        if requirement.marker and not requirement.marker.evaluate():
            continue
        version = lock.pins.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement} is not pinned")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement} but the lock pins {version}")
    return problems


@pytest.mark.parametrize("name", LOCKS)
def test_lock_pins_every_requirement_of_its_extras(name: str) -> None:
    lock = read_lock(REQUIREMENTS / name)
    assert lock.extras, f"{name}: compiled from no extra"
    assert not stale_pins(lock), f"{name} is out of step with pyproject.toml ({RELOCK}): {stale_pins(lock)}"


@pytest.mark.parametrize("name", [*LOCKS, "torchattacks.txt", "autoattack.txt"])
def test_every_pin_carries_hashes(name: str) -> None:
    text = (REQUIREMENTS / name).read_text()
    pins = re.findall(r"^([A-Za-z0-9._-]+)==\S+((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})*)", text, re.MULTILINE)
    assert pins, f"{name}: no pins"
    assert all("--hash=sha256:" in hashes for _, hashes in pins), f"{name}: pins without hashes ({RELOCK})"


def test_the_check_catches_a_missing_and_a_stale_pin() -> None:
    lock = read_lock(REQUIREMENTS / "serve.txt")
    lock.pins.pop("fastapi")
    lock.pins["torch"] = "1.0"
    assert sorted(problem.split()[0] for problem in stale_pins(lock)) == ["fastapi>=0.142", "torch==2.14.1"]


# Each image target, and the extras its lock files were compiled from.
IMAGE_LOCKS = {
    "runtime": (["requirements/serve.txt"], {"serve"}),
    "loadtest": (["requirements/serve.txt", "requirements/loadtest.txt"], {"serve", "loadtest"}),
}


@pytest.mark.parametrize("target", IMAGE_LOCKS)
def test_images_install_their_extras_at_the_versions_the_suite_runs(target: str) -> None:
    """Each image target installs the locks of exactly its extras, pinned as in the venv `make test` builds."""
    instructions = dockerfile_instructions()
    files, extras = IMAGE_LOCKS[target]
    assert installed_requirement_files(instructions, target) == files
    runs = [i.args for i in instructions if i.keyword == "RUN" and "pip install" in i.args]
    assert all("--require-hashes" in command or "--no-deps" in command for command in runs), "unpinned install"
    dev = read_lock(REQUIREMENTS / "dev.txt")
    lock = read_lock(REPO_ROOT / files[-1])
    assert lock.extras == extras
    assert lock.constraints == ["requirements/dev.txt"]
    assert {name: dev.pins.get(name) for name in lock.pins} == lock.pins, RELOCK


def test_makefile_installs_the_dev_lock_a_superset_of_the_image() -> None:
    commands = makefile_install_commands()
    locks = [
        path for command in commands if command.startswith("pip install") for path in pip_requirement_files(command)
    ]
    assert locks == ["requirements/dev.txt", "requirements/torchattacks.txt", "requirements/autoattack.txt"]
    assert all(
        "--require-hashes" in command or "--no-deps" in command for command in commands if "pip install" in command
    )
    assert read_lock(REQUIREMENTS / "dev.txt").extras >= read_lock(REQUIREMENTS / "serve.txt").extras | {"test"}
