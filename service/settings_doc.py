"""``python -m service.settings_doc``: rewrite docs/deploy.md's configuration table from ``Settings``."""

import json
from pathlib import Path
from typing import Any

from render.markdown import splice
from service.config import REPO_ROOT, Settings

DEPLOY_DOC = REPO_ROOT / "docs" / "deploy.md"
HEADER = "| variable | default | meaning |\n|---|---|---|\n"
BLOCK = "settings"  # the generated block of docs/deploy.md that holds the table


def documented_default(value: Any) -> str:
    """A default as the table writes it: paths relative to the repo, lists as the JSON the variable takes."""
    if isinstance(value, Path):
        return f"<repo>/{value.relative_to(REPO_ROOT)}"
    if isinstance(value, str):
        return value
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def table() -> str:
    """One row per setting: the variable, its default, its description."""
    return HEADER + "".join(
        f"| `PURIFIER_{name.upper()}` | `{documented_default(field.default)}` | {field.description} |\n"
        for name, field in Settings.model_fields.items()
    )


def rewrite(doc: Path = DEPLOY_DOC) -> None:
    """Replace ``doc``'s generated block ``settings`` with the table."""
    doc.write_text(splice(doc.read_text(), BLOCK, table()))


if __name__ == "__main__":
    rewrite()
