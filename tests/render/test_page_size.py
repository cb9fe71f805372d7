"""Pages stay short enough to read in a hurry: the README and every page of the docs under a size."""

import pytest

from render.__main__ import ROOT, pages

README_CHARS, PAGE_CHARS = 12_000, 30_000


@pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_a_page_stays_under_its_size(page) -> None:
    limit = README_CHARS if page.name == "README.md" and page.parent == ROOT else PAGE_CHARS
    assert len(page.read_text()) <= limit, f"{page.relative_to(ROOT)}: over {limit:,} characters; split or cut it"
