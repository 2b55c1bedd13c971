"""Driving the panel in headless Chromium: serving an app, logging in, screenshots.

Screenshots go to $PBX_SCREENSHOTS (default build/screenshots in the
checkout), one PNG per step, named after the test and the step, so a run
leaves a picture of every page it saw.
"""

from __future__ import annotations

import os
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("PBX_SCREENSHOTS", ROOT / "build" / "screenshots"))


@contextmanager
def serving(app) -> Iterator[str]:
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()


def chromium():
    """Debian's headless Chromium through its own chromedriver; nothing is fetched from the internet."""
    # Selenium Manager must not look for browsers or drivers on the internet.
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1200,900"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=opts)
    driver.set_page_load_timeout(20)
    return driver


def shot(browser, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    browser.save_screenshot(str(path))
    return path


def gone(element):
    """A wait condition: the element's page has been replaced.  While Chromium swaps documents, asking
    about an old element can fail with "Node ... does not belong to the document" instead of a stale
    reference: that answer says the same."""
    def check(_driver) -> bool:
        try:
            element.is_enabled()
        except (StaleElementReferenceException, WebDriverException):
            return True
        return False

    return check


def submit(browser, button_id: str) -> None:
    """Click a submit button and wait until the next page has replaced this one."""
    button = browser.find_element(By.ID, button_id)
    button.click()
    WebDriverWait(browser, 10).until(gone(button))


def fill(browser, field_id: str, text: str) -> None:
    el = browser.find_element(By.ID, field_id)
    el.clear()
    el.send_keys(text)


def log_in(browser, base: str, password: str, fresh: bool = True) -> None:
    """Log in; `fresh` first forgets every cookie (the session's and the language's)."""
    if fresh:
        browser.delete_all_cookies()
    browser.get(base + "/auth/login")
    fill(browser, "password", password)
    field = browser.find_element(By.ID, "password")
    field.submit()
    WebDriverWait(browser, 10).until(gone(field))


def text_of(browser, element_id: str) -> str:
    return browser.find_element(By.ID, element_id).text


def live_text(browser, element_id: str) -> str | None:
    """The element's text read inside the page in one step: a part the page's script replaces
    whole on each update (the wallboard's tiles) would go stale between finding it and reading it."""
    return browser.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.innerText.trim() : null;", element_id)


def live_class(browser, element_id: str) -> str:
    """The element's class attribute, read in one step like live_text."""
    return browser.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.className : '';", element_id)
