"""docs/deploy.md's configuration table lists every setting of service/config.py with its real default."""

import re

from service.config import Settings
from service.settings_doc import DEPLOY_DOC, documented_default, table


def expected_rows() -> dict[str, str]:
    return {
        f"PURIFIER_{name.upper()}": documented_default(field.default) for name, field in Settings.model_fields.items()
    }


def table_rows(markdown: str, heading: str = "## Configuration") -> dict[str, str]:
    """``variable -> default`` of the first table under ``heading``; each row also needs a meaning."""
    section = markdown.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and (variable := re.fullmatch(r"`(PURIFIER_\w+)`", cells[0])):
            default = re.fullmatch(r"`(.*)`", cells[1])
            assert default and cells[2], f"row {variable.group(1)}: the default in backticks, then a meaning"
            rows[variable.group(1)] = default.group(1)
    return rows


def test_configuration_table_matches_settings() -> None:
    rows, expected = table_rows(DEPLOY_DOC.read_text()), expected_rows()
    missing = "\n".join(f"| `{name}` | `{default}` | ... |" for name, default in expected.items() if name not in rows)
    assert not missing, f"docs/deploy.md lacks rows for these settings:\n{missing}"
    assert rows == expected


def test_configuration_table_is_the_settings_descriptions() -> None:
    assert table() in DEPLOY_DOC.read_text(), "run python -m service.settings_doc"
    assert all(field.description and "\n" not in field.description for field in Settings.model_fields.values())


def test_a_wrong_default_is_caught() -> None:
    doc = DEPLOY_DOC.read_text().replace("| `PURIFIER_MAX_BATCH_SIZE` | `32` |", "| `PURIFIER_MAX_BATCH_SIZE` | `16` |")
    assert table_rows(doc)["PURIFIER_MAX_BATCH_SIZE"] != expected_rows()["PURIFIER_MAX_BATCH_SIZE"]
