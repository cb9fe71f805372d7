"""The demo page in real Chromium (Debian's /usr/bin/chromium, headless) against the real server.

The server runs the committed artifacts. The page switches datasets, picks MNIST sample 12 (a 9), runs
FGSM at eps 0.2, and shows four panels; offline this case was checked to flip the classifier to 4 with
probability 1.00 (the purifier restores 9). A stroke drawn on the pad is attacked too, and an unreadable
upload shows the server's 422 on the page.
Screenshots, desktop and phone width, go to results/; docs/demo.png is a copy of the certified pipeline's one.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from service.config import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO_ROOT / "results"
SAMPLE, TRUE_LABEL, EPS = 12, "9", "0.2"
PANELS = ("original", "adversarial", "purified")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


def _choose_dataset(page: Page, name: str) -> None:
    page.select_option("#dataset", name)
    expect(page.locator(f'#samples[data-dataset="{name}"]')).to_have_count(1)


def _panel_label(page: Page, panel: str) -> str:
    return page.locator(f"#panel-{panel} .label .name").inner_text()


def test_attack_and_purify_in_the_browser(real_server: str, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{real_server}/")
    expect(page.locator('#samples[data-dataset="mnist"]')).to_have_count(1)
    _choose_dataset(page, "fashion-mnist")
    _choose_dataset(page, "mnist")
    page.click(f'#samples .sample[data-index="{SAMPLE}"]')
    expect(page.locator("#input-name")).to_have_text(f"sample {SAMPLE} (true label: {TRUE_LABEL})")
    page.select_option("#pipeline", "autoencoder-pgd")  # the paper's purifier before the classifier
    page.select_option("#attack", "fgsm")
    page.fill("#eps", EPS)
    expect(page.locator("#eps-value")).to_have_text("0.20 (51/255)")
    page.click("#run")
    expect(page.locator("#results")).to_have_attribute("data-state", "done", timeout=20_000)

    for panel in PANELS:
        image = page.locator(f"#panel-{panel} img")
        assert image.evaluate("img => img.complete && img.naturalWidth") == 32, panel
        assert page.locator(f"#panel-{panel} .top3 li").count() == 3, panel
    assert _panel_label(page, "original") == TRUE_LABEL
    assert _panel_label(page, "adversarial") != TRUE_LABEL
    assert _panel_label(page, "purified")
    assert page.locator("#panel-perturbation canvas").evaluate("c => c.width") == 32
    expect(page.locator("#panel-perturbation")).to_contain_text("ℓ∞ 0.200")
    expect(page.locator("#panel-adversarial .badge")).to_have_count(1)
    assert page.locator("#latency tbody tr").count() == 3  # /attack, /defended-classify, /purify
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "demo.png", full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "overflows at phone width"
    page.screenshot(path=SCREENSHOTS / "demo-phone.png", full_page=True)

    page.click('.tabs [data-mode="draw"]')
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.8, steps=8)
    page.mouse.up()
    expect(page.locator("#input-name")).to_have_text("your drawing (28×28)")
    page.click("#run")
    expect(page.locator("#results")).to_have_attribute("data-state", "done", timeout=20_000)
    assert page.locator("#panel-original img").evaluate("img => img.naturalWidth") == 32

    page.click('.tabs [data-mode="upload"]')
    page.set_input_files("#file", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image"}])
    page.click("#run")
    expect(page.locator("#error")).to_contain_text("422 invalid_image")
    expect(page.locator("#results")).to_have_attribute("data-state", "error")
    assert not errors, errors
    page.close()


CERTIFIED_SAMPLE, CERTIFIED_EPS = 0, "0.30"  # MNIST sample 0 (a 7): the certified model proves it beyond 0.3


def test_a_certified_pipeline_shows_its_radius_and_an_adaptive_attack_within_it_fails(
    real_server: str, browser: Browser
) -> None:
    """The screenshot of this case is docs/demo.png."""
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{real_server}/")
    _choose_dataset(page, "mnist")
    page.click(f'#samples .sample[data-index="{CERTIFIED_SAMPLE}"]')
    page.select_option("#pipeline", "ibp-cnn7")
    page.select_option("#attack", "pgd")
    page.fill("#eps", CERTIFIED_EPS)
    page.select_option("#target", "pipeline")  # the adaptive attacker: gradients of the whole defence
    page.click("#run")
    expect(page.locator("#results")).to_have_attribute("data-state", "done", timeout=30_000)
    expect(page.locator("#panel-original .badge.certified")).to_contain_text("certified radius")
    expect(page.locator("#panel-perturbation .badge.certified")).to_contain_text("no attack this size can flip")
    assert _panel_label(page, "adversarial") == _panel_label(page, "original")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "demo-certified.png", full_page=True)
    assert not errors, errors
    page.close()
