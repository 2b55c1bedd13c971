"""The owner's panel: login, CSRF, and the status page, in headless Chromium and through Flask."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.web.conftest import OWNER_PASSWORD


def login(browser, panel_url, password):
    browser.delete_all_cookies()
    browser.get(panel_url + "/")
    field = browser.find_element(By.ID, "password")
    field.send_keys(password)
    field.submit()
    # submit() returns before the answer is loaded: wait until the login page is gone.
    WebDriverWait(browser, 10).until(EC.staleness_of(field))


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
