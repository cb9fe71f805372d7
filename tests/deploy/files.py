"""Readers for the deployment files: the Dockerfile's instructions, compose, the kustomize overlays, the lock files.

Each reads the file's structure (instructions, YAML, pip-compile's header and pins) rather than grepping it,
so the tests compare what Docker, Compose, Kubernetes and pip would actually see.
"""

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from service.config import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
COMPOSE = REPO_ROOT / "docker-compose.yml"
PROMETHEUS = REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml"
K8S = REPO_ROOT / "deploy" / "k8s"
K8S_VARIANTS = ("base", "gpu")
REQUIREMENTS = REPO_ROOT / "requirements"


# --- Dockerfile --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, HEALTHCHECK, ...
    args: str  # everything after the keyword, continuation lines joined
    stage: str  # name of the build stage it belongs to ("" before the first FROM)

    def exec_form(self, after: str = "") -> list[str]:
        """The JSON array of an exec-form instruction (for HEALTHCHECK, the part after ``CMD``)."""
        text = self.args.split(after, 1)[1] if after else self.args
        return json.loads(text.strip())


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """Instructions in order; comments and parser directives dropped, ``\\`` continuations joined."""
    instructions, pending, stage = [], "", ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") or not (pending or line.strip()):
            continue  # comments (also inside a continued instruction) and blank lines
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, args = (pending + line).strip().partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            words = args.split()
            assert len(words) == 3 and words[1].upper() == "AS", f"unnamed stage: FROM {args}"
            stage = words[2]
        instructions.append(Instruction(keyword.upper(), args.strip(), stage))
    return instructions


def stage(instructions: list[Instruction], name: str) -> list[Instruction]:
    """What a stage runs: the instructions of the stages it is built ``FROM``, then its own."""
    own = [i for i in instructions if i.stage == name]
    assert own, f"no stage {name!r}"
    parent = own[0].args.split()[0]
    return (stage(instructions, parent) if any(i.stage == parent for i in instructions) else []) + own


def installed_requirement_files(instructions: list[Instruction], name: str) -> list[str]:
    """The ``pip install -r`` files behind a stage: its own chain's, and those of stages it copies ``--from``."""
    files = []
    for instruction in stage(instructions, name):
        source = re.match(r"--from=(\S+)", instruction.args) if instruction.keyword == "COPY" else None
        if source:
            files += installed_requirement_files(instructions, source.group(1))
        elif instruction.keyword == "RUN" and "pip install" in instruction.args:
            files += pip_requirement_files(instruction.args)
    return files


def dockerfile_args(instructions: list[Instruction]) -> dict[str, str]:
    """Global ``ARG name=default`` values (those before the first FROM)."""
    pairs = (i.args.split("=", 1) for i in instructions if i.keyword == "ARG" and not i.stage and "=" in i.args)
    return {name: value for name, value in pairs}


def dockerfile_pairs(instructions: list[Instruction], keyword: str) -> dict[str, str]:
    """``ENV`` or ``LABEL`` ``key=value ...`` pairs, later ones winning (quotes removed, no variable expansion)."""
    pairs: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == keyword:
            pairs.update(pair.split("=", 1) for pair in shlex.split(instruction.args))
    return pairs


def copy_sources(instructions: list[Instruction]) -> list[str]:
    """Build-context paths of every ``COPY`` (not ``--from`` another stage)."""
    sources = []
    for instruction in instructions:
        if instruction.keyword == "COPY" and "--from" not in instruction.args:
            sources.extend(shlex.split(instruction.args)[:-1])
    return sources


def pip_requirement_files(command: str) -> list[str]:
    """The ``-r``/``--requirement`` files of one ``pip install`` command line."""
    words = shlex.split(command)
    return [words[i + 1] for i, word in enumerate(words[:-1]) if word in ("-r", "--requirement")]


