"""The one markdown table helper of every generated report."""


def table_lines(header: list[str], rows: list[list[str]]) -> list[str]:
    """A GitHub-flavoured table as lines: the header, the rule, one line per row."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def table(header: list[str], rows: list[list[str]]) -> str:
    """The same table as one string."""
    return "\n".join(table_lines(header, rows))
