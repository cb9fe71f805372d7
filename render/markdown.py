"""Markdown for generated reports: tables, cells, and the marked blocks a hand-written page carries."""

PENDING = "*pending*"  # a cell the (resumable) run has not reached yet


def table_lines(header: list[str], rows: list[list[str]]) -> list[str]:
    """A GitHub-flavoured table as lines: the header, the rule, one line per row."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def table(header: list[str], rows: list[list[str]]) -> str:
    """The same table as one string."""
    return "\n".join(table_lines(header, rows))


def markers(name: str) -> tuple[str, str]:
    """The comments around a generated block of a hand-written page."""
    return f"<!-- generated: {name} -->", f"<!-- end generated: {name} -->"


def splice(text: str, name: str, block: str) -> str:
    """``text`` with its generated block ``name`` replaced by ``block``; the prose around it is untouched."""
    begin, end = markers(name)
    head, found, rest = text.partition(begin)
    _, closed, tail = rest.partition(end)
    if not (found and closed):
        raise ValueError(f"no generated block {name!r}: mark it with {begin} ... {end}")
    return f"{head}{begin}\n{block.strip()}\n{end}{tail}"


def place(text: str, blocks: dict[str, str]) -> str:
    """``text`` with every block re-rendered in place; a block the page does not mark yet is appended, for the
    prose to be written around it."""
    for name, block in blocks.items():
        begin, end = markers(name)
        text = splice(text, name, block) if begin in text else f"{text.rstrip()}\n\n{begin}\n{block.strip()}\n{end}\n"
    return text


def minutes(seconds: float | None) -> str:
    """Wall seconds as whole minutes; empty when not recorded."""
    return f"{seconds / 60:.0f} min" if seconds else ""


def fmt(entry: dict | None, ci: bool = True) -> str:
    """A cell's accuracy, with its Wilson 95% CI unless ``ci`` is off; PENDING when missing."""
    if not entry:
        return PENDING
    text = f"{entry['accuracy']:.3f}"
    return f"{text} [{entry['ci95'][0]:.3f}, {entry['ci95'][1]:.3f}]" if ci else text
