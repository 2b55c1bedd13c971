"""The owner's panel: login, CSRF, and the status page, in headless Chromium and through Flask."""

from __future__ import annotations

from selenium.webdriver.common.by import By

from tests.web.browser import log_in as login
from tests.web.conftest import OWNER_PASSWORD


def test_wrong_password_is_told_next_to_the_field(browser, panel_url):
    login(browser, panel_url, "not-the-password")
    error = browser.find_element(By.ID, "password-error")
    assert error.text in ("Wrong password.", "Хибний пароль.")
    assert "/auth/login" in browser.current_url


def test_owner_sees_extensions_and_that_the_appliance_is_down(browser, panel_url):
    login(browser, panel_url, OWNER_PASSWORD)
    rows = browser.find_elements(By.CSS_SELECTOR, "#extensions tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows] == ["101", "102", "103"]
    assert "not running" in browser.find_element(By.ID, "appliance-down").text
