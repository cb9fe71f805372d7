"""Hand-written pages with generated blocks: a re-render from the committed JSON changes nothing, and only the
marked blocks are ever rewritten."""

import json
from pathlib import Path

import pytest

from render import headline
from training import readme
from render.markdown import markers, place, splice
from render.robustness import report

from .conftest import ARTIFACTS, REPO


def test_splice_replaces_only_the_marked_block() -> None:
    begin, end = markers("x")
    text = f"prose before\n{begin}\nold table\n{end}\nprose after\n"
    assert splice(text, "x", "new table") == f"prose before\n{begin}\nnew table\n{end}\nprose after\n"
    with pytest.raises(ValueError, match="no generated block 'y'"):
        splice(text, "y", "table")


@pytest.mark.parametrize("page", readme.PAGES)
def test_the_committed_headline_tables_are_what_the_manifests_render(page: Path) -> None:
    config = readme.Config(artifacts=ARTIFACTS, latency=REPO / readme.LATENCY)
    text = (REPO / page).read_text()
    assert readme.render(config, text) == text, "run python -m training readme"


def test_the_headline_lists_every_served_pipeline_default_first() -> None:
    manifest = json.loads((ARTIFACTS / "mnist" / "manifest.json").read_text())
    rows = headline.rows(manifest, {})
    assert rows[0][0] == f"`{manifest['default_pipeline']}` (default)"
    assert {row[0].split("`")[1] for row in rows} == set(manifest["pipelines"])


def test_the_committed_robustness_tables_are_what_their_json_renders() -> None:
    results, runs = report.load(REPO / "docs")
    pages = report.routed(results, runs)
    assert "certified-runs-mnist" in pages[report.PAGE], "the certified-training runs are on the main page"
    assert set(pages) == {report.PAGE, "robustness/mnist.md", "robustness/fashion-mnist.md"}
    for name, tables in pages.items():
        page = (REPO / "docs" / name).read_text()
        assert all(markers(block)[0] in page for block in tables), f"every table has its place in {name}"
        assert place(page, tables) == page, "run python -m training robustness --report-only"


def test_a_table_the_page_does_not_place_yet_is_appended_and_prose_is_kept() -> None:
    results = [json.loads((REPO / "docs" / "robustness" / "mnist.json").read_text())]
    tables = report.routed(results)["robustness/mnist.md"]
    page = place("Hand-written prose.\n", tables)
    assert page.startswith("Hand-written prose.\n\n") and all(markers(name)[0] in page for name in tables)
    begin, end = markers("robustness-mnist-cost")
    edited = page.replace(begin, f"A sentence about cost.\n\n{begin}")
    assert place(edited, tables) == edited


def test_the_certified_table_shows_each_certified_pipeline_beside_its_target_and_the_published_results() -> None:
    manifests = [json.loads((ARTIFACTS / d / "manifest.json").read_text()) for d in ("mnist", "fashion-mnist")]
    published = json.loads((REPO / readme.REFERENCES).read_text())
    lines = headline.certified_models(manifests, published).splitlines()[2:]
    for manifest in manifests:
        certified = [name for name, p in manifest["pipelines"].items() if p.get("metrics", {}).get("certified")]
        rows = [line for line in lines if line.startswith(f"| {manifest['dataset']}, ")]
        served = [row for row in rows if row.split(" | ")[1].startswith("`")]
        assert [row.split(" | ")[1].strip("`") for row in served] == certified
        for row, name in zip(served, certified, strict=True):
            metrics = manifest["pipelines"][name]["metrics"]
            low, high = (100 * bound for bound in metrics["certified"]["ci95"])
            assert f"{100 * metrics['certified']['accuracy']:.1f}% [{low:.1f}, {high:.1f}]" in row
            assert f"{100 * metrics['clean']['accuracy']:.1f}%" in row.split(" | ")[4]
        target = published["datasets"][manifest["dataset"]]["target"]
        assert any(" | target | " in row and f"≥ {100 * target['certified']:g}%" in row for row in rows)
        assert len(rows) == len(served) + 1 + len(published["datasets"][manifest["dataset"]]["published"])
