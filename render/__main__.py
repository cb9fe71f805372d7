"""``python -m render``: fill every figure the pages quote (README.md and docs/) from the JSON that holds it, as
``render/figures.toml`` names it.

``--check`` changes nothing and exits 1 if a page is out of date with its JSON."""

import argparse
import sys
from pathlib import Path

from render.quoted import fill, registry

ROOT = Path(__file__).resolve().parent.parent


def pages(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m render", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a page would change")
    args = parser.parse_args(argv)
    stale, figures = [], registry()
    for page in pages():
        text = page.read_text()
        filled = fill(text, ROOT, figures, str(page.relative_to(ROOT)))
        if filled != text:
            stale.append(str(page.relative_to(ROOT)))
            if not args.check:
                page.write_text(filled)
    print(("out of date: " if args.check else "rewrote: ") + (", ".join(stale) or "nothing"))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
