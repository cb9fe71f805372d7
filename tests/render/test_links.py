"""Every relative link of the README and the docs reaches a file, and every #anchor a heading of that page."""

import re
from collections import Counter
from pathlib import Path

from render.__main__ import ROOT, pages

LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered."""
    seen, out = Counter(), set()
    for heading in re.findall(r"^#{1,6} (.+)$", CODE.sub("", page.read_text()), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
        seen[slug] += 1
    return out


def broken(page: Path) -> list[str]:
    out = []
    for target in LINK.findall(CODE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            out.append(target)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            out.append(target)
    return out


def test_every_relative_link_and_anchor_resolves() -> None:
    found = {str(page.relative_to(ROOT)): bad for page in pages() if (bad := broken(page))}
    assert not found, found


def test_a_broken_link_or_anchor_is_found(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Top\n## The models: where they stand\n")
    page = tmp_path / "b.md"
    page.write_text("[ok](a.md#the-models-where-they-stand) [top](a.md#top) [gone](c.md) [bad](a.md#nope) "
                    "[self](#here)\n## Here\n`[code](x.md)` [web](https://example.com/x.md)\n")
    assert broken(page) == ["c.md", "a.md#nope"]
