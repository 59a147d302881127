"""The report rendered in headless Chromium (Selenium): every section present, every image decoded
by the browser, the expected number of Grad-CAM and mistake thumbnails, one LR line per group.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``,
``/usr/bin/chromedriver``) and the ``selenium`` package (dev extra); skipped when they are absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser_support import SKIP_WITHOUT_BROWSER, headless_chrome

from graft.report import SECTION_IDS

pytestmark = SKIP_WITHOUT_BROWSER


@pytest.fixture(scope="module")
def browser():
    with headless_chrome("1280,2000", "--blink-settings=imagesEnabled=true") as driver:
        yield driver


def _images(driver) -> list[dict]:
    return driver.execute_script(
        "return Array.from(document.images).map(i => ({section: i.closest('section').id, "
        "cls: i.className, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight}))"
    )


def test_report_renders_in_headless_chromium(browser, tiny_run: Path, tiny_report: Path) -> None:
    from graft.bundle import load_bundle
    from graft.train.groups import ModelGroups

    browser.get(tiny_report.resolve().as_uri())
    ids = browser.execute_script(
        "return Array.from(document.querySelectorAll('section')).map(s => s.id)"
    )
    assert ids == list(SECTION_IDS)
    for section_id in SECTION_IDS:
        assert browser.find_element("id", section_id).is_displayed()
    images = _images(browser)
    assert images, "the report shows no image"
    broken = [i for i in images if not i["complete"] or i["width"] == 0 or i["height"] == 0]
    assert not broken, f"images the browser could not decode: {broken}"
    by_class = lambda c: [i for i in images if c in i["cls"].split()]  # noqa: E731
    assert len(by_class("gradcam")) == 4 and {i["section"] for i in by_class("gradcam")} == {
        "gradcam"
    }
    data = json.loads(browser.find_element("id", "report-data").get_attribute("textContent"))
    assert len(by_class("mistake")) == data["images"]["mistakes"] <= 3
    assert len(by_class("plot")) == 2  # curves and confusion matrix
    groups = ModelGroups.of(load_bundle(tiny_run / "bundle").model).names
    assert len(data["curves"]["lr"]) == len(groups) >= 2
    assert data["curves"]["events"] == [0, 1, 2]
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(r => r.name)"
        ".filter(n => !n.startsWith('data:'))"
    )
    assert resources == []  # self-contained: nothing fetched
