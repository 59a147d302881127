"""Headless Chromium for the page tests (report, serve): where the browser is, and one driver.

Needs the Debian packages ``chromium`` and ``chromium-driver`` and the ``selenium`` package (dev
extra). A test module sets ``pytestmark = SKIP_WITHOUT_BROWSER``: skipped when they are absent,
unless ``GRAFT_REQUIRE_BROWSER=1`` (CI, where ``.ci/run`` installs them), where a missing browser fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = (
    os.environ.get("GRAFT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
)
CHROMEDRIVER = os.environ.get("GRAFT_CHROMEDRIVER") or shutil.which("chromedriver")
try:
    import selenium  # noqa: F401

    HAVE_SELENIUM = True
except ImportError:
    HAVE_SELENIUM = False
REQUIRED = os.environ.get("GRAFT_REQUIRE_BROWSER") == "1"
MISSING = not (CHROMIUM and CHROMEDRIVER and HAVE_SELENIUM)

SKIP_WITHOUT_BROWSER = pytest.mark.skipif(
    MISSING and not REQUIRED,
    reason="headless browser test needs chromium and chromedriver (Debian: apt-get install chromium "
    "chromium-driver) and selenium (pip install -e '.[dev]')",
)


@contextmanager
def headless_chrome(window: str, *extra_args: str) -> Iterator[Any]:
    """A headless Chromium driver of ``window`` size (e.g. ``"1280,1600"``), quit on exit.

    Fails (not skips) when the browser is missing: only reached when it is required.
    """
    if MISSING:
        pytest.fail(
            f"GRAFT_REQUIRE_BROWSER=1 but chromium={CHROMIUM}, chromedriver={CHROMEDRIVER}, "
            f"selenium={'yes' if HAVE_SELENIUM else 'no'}; run `make browser` (Debian chromium "
            "chromium-driver) and `make setup`"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={window}", *extra_args):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
