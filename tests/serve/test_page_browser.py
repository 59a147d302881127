"""The page at ``/`` in headless Chromium (Selenium): pick images, see one result per image with
the server's top-k bars and the Grad-CAM overlay, decoded by the browser; nothing fetched from
outside the server.

Needs ``chromium``, ``chromium-driver`` (Debian) and ``selenium`` (dev extra); skipped when absent
unless ``GRAFT_REQUIRE_BROWSER=1`` (CI), where a missing browser fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_support import SKIP_WITHOUT_BROWSER, headless_chrome

from .conftest import start_server

pytestmark = SKIP_WITHOUT_BROWSER
KEY = "page-test-key-0123456789"


@pytest.fixture(scope="module")
def browser():
    with headless_chrome("1280,1600") as driver:
        yield driver


def test_page_shows_top_k_bars_and_gradcam(browser, bundle_dir: Path, image_files) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    server = start_server(bundle=str(bundle_dir), gradcam=True, api_key=KEY)
    try:
        browser.get(f"{server.url}/?api_key={KEY}")
        wait = WebDriverWait(browser, 60)
        wait.until(lambda d: "classes" in d.find_element("id", "info").text)
        assert "test_efficientnet" in browser.find_element("id", "info").text
        browser.find_element("id", "gradcam").click()
        picked = image_files[:3]
        browser.find_element("id", "file").send_keys("\n".join(str(p.resolve()) for p in picked))
        wait.until(lambda d: d.find_element("id", "status").text.startswith(("done", "error")))
        assert browser.find_element("id", "status").text == "done: 3 image(s)"
        shown = browser.execute_script(
            "return Array.from(document.querySelectorAll('.result')).map(r => ({"
            "name: r.querySelector('.name').textContent,"
            "rows: Array.from(r.querySelectorAll('.row')).map(x => [x.dataset.label, +x.dataset.prob,"
            " parseFloat(x.querySelector('.bar').style.width)]),"
            "cam: (r.querySelector('img.overlay') || {}).naturalWidth || 0,"
            "thumb: r.querySelector('img.thumb').naturalWidth}))"
        )
        with server.client(headers={"X-API-Key": KEY}) as client:
            files = [("file", (p.name, p.read_bytes())) for p in picked]
            expected = client.post("/predict", files=files).json()["predictions"]
        resources = browser.execute_script(
            "return performance.getEntriesByType('resource').map(r => r.name)"
        )
    finally:
        server.stop()
    shown = list(reversed(shown))  # the newest result is on top: the last image first
    assert [s["name"] for s in shown] == [p.name for p in picked]
    for s, e in zip(shown, expected, strict=True):
        assert [r[0] for r in s["rows"]] == [t["label"] for t in e["top_k"]]
        for (_, prob, width), t in zip(s["rows"], e["top_k"], strict=True):
            assert prob == pytest.approx(t["prob"], abs=1e-5)
            assert width == pytest.approx(100 * t["prob"], abs=0.06)  # bar length = probability
        assert s["cam"] > 0 and s["thumb"] > 0  # overlay and thumbnail decoded by the browser
    assert resources and all(r.startswith(server.url) or r.startswith(("blob:", "data:"))
                             for r in resources)  # fmt: skip
