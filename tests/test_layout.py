"""The codebase's layout limits: small modules and short functions, outside the tests."""

import ast
from pathlib import Path

from service.config import REPO_ROOT

PACKAGES = ("advattacks", "bounds", "loadtest", "render", "service", "training")
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 300, 60


def modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (REPO_ROOT / package).rglob("*.py"))


def test_no_module_over_300_lines() -> None:
    lines = {str(path.relative_to(REPO_ROOT)): path.read_text().count("\n") for path in modules()}
    long = {name: n for name, n in lines.items() if n > MAX_MODULE_LINES}
    assert not long, f"split these modules: {long}"


def test_no_function_over_60_lines() -> None:
    long = {}
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if (n := node.end_lineno - node.lineno + 1) > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(REPO_ROOT)}:{node.name}"] = n
    assert not long, f"split these functions: {long}"