# --- YAML --------------------------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """Render a kustomization that uses only ``resources`` and JSON 6902 ``patches`` (all ours do).

    Any other kustomize feature fails loudly instead of being skipped; ``kubectl kustomize`` renders the same.
    """
    kustomization = load_yaml(directory / "kustomization.yaml")
    unknown = set(kustomization) - {"apiVersion", "kind", "resources", "patches"}
    assert not unknown, f"{directory}: kustomize fields this renderer does not know: {unknown}"
    documents = []
    for resource in kustomization["resources"]:
        path = directory / resource
        documents += kustomize(path) if path.is_dir() else list(yaml.safe_load_all(path.read_text()))
    for patch in kustomization.get("patches", []):
        targets = [doc for doc in documents if _matches(doc, patch["target"])]
        assert targets, f"{directory}: patch {patch['path']} matches no resource"
        for doc in targets:
            for operation in load_yaml(directory / patch["path"]):
                _apply(doc, operation)
    return documents


def _matches(doc: dict[str, Any], target: dict[str, str]) -> bool:
    group, _, version = doc["apiVersion"].rpartition("/")
    actual = {"group": group, "version": version, "kind": doc["kind"], "name": doc["metadata"]["name"]}
    return all(actual[key] == value for key, value in target.items())


def _apply(doc: dict[str, Any], operation: dict[str, Any]) -> None:
    """One RFC 6902 ``add``, ``replace`` or ``remove`` on ``doc``, in place."""
    path, op = operation["path"], operation["op"]
    *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]]
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        key: Any = len(node) if last == "-" else int(last)
        if op == "add":
            node.insert(key, operation["value"])
            return
        assert 0 <= key < len(node), f"{path}: no such item to {op}"
    else:
        key = last
        assert op == "add" or key in node, f"{path}: no such member to {op}"
    if op == "remove":
        del node[key]
    elif op in ("add", "replace"):
        node[key] = operation["value"]
    else:
        raise AssertionError(f"{path}: unsupported patch op {op!r}")


def k8s_documents() -> dict[str, list[dict[str, Any]]]:
    return {variant: kustomize(K8S / variant) for variant in K8S_VARIANTS}


def of_kind(documents: list[dict[str, Any]], kind: str, name: str = "purifier") -> dict[str, Any]:
    """The one document of ``kind`` named ``name`` (the purifier's own, beside Redis's)."""
    (doc,) = [doc for doc in documents if doc["kind"] == kind and doc["metadata"]["name"] == name]
    return doc


# --- lock files --------------------------------------------------------------------------------------------


@dataclass
class LockFile:
    path: Path
    python: str  # "3.11": the interpreter pip-compile ran under
    extras: set[str]  # the --extra options it was compiled with
    constraints: list[str]  # its --constraint files
    pins: dict[str, str] = field(default_factory=dict)  # canonical name -> version
    hashes: dict[str, list[str]] = field(default_factory=dict)


def read_lock(path: Path) -> LockFile:
    text = path.read_text()
    python = re.search(r"autogenerated by pip-compile with Python (\d+\.\d+)", text)
    command = re.search(r"^#\s+(pip-compile .*)$", text, re.MULTILINE)
    assert python and command, f"{path}: no pip-compile header; regenerate it with `make lock`"
    options = [word.split("=", 1) for word in shlex.split(command.group(1)) if word.startswith("--") and "=" in word]
    lock = LockFile(
        path,
        python.group(1),
        extras={value for name, value in options if name == "--extra"},
        constraints=[value for name, value in options if name == "--constraint"],
    )
    for block in re.split(r"\n(?=\S)", text):
        pin = re.match(r"([A-Za-z0-9._-]+)==([^\s\\;]+)", block)
        if pin:
            name = canonicalize_name(pin.group(1))
            lock.pins[name] = pin.group(2)
            lock.hashes[name] = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
    return lock


def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def project_requirements(extras: set[str]) -> list[Requirement]:
    """The project's own dependencies, those of the named extras and the build backend's."""
    data = pyproject()
    optional = data["project"]["optional-dependencies"]
    lines = data["project"]["dependencies"] + data["build-system"]["requires"]
    lines += [line for extra in sorted(extras) for line in optional[extra]]
    return [Requirement(line) for line in lines]
