"""The owner sets the office up in the panel, in headless Chromium, and a real call follows it.

`pbx run` serves the panel; the owner logs in with the printed password,
chooses their own, creates a hunt group with three members, points the
shop's route at it, checks the route preview, and then a customer's call
from the provider (a pjsua2 user agent) rings all three desk phones.
"""

from __future__ import annotations

import re
import textwrap

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from appliance.configfile import import_config
from appliance.store import Store
from tests.conftest import free_port
from tests.system.running import Running, desk_phones_and_provider
from tests.system.test_office import PASSWORDS, SHOP, customer_calls
from tests.web import browser as b

pytestmark = pytest.mark.sip


def small_office(provider_port: int) -> str:
    """Three desk phones and a provider; calls to the shop ring 101 alone."""
    exts = "".join(f"  - number: {n}\n    name: Desk {n}\n    password: {p}\n" for n, p in PASSWORDS.items())
    return "version: 1\nextensions:\n" + exts + textwrap.dedent(f"""\
        trunks:
          - name: provider
            kind: ip
            host: 127.0.0.1
            port: {provider_port}
            addresses: [127.0.0.1]
            numbers: ["{SHOP}"]
        routing:
          groups:
            front:
              name: Front desk
              members: [101]
              on_fail: hangup
          routes:
            - name: Shop
              numbers: ["{SHOP}"]
              to: group:front
          unmatched: hangup
        """)


def test_a_group_made_in_the_panel_rings_when_a_customer_calls(browser, tmp_path):
    data = tmp_path / "data"
    provider_port = free_port()
    with Store(data) as store:
        import_config(store, small_office(provider_port))
    app = Running(data)
    procs: list = []
    try:
        printed = re.search(r"panel password for the first login: (\S+)", "\n".join(app.banner)).group(1)
        phones, provider = desk_phones_and_provider(app, data, PASSWORDS, provider_port, procs)
        base = f"http://127.0.0.1:{app.web}"

        b.log_in(browser, base, printed)
        assert browser.current_url.endswith("/auth/setup"), "the printed password opens only the setup page"
        b.fill(browser, "password", "our-own-office-pass")
        b.fill(browser, "confirm", "our-own-office-pass")
        b.submit(browser, "save-password")

        browser.get(base + "/groups/new")
        b.fill(browser, "ident", "sales")
        b.fill(browser, "name", "Sales")
        Select(browser.find_element(By.ID, "strategy")).select_by_value("ringall")
        for ext in PASSWORDS:
            browser.find_element(By.ID, f"extensions-{ext}").click()
        b.shot(browser, "panel-call-new-group")
        b.submit(browser, "group-save")
        assert "/groups/new" not in browser.current_url, browser.page_source[:2000]

        browser.get(base + "/routes/")
        browser.find_element(By.ID, "route-edit-0").click()
        Select(browser.find_element(By.ID, "to")).select_by_value("group:sales")
        b.submit(browser, "route-save")

        # The preview says where a customer's call to the shop goes now.
        b.fill(browser, "caller", "0671234567")
        b.fill(browser, "dialled", SHOP)
        b.submit(browser, "preview-run")
        steps = browser.find_element(By.ID, "preview-steps").text
        assert "Sales" in steps and "101" in steps and "103" in steps, steps
        b.shot(browser, "panel-call-preview")

        # The running appliance took the change: the next call rings the new group.
        customer_calls(app, provider, "+380671234567")
        rung = {ext: phone.expect(timeout=10, ev="incoming") for ext, phone in phones.items()}
        assert all("380671234567" in r["remote"] for r in rung.values())
        phones["102"].send(cmd="answer", id=rung["102"]["id"])
        for ext in ("101", "103"):
            phones[ext].expect(timeout=10, ev="state", id=rung[ext]["id"], state="disconnected")
        provider.send(cmd="hangup", id="all")
        phones["102"].expect(timeout=10, ev="state", id=rung["102"]["id"], state="disconnected")
    finally:
        for p in procs:
            p.stop()
        app.stop()
