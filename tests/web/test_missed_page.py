"""The missed-calls page: open cases first (oldest first) with the contact's name, closed ones below; done with a
note, assign, call back; through a running appliance's control socket, or on the store when none runs; the
e-mail settings form with its errors next to the fields."""

from __future__ import annotations

import asyncio
import re
import threading
from datetime import datetime, timedelta, timezone

import pytest

from appliance.control import ControlServer, socket_path
from appliance.missed.service import MissedService
from appliance.store import Store
from appliance.store.mail import MailOutbox
from tests.web.conftest import post_form

T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=3)
SHOP = "+380671234567"
OTHER = "+380501112233"


def missed_call(store: Store, call_id: str, caller: str, at: datetime, wait_s: float = 20.0) -> None:
    row = {"id": call_id, "started_at": (at - timedelta(seconds=wait_s)).isoformat(), "ended_at": at.isoformat(),
           "direction": "inbound", "caller": caller, "dialled": "+380441112233", "trunk": "provider",
           "extension": None, "answered_by": None, "outcome": "missed", "wait_s": wait_s, "talk_s": 0.0,
           "path": [{"kind": "group"}, {"kind": "end", "reason": "no answer", "rung": ["102", "103"]}]}
    store.finish_call(row, {"caller": caller, "dialled": "+380441112233", "at": at.isoformat(), "manager": None})
    MissedService(store).file_call(call_id)


@pytest.fixture
def cases(panel_data):
    """Two open cases (the shop, a contact, called twice; another number later) and one closed."""
    with Store(panel_data) as store:
        store.put_contact({"number": SHOP, "name": "Будівельний двір", "manager": "101"})
        missed_call(store, "c1", OTHER, T0 + timedelta(minutes=30), wait_s=15.0)
        missed_call(store, "c2", SHOP, T0, wait_s=25.0)
        missed_call(store, "c3", SHOP, T0 + timedelta(minutes=5), wait_s=35.0)
        missed_call(store, "c4", "+380939998877", T0 - timedelta(hours=1))
        svc = MissedService(store)
        ids = {c["caller"]: c["id"] for c in svc.list()["cases"]}
        svc.done(ids["+380939998877"], by="102", note="called from a mobile")
    return ids


def case_of(data_dir, case_id: int) -> dict:
    with Store(data_dir) as store:
        return MissedService(store).tables.case(case_id)


def text_of(html: bytes) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.decode()))


