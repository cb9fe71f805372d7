"""Figures quoted in sentences: filled from their JSON, every committed page as its JSON renders it, and no
measured figure typed by hand on a page that has been converted."""

import json
from pathlib import Path

import pytest

from render.__main__ import ROOT, main, pages
from render.quoted import FIGURE, FigureError, fill, hand_typed, registry

# The pages whose every measured figure is filled from the JSON; the rest still quote some by hand.
# every page but the archive, a dated record of a finished study that no re-measure updates
CONVERTED = [str(page.relative_to(ROOT)) for page in pages() if "archive" not in page.parts]


@pytest.fixture()
def source(tmp_path: Path) -> Path:
    (tmp_path / "run.json").write_text(json.dumps(
        {"a/b": {"p95": 10.44, "share": 0.9073}, "lead": {"1": 1.2, "8": 1.6}, "n": [3, 4], "flag": True,
         "rows": [{"name": "x", "v": 1}, {"name": "y", "v": 2, "k": 1}, {"name": "y", "v": 5, "k": 2}]}))
    return tmp_path


def figures(**entries: tuple) -> dict:
    return {name: {"from": entry[0], "format": entry[1], **({"scale": entry[2]} if len(entry) > 2 else {})}
            for name, entry in entries.items()}


def test_a_figure_is_rewritten_from_its_source_and_the_prose_is_kept(source: Path) -> None:
    known = figures(p95=("run.json#/a~1b/p95", ".1f"), share=("run.json#/a~1b/share", ".1%"),
                    low=("run.json#/lead/*", "min:.2f"), high=("run.json#/lead/*", "max:.1f"),
                    ratio=("run.json#/n/1÷/n/0", ".2f"), total=("run.json#/n/*", "sum:d"),
                    both=("run.json#/a~1b/p95,/lead/8", "min:.2f"), row=("run.json#/rows/name=y&k=2/v", "d"),
                    gb=("run.json#/lead/8", ".4f", 1e-3))
    text = ("p95 <!-- fig p95 -->9.9<!-- /fig --> ms, <!-- fig share -->1%<!-- /fig --> proved, "
            "<!-- fig low --><!-- /fig -->× to <!-- fig high -->?<!-- /fig -->×, <!-- fig ratio -->0<!-- /fig -->, "
            "<!-- fig total -->0<!-- /fig --> <!-- fig gb -->0<!-- /fig --> <!-- fig both -->0<!-- /fig --> <!-- fig row -->0<!-- /fig -->")
    want = ("p95 <!-- fig p95 -->10.4<!-- /fig --> ms, <!-- fig share -->90.7%<!-- /fig --> proved, "
            "<!-- fig low -->1.20<!-- /fig -->× to <!-- fig high -->1.6<!-- /fig -->×, "
            "<!-- fig ratio -->1.33<!-- /fig -->, "
            "<!-- fig total -->7<!-- /fig --> <!-- fig gb -->0.0016<!-- /fig --> <!-- fig both -->1.60<!-- /fig --> <!-- fig row -->5<!-- /fig -->")
    assert fill(text, source, known) == want
    assert fill(want, source, known) == want


@pytest.mark.parametrize("origin, spec", [
    ("run.json#/a~1b/p99", ".1f"),  # no such key
    ("gone.json#/n/0", "d"),  # no such file
    ("run.json#/lead/*", ".2f"),  # two values, no reduction
    ("run.json#/flag", "d"),  # not a number
    ("run.json#/lead/*", "mean:.2f"),  # no such reduction
    ("run.json#/n/7", "d"),  # past the list's end
    ("run.json#/rows/name=z/v", "d"),  # no row matches
    ("run.json#/rows/name=y/v", "d"),  # two rows match
])
def test_a_figure_that_is_not_one_number_is_an_error(source: Path, origin: str, spec: str) -> None:
    with pytest.raises(FigureError):
        fill("x <!-- fig bad -->1<!-- /fig -->", source, figures(bad=(origin, spec)))
    with pytest.raises(FigureError, match="no figure"):
        fill("x <!-- fig unnamed -->1<!-- /fig -->", source, {})


def test_every_committed_page_is_what_its_json_renders() -> None:
    known = registry()
    for page in pages():
        text = page.read_text()
        assert fill(text, ROOT, known, page.name) == text, f"{page}: run python -m render"
    assert main(["--check"]) == 0


def test_every_named_figure_is_quoted_and_every_quoted_figure_is_named() -> None:
    quoted = {m["name"] for page in pages() for m in FIGURE.finditer(page.read_text())}
    assert quoted == set(registry())


def test_measured_figures_typed_by_hand_are_found_outside_code_tables_and_marked_figures() -> None:
    text = """It answers in 4.8 ms, 434 req/s, 93.8% of them, a 6.0 GB image, 1.29× the peer and 6.3x faster,
with 0.42 core-ms and 27 µs.
A 28×28 image, Wilson 95% CIs, batch 64, ms per image, `p95 3.2 ms` and [a link](docs/x%20y.md) are not figures,
nor are goals and bounds: p95 ≤ 8 ms, ≥ 95% flagged, ≥1.3×, < 10 MiB, a purified-clean target 85%.
<!-- fig x -->7.7<!-- /fig --> ms is filled.
```
12 ms in a code block
```
<!-- generated: t -->
| 5 ms |
<!-- end generated: t -->
"""
    assert hand_typed(text) == ["4.8 ms", "434 req/s", "93.8%", "6.0 GB", "1.29×", "6.3x", "0.42 core-ms", "27 µs"]


@pytest.mark.parametrize("page", CONVERTED)
def test_a_converted_page_types_no_measured_figure_by_hand(page: str) -> None:
    assert hand_typed((ROOT / page).read_text()) == []