def test_open_cases_first_oldest_first_with_the_contacts_name_then_closed(owner, cases, panel_data):
    page = owner.get("/missed/", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    html = page.data.decode()
    open_part = html[html.index('id="open-cases"'):html.index('id="closed-cases"')]
    assert open_part.index(SHOP) < open_part.index(OTHER)           # the older case first
    shop_row = text_of(re.search(rf'<tr id="case-{cases[SHOP]}">.*?</tr>', html, re.S).group(0).encode())
    assert "Будівельний двір" in shop_row and " 2 " in shop_row     # two calls
    assert "1 min" in shop_row                                      # waited 25 + 35 s
    with Store(panel_data) as store:
        assert f"101 {store.extension('101')['name']}" in shop_row  # the contact's manager
    assert "3 h" in shop_row                                        # open since T0
    closed_part = html[html.index('id="closed-cases"'):]
    assert "+380939998877" in closed_part and "called from a mobile" in closed_part and "marked done" in closed_part


def test_each_automatic_callback_attempt_is_a_line_on_its_case(owner, cases, panel_data):
    with Store(panel_data) as store:
        tables = MissedService(store).tables
        with store.transaction():
            first = tables.add_attempt(cases[SHOP], "2025-03-03T09:05:00.000+00:00", "101")
            tables.attempt_call(first, "cb1")
            tables.attempt_over(first, "the customer did not answer", False, "2025-03-03T09:06:00.000+00:00")
            second = tables.add_attempt(cases[SHOP], "2025-03-03T09:15:00.000+00:00", "101")
            refused = tables.add_attempt(cases[OTHER], "2025-03-03T09:20:00.000+00:00", "102")
            tables.attempt_over(refused, "refused: No trunk is available to call out", False,
                                "2025-03-03T09:20:00.000+00:00")
        name = store.extension("101")["name"]
    html = owner.get("/missed/", headers={"Accept-Language": "en"}).data.decode()
    lines = [text_of(li.encode()).strip() for li in
             re.findall(r"<li>.*?</li>", re.search(rf'<ul class="attempts" id="attempts-{cases[SHOP]}">.*?</ul>',
                                                  html, re.S).group(0), re.S)]
    assert lines == [f"Automatic callback 03.03 11:05 from 101 {name}: the customer did not answer",
                     f"Automatic callback 03.03 11:15 from 101 {name}: under way"], second
    other = text_of(re.search(rf'<ul class="attempts" id="attempts-{cases[OTHER]}">.*?</ul>', html, re.S).group(0)
                    .encode())
    assert "refused: No trunk is available to call out" in other
    uk = text_of(owner.get("/missed/").data)
    assert "Автоматичний зворотний дзвінок 03.03 11:05 з 101" in uk and "клієнт не відповів" in uk


def test_the_page_is_in_ukrainian_by_default(owner, cases):
    text = text_of(owner.get("/missed/").data)
    assert "Пропущені дзвінки" in text and "Відкриті справи (2)" in text and "Передзвонити клієнтові" in text
    assert "позначено виконаною" in text


def test_done_with_a_note_closes_the_case_on_the_store_when_no_appliance_runs(owner, cases, panel_data):
    case_id = cases[SHOP]
    resp = post_form(owner, f"/missed/{case_id}/done", {"note": "  offered a discount  "}, page="/missed/")
    assert resp.status_code == 302
    case = case_of(panel_data, case_id)
    assert (case["status"], case["ended_how"], case["closed_by"], case["note"]) == (
        "closed", "done", "panel", "offered a discount")


def test_done_on_a_closed_case_says_why_next_to_the_note(owner, cases, panel_data):
    case_id = cases[SHOP]
    post_form(owner, f"/missed/{case_id}/done", {"note": "first"}, page="/missed/")
    resp = post_form(owner, f"/missed/{case_id}/done", {"note": "again"}, page="/missed/",
                     headers={"Accept-Language": "en"})
    # The case is no longer open, so it has no form on the page: the refusal stands above the lists.
    assert resp.status_code == 400
    assert re.search(r'class="form-error" role="alert">case \d+ is already closed \(done, by panel\)', resp.data.decode())
    assert case_of(panel_data, case_id)["note"] == "first"


def test_a_note_too_long_is_refused_next_to_its_field(owner, cases, panel_data):
    case_id = cases[SHOP]
    resp = post_form(owner, f"/missed/{case_id}/done", {"note": "x" * 600}, page="/missed/",
                     headers={"Accept-Language": "en"})
    assert resp.status_code == 400
    html = resp.data.decode()
    assert re.search(rf'id="note-done-{case_id}-error">[^<]*500', html)
    assert case_of(panel_data, case_id)["status"] == "open"


def test_assign_gives_the_case_to_another_extension(owner, cases, panel_data):
    case_id = cases[OTHER]
    resp = post_form(owner, f"/missed/{case_id}/assign", {"ext": "103"}, page="/missed/")
    assert resp.status_code == 302
    case = case_of(panel_data, case_id)
    assert (case["assigned_to"], case["assigned_by"]) == ("103", "panel")


def test_assign_to_nobody_is_refused_next_to_the_field(owner, cases, panel_data):
    case_id = cases[OTHER]
    resp = post_form(owner, f"/missed/{case_id}/assign", {"ext": ""}, page="/missed/",
                     headers={"Accept-Language": "en"})
    assert resp.status_code == 400
    assert f'id="ext-assign-{case_id}-error">Choose whom to give it to.' in resp.data.decode()


def test_call_back_without_the_appliance_shows_why_next_to_the_button(owner, cases):
    case_id = cases[SHOP]
    resp = post_form(owner, f"/missed/{case_id}/call", {"ext": "101"}, page="/missed/",
                     headers={"Accept-Language": "en"})
    assert resp.status_code == 400
    error = re.search(rf'id="ext-call-{case_id}-error">([^<]*)<', resp.data.decode()).group(1)
    assert error.startswith("The call was not placed: the appliance is not running")


def test_a_form_without_its_csrf_token_is_refused(owner, cases, panel_data):
    resp = owner.post(f"/missed/{cases[SHOP]}/done", data={"note": "x"})
    assert resp.status_code == 400
    assert case_of(panel_data, cases[SHOP])["status"] == "open"


class Appliance:
    """The control socket of a running appliance with the missed service's commands, on its own loop."""

    def __init__(self, data_dir, originate=None):
        self.store = Store(data_dir)
        self.events: list[dict] = []
        self.loop = asyncio.new_event_loop()
        self.server = ControlServer(socket_path(data_dir))
        MissedService(self.store, self.events.append).register(self.server)
        if originate is not None:
            self.server.command("calls.originate", originate)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(5)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
        self.store.close()


@pytest.fixture
def appliance(panel_data, cases):
    calls: list[dict] = []
    running = Appliance(panel_data, originate=lambda args: calls.append(args) or {"call_id": "x1"})
    running.originated = calls
    yield running
    running.stop()


def test_with_the_appliance_running_the_changes_go_through_it(owner, cases, appliance, panel_data):
    post_form(owner, f"/missed/{cases[OTHER]}/assign", {"ext": "102"}, page="/missed/")
    post_form(owner, f"/missed/{cases[SHOP]}/done", {"note": "sorted"}, page="/missed/")
    assert [e["kind"] for e in appliance.events] == ["MissedCaseAssigned", "MissedCaseClosed"]
    assert case_of(panel_data, cases[SHOP])["closed_by"] == "panel"


def test_call_back_asks_the_appliance_to_ring_the_extension_then_the_customer(owner, cases, appliance):
    resp = post_form(owner, f"/missed/{cases[SHOP]}/call", {"ext": "101"}, page="/missed/",
                     headers={"Accept-Language": "en"}, follow_redirects=True)
    assert resp.status_code == 200
    assert appliance.originated == [{"ext": "101", "number": SHOP}]
    assert "Extension 101 rings now" in resp.data.decode()


def test_call_back_when_the_appliance_lacks_the_command_shows_its_error(owner, cases, panel_data):
    running = Appliance(panel_data)          # no calls.originate
    try:
        resp = post_form(owner, f"/missed/{cases[SHOP]}/call", {"ext": "101"}, page="/missed/",
                         headers={"Accept-Language": "en"})
    finally:
        running.stop()
    assert resp.status_code == 400
    assert f"id=\"ext-call-{cases[SHOP]}-error\">The call was not placed: unknown command &#39;calls.originate&#39;" \
        in resp.data.decode()


# -- e-mail settings ---------------------------------------------------------------------


MAIL = {"host": "smtp.example.com", "port": "587", "security": "starttls", "username": "pbx",
        "password": "mail-secret", "sender": "Office PBX <pbx@example.com>", "owner": "boss@example.com",
        "summary_at": "18:30"}


def mail_setting(data_dir) -> dict:
    with Store(data_dir) as store:
        return store.get_setting("mail")


def test_mail_settings_are_saved_and_the_password_is_never_shown(owner, panel_data):
    resp = post_form(owner, "/missed/mail", MAIL, page="/missed/")
    assert resp.status_code == 302
    assert mail_setting(panel_data) == {"host": "smtp.example.com", "port": 587, "security": "starttls",
                                        "username": "pbx", "password": "mail-secret",
                                        "from": "Office PBX <pbx@example.com>", "owner": "boss@example.com",
                                        "summary_at": "18:30"}
    page = owner.get("/missed/").data.decode()
    assert "mail-secret" not in page and "smtp.example.com" in page
    resp = post_form(owner, "/missed/mail", {**MAIL, "password": "", "host": "mail.example.com"}, page="/missed/")
    assert resp.status_code == 302
    assert mail_setting(panel_data)["password"] == "mail-secret"     # empty keeps it
    assert mail_setting(panel_data)["host"] == "mail.example.com"


@pytest.mark.parametrize("field, value, error", [
    ("port", "70000", "port must be a whole number from 1 to 65535"),
    ("sender", "the office", "from must be an e-mail address"),
    ("owner", "boss@", "owner must be an e-mail address"),
    ("summary_at", "7 pm", "summary_at must be a time of day"),
    ("security", "ssl", "Not a valid choice"),
])
def test_a_bad_mail_value_is_refused_next_to_its_field(owner, panel_data, field, value, error):
    resp = post_form(owner, "/missed/mail", {**MAIL, field: value}, page="/missed/", headers={"Accept-Language": "en"})
    assert resp.status_code == 400
    html = resp.data.decode()
    assert re.search(rf'id="{field}-error">[^<]*{re.escape(error)}', html), html[html.index('id="mail-form"'):][:3000]
    assert mail_setting(panel_data) in (None, {})


def test_waiting_mail_and_the_servers_reason_are_shown(owner, panel_data):
    with Store(panel_data) as store:
        mails = MailOutbox(store)
        with store.transaction():
            mail_id = mails.add("case", "2025-03-04T08:00:00+00:00", "olha@example.com", "s", "b")
        mails.failed(mail_id, 0.0, "the SMTP server smtp.example.com:587 refused the login of 'pbx': 535 bad")
    text = text_of(owner.get("/missed/", headers={"Accept-Language": "en"}).data)
    assert "E-mails waiting to be sent: 1." in text and "refused the login of &#39;pbx&#39;: 535 bad" in text
