"""The wallboard: its figures against an independent count of records and cases written through the
store's own methods, the amber and red classes at the thresholds, the settings form, the kiosk link,
the event stream; and in headless Chromium, a screenshot in each language.

The appliance's control socket and live monitor run on a loop of their own (the harness of the live
calls page's tests) and are fed the event dicts the engine emits; the monitor's clock stands at
2026-03-02 09:00:25 UTC, 11:00:25 in Kyiv, so "today" is 2 March in the office's time zone.
"""

from __future__ import annotations

import json
import re
import time
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from appliance.store import Store
from appliance.store.agents import AgentStatuses
from appliance.store.missed import MissedTables
from appliance.store.panel import PanelTables
from tests.web import browser as b
from tests.web.conftest import OWNER_PASSWORD, post_form
from tests.web.test_monitor_page import CALL, TO_THE_QUEUE, Appliance, at, sse_items
from web import office

KYIV = ZoneInfo("Europe/Kyiv")
TODAY = date(2026, 3, 2)

# A second caller whose phones ring (104), and an outbound call 102 placed and is talking on.
RINGING_CALL = [
    {"kind": "CallStarted", "at": at(10), "call_id": "c2", "direction": "inbound", "caller": "+380671112233",
     "caller_name": "", "dialled": "0441234567", "trunk": "provider", "extension": ""},
    {"kind": "StepStarted", "at": at(10.1), "call_id": "c2", "step": "ring", "dest": "group:sales", "name": "group 'Sales'"},
    {"kind": "LegStarted", "at": at(10.2), "call_id": "c2", "target": "104", "uri": "sip:104@127.0.0.1", "leg": 9},
]
OUTBOUND_CALL = [
    {"kind": "CallStarted", "at": at(5), "call_id": "c3", "direction": "outbound", "caller": "102",
     "caller_name": "Petro", "dialled": "0671234567", "trunk": "provider", "extension": "102"},
    {"kind": "CallAnswered", "at": at(8), "call_id": "c3", "by": "+380671234567", "wait_s": 3.0},
]


def record(call_id: str, started: str, *, direction: str = "inbound", by: str | None = None,
           outcome: str = "answered", wait: float = 5.0, reason: str = "answered") -> dict:
    return {"id": call_id, "started_at": started, "answered_at": started if by else None, "ended_at": started,
            "direction": direction, "caller": "+380501234567" if direction == "inbound" else "101",
            "dialled": "0441234567", "trunk": "provider", "extension": "" if direction == "inbound" else "101",
            "answered_by": by, "outcome": outcome, "wait_s": wait, "talk_s": 60.0 if by else 0.0,
            "path": [{"kind": "step", "step": "ring", "dest": "group:sales", "name": "group 'Sales'"},
                     {"kind": "end", "reason": reason, "rung": []}]}


RECORDS = [
    record("a1", "2026-03-02T07:00:00.000+00:00", by="101", wait=8.0),
    record("a2", "2026-03-02T07:10:00.000+00:00", by="102", wait=35.0),         # answered, too late
    record("a3", "2026-03-01T22:30:00.000+00:00", by="101", wait=20.0),         # 00:30 in Kyiv: today
    record("m1", "2026-03-02T08:00:00.000+00:00", outcome="missed", wait=40.0, reason="caller hung up"),
    record("m2", "2026-03-02T08:05:00.000+00:00", outcome="voicemail", wait=25.0, reason="voicemail"),
    record("s1", "2026-03-02T08:10:00.000+00:00", outcome="missed", wait=2.0, reason="caller hung up"),  # short
    record("y1", "2026-03-01T21:30:00.000+00:00", by="101", wait=2.0),          # 23:30 yesterday in Kyiv
    record("y2", "2026-03-01T21:59:59.000+00:00", outcome="missed", wait=30.0, reason="caller hung up"),
    record("o1", "2026-03-02T07:30:00.000+00:00", direction="outbound", by="+380671234567", wait=4.0),
    record("t1", "2026-03-02T22:00:00.000+00:00", by="101", wait=1.0),          # 00:00 tomorrow in Kyiv
]
OPEN_CASES = ["+380501110001", "+380501110002", "+380501110003"]


def expected_figures(records: list[dict], answer_within: float = 20, short_abandon: float = 5) -> dict:
    """The day's figures counted in plain Python, by the definitions of docs/reports.md."""
    today = [r for r in records if r["direction"] == "inbound"
             and datetime.fromisoformat(r["started_at"]).astimezone(KYIV).date() == TODAY]
    answered = [r for r in today if r["answered_by"]]
    short = [r for r in today if not r["answered_by"] and r["outcome"] == "missed" and r["wait_s"] < short_abandon
             and r["path"][-1]["reason"] in ("caller hung up", "caller gave up")]
    missed = [r for r in today if not r["answered_by"] and r not in short
              and r["outcome"] in ("missed", "voicemail", "interrupted", "abandoned")]
    within = [r for r in answered if r["wait_s"] <= answer_within]
    return {"answered": len(answered), "missed": len(missed),
            "service_level": int(100 * len(within) / (len(answered) + len(missed)))}


@pytest.fixture
def office_data(panel_data):
    """The seeded office (101-103) with 104, phones registered for 101, 102 and 104, 101 on a break,
    today's records (and some of other days), an in-progress record, three open missed-call cases and a
    closed one."""
    with Store(panel_data) as store:
        store.add_extension("104", "Olena", "pw-104-secret")
        far = time.time() + 3600
        store.save_bindings([{"extension": n, "contact": f"sip:{n}@192.0.2.{n[-1]}", "source_host": "192.0.2.7",
                              "source_port": 5062, "transport": "udp", "user_agent": "desk", "call_id": f"r{n}",
                              "cseq": 1, "q": 1.0, "expires_at": far, "registered_at": far - 3600, "instance": None}
                             for n in ("101", "102", "104")], [])
        for r in RECORDS:
            missed = None if r["answered_by"] or r["direction"] != "inbound" else {
                "caller": r["caller"], "dialled": r["dialled"], "at": r["ended_at"], "manager": None}
            store.finish_call(r, missed)
        store.call_started({"id": "p1", "started_at": "2026-03-02T08:30:00.000+00:00", "direction": "inbound",
                            "caller": "+380509999999", "dialled": "0441234567", "trunk": "provider"})
        AgentStatuses(store).set("101", "break", by="101", at="2026-03-02T08:50:00.000+00:00")
        tables = MissedTables(store)
        with store.transaction():
            for n in OPEN_CASES:
                tables.save_case({"id": None, "caller": n, "dialled": "0441234567", "status": "open", "short": 0,
                                  "count": 1, "opened_at": "2026-03-02T08:00:00+00:00",
                                  "last_at": "2026-03-02T08:00:00+00:00", "waited_s": 30.0})
            tables.save_case({"id": None, "caller": "+380501110009", "dialled": "0441234567", "status": "closed",
                              "short": 0, "count": 1, "opened_at": "2026-03-02T07:00:00+00:00",
                              "last_at": "2026-03-02T07:00:00+00:00", "waited_s": 30.0,
                              "closed_at": "2026-03-02T07:30:00+00:00", "ended_how": "done", "closed_by": "101"})
    return panel_data


@pytest.fixture
def appliance(office_data):
    a = Appliance(office_data)
    yield a
    a.stop()


def value(page: str, tile: str) -> str:
    m = re.search(rf'id="{tile}-value"[^>]*>([^<]*)<', page)
    assert m, f"no {tile} tile on the page"
    return m.group(1).strip()


def levels(page: str) -> dict[str, str]:
    return dict((t, lv) for lv, t in re.findall(r'class="tile level-(\w+)" id="tile-([\w-]+)"', page))


def agent_states(page: str) -> dict[str, str]:
    """Extension -> its state, with the person's status after a slash when it is not available."""
    found = re.findall(r'class="agent agent-(\w+)(?: status-(\w+))?" id="agent-(\d+)"', page)
    return {number: f"{state}/{status}" if status else state for state, status, number in found}


def set_thresholds(data_dir, section: dict) -> None:
    with Store(data_dir) as store:
        office.save(store, {**office.document(store), "wallboard": section}, "test", "thresholds")


# ---- the figures ------------------------------------------------------------------------------


def test_the_tiles_count_todays_records_and_the_open_cases_as_an_independent_count_does(owner, appliance):
    appliance.feed(TO_THE_QUEUE + RINGING_CALL + OUTBOUND_CALL)
    page = owner.get("/wallboard/").get_data(as_text=True)
    want = expected_figures(RECORDS)
    assert want == {"answered": 3, "missed": 2, "service_level": 40}      # the records were chosen for this
    assert value(page, "answered") == str(want["answered"])
    assert value(page, "missed") == str(want["missed"])
    assert value(page, "service-level").startswith(str(want["service_level"]))
    with Store(appliance_dir(owner)) as s:
        open_cases = [c for c in MissedTables(s).cases(include_closed=True) if c["status"] == "open"]
    assert value(page, "missed-open") == str(len(open_cases)) == str(len(OPEN_CASES))
    # Two inbound callers wait (one in the queue since 09:00:00, one ringing since 09:00:10); the
    # outbound call is nobody's wait.
    assert value(page, "waiting") == "2"
    assert value(page, "longest-wait") == "0:25"
    assert f'data-since="{datetime.fromisoformat(at(0)).timestamp()}"' in page
    # 101's person is on a break (set by *45), the system's state apart.
    assert agent_states(page) == {"101": "free/break", "102": "talking", "103": "offline", "104": "ringing"}
    assert "104 Olena" in page and "розмовляє" in page and "на перерві" in page     # Ukrainian by default
    # Nothing is coloured without thresholds.
    assert set(levels(page).values()) == {"ok"}


def test_the_page_has_no_menu_no_inline_script_and_the_panels_headers(owner, appliance):
    resp = owner.get("/wallboard/")
    page = resp.get_data(as_text=True)
    assert 'class="menu"' not in page and "<script>" not in page and "style=" not in page
    assert 'src="/static/wallboard.js"' in page and 'href="/static/wallboard.css"' in page
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Frame-Options"] == "DENY" and resp.headers["Cache-Control"] == "no-store"
    assert 'data-events="/wallboard/events"' in page and 'id="wallboard-settings"' in page


def test_without_the_appliance_the_day_figures_still_show(owner, office_data, monkeypatch):
    from web.areas import wallboard as area

    monkeypatch.setattr(area, "utc_now", lambda: datetime.fromisoformat(at(25)))
    page = owner.get("/wallboard/").get_data(as_text=True)
    assert value(page, "answered") == "3" and value(page, "missed") == "2" and value(page, "waiting") == "–"
    assert 'id="stream-down" class="paused">' in page                     # shown, not hidden
    tiles = owner.get("/wallboard/tiles").get_json()
    assert 'id="answered-value">3<' in tiles["html"]


# ---- amber and red ------------------------------------------------------------------------------


def test_tiles_turn_amber_and_red_at_the_thresholds(owner, appliance):
    appliance.feed(TO_THE_QUEUE + RINGING_CALL + OUTBOUND_CALL)
    # waiting 2, longest wait 25 s, service level 40 %, 3 open cases
    set_thresholds(appliance_dir(owner), {"waiting": {"amber": 2, "red": 3}, "longest_wait": {"amber": 20, "red": 25},
                                          "service_level": {"amber": 50, "red": 40}, "missed_open": {"amber": 1, "red": 4}})
    page = owner.get("/wallboard/").get_data(as_text=True)
    assert levels(page) == {"waiting": "amber", "longest-wait": "red", "answered": "ok", "missed": "ok",
                            "service-level": "amber", "missed-open": "amber"}
    assert 'data-worst="red"' in page
    assert 'data-amber="20" data-red="25"' in page              # the page recolours the wait as it grows

    set_thresholds(appliance_dir(owner), {"waiting": {"red": 2}, "longest_wait": {"amber": 26},
                                          "service_level": {"amber": 40}, "missed_open": {"red": 3}})
    page = owner.get("/wallboard/").get_data(as_text=True)
    assert levels(page) == {"waiting": "red", "longest-wait": "ok", "answered": "ok", "missed": "ok",
                            "service-level": "ok", "missed-open": "red"}

    set_thresholds(appliance_dir(owner), {"service_level": {"amber": 41, "red": 39}, "answer_within_seconds": 35})
    page = owner.get("/wallboard/").get_data(as_text=True)
    # Within 35 s: a1, a2 and a3 of 5 offered, 60 %.
    assert value(page, "service-level").startswith(str(expected_figures(RECORDS, answer_within=35)["service_level"]))
    assert levels(page)["service-level"] == "ok" and "35 с" in page


def appliance_dir(client) -> str:
    return client.application.config["DATA_DIR"]


# ---- the settings form ------------------------------------------------------------------------------


def saved_state(data_dir) -> tuple:
    with Store(data_dir) as store:
        return store.get_setting("wallboard"), PanelTables(store).latest_version()


@pytest.mark.parametrize("form, field", [
    ({"waiting_amber": "4", "waiting_red": "2"}, "waiting_red"),
    ({"service_level_amber": "60", "service_level_red": "80"}, "service_level_red"),
    ({"service_level_amber": "101"}, "service_level_amber"),
    ({"longest_wait_amber": "0"}, "longest_wait_amber"),
    ({"missed_open_red": "many"}, "missed_open_red"),
    ({"answer_within_seconds": "601"}, "answer_within_seconds"),
])
def test_a_refused_threshold_is_shown_next_to_its_field_and_nothing_is_saved(owner, office_data, form, field):
    before = saved_state(office_data)
    resp = post_form(owner, "/wallboard/settings", {**form, "led": "y"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    errors = re.findall(r'<p class="field-error" id="([\w]+)-error">', page)
    assert errors == [field]
    assert f'value="{form[field]}"' in page                     # what was typed stays in the form
    assert saved_state(office_data) == before


def test_thresholds_are_saved_as_a_version_and_shown_again(owner, office_data):
    resp = post_form(owner, "/wallboard/settings", {
        "waiting_amber": "2", "waiting_red": "4", "longest_wait_red": "120", "service_level_amber": "80",
        "service_level_red": "60", "missed_open_amber": "1", "answer_within_seconds": "30"})
    assert resp.status_code == 302
    setting, version = saved_state(office_data)
    assert setting == {"waiting": {"amber": 2, "red": 4}, "longest_wait": {"red": 120},
                       "service_level": {"amber": 80, "red": 60}, "missed_open": {"amber": 1},
                       "answer_within_seconds": 30, "led": False}
    assert "wallboard:" in version["document"] and version["summary"] == "пороги табло"
    page = owner.get("/wallboard/settings").get_data(as_text=True)
    assert 'id="waiting_red" name="waiting_red" type="number" value="4"' in page
    assert 'id="led" name="led" type="checkbox" value="y"' in page and "checked" not in page


# ---- kiosk access --------------------------------------------------------------------------------------


def make_kiosk(owner) -> str:
    resp = post_form(owner, "/wallboard/settings/kiosk", {}, page="/wallboard/settings")
    assert resp.status_code == 200
    m = re.search(r'id="kiosk-link" value="http://localhost/wallboard/\?kiosk=([\w-]+)"', resp.get_data(as_text=True))
    assert m, "the new link is shown"
    return m.group(1)


def test_the_kiosk_link_opens_the_wallboard_and_its_updates_and_nothing_else(app, owner, appliance):
    token = make_kiosk(owner)
    assert len(token) >= 40
    with Store(app.config["DATA_DIR"]) as store:
        assert token not in json.dumps(store.settings())          # only its digest is kept
    tv = app.test_client()                                        # no session, no password
    resp = tv.get(f"/wallboard/?kiosk={token}")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and 'id="tile-waiting"' in page
    assert f'data-events="/wallboard/events?kiosk={token}"' in page and f'data-tiles="/wallboard/tiles?kiosk={token}"' in page
    assert 'id="wallboard-settings"' not in page and "Content-Security-Policy" in resp.headers
    assert tv.get(f"/wallboard/tiles?kiosk={token}").get_json()["html"].count('class="tile ') == 7

    appliance.feed(TO_THE_QUEUE)
    stream = tv.get(f"/wallboard/events?kiosk={token}", buffered=False)
    assert stream.status_code == 200 and stream.mimetype == "text/event-stream"
    (_retry, _), (kind, data) = sse_items(stream.iter_encoded(), 2)
    assert kind == "tiles" and 'id="waiting-value">1<' in json.loads(data)["html"]
    stream.close()

    for url in ("/", "/extensions/", "/monitor/", "/monitor/events", "/wallboard/settings", "/settings/", "/history/"):
        resp = tv.get(f"{url}?kiosk={token}")
        assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"], url
    # No POST, not even to the wallboard's own forms.
    for url in ("/wallboard/settings", "/wallboard/settings/kiosk", "/wallboard/settings/kiosk/revoke"):
        resp = tv.post(f"{url}?kiosk={token}", data={"waiting_red": "1"})
        assert resp.status_code in (302, 400), url
    assert saved_state(app.config["DATA_DIR"])[0] is None
    assert tv.get(f"/wallboard/?kiosk={token}").status_code == 200   # the link still works
    # Without the token, or with another, nothing opens.
    for bad in ("", token[:-1], token + "x", token.upper()):
        assert tv.get(f"/wallboard/?kiosk={bad}").status_code == 302


def test_a_revoked_or_replaced_kiosk_link_is_refused(app, owner, office_data):
    first = make_kiosk(owner)
    tv = app.test_client()
    assert tv.get(f"/wallboard/?kiosk={first}").status_code == 200
    second = make_kiosk(owner)                                    # a new link ends the old one
    assert tv.get(f"/wallboard/?kiosk={first}").status_code == 302
    assert tv.get(f"/wallboard/?kiosk={second}").status_code == 200
    page = owner.get("/wallboard/settings").get_data(as_text=True)
    assert 'id="kiosk-state"' in page and second not in page      # shown once only
    resp = post_form(owner, "/wallboard/settings/kiosk/revoke", {}, page="/wallboard/settings")
    assert resp.status_code == 302
    for url in ("/wallboard/", "/wallboard/tiles", "/wallboard/events"):
        resp = tv.get(f"{url}?kiosk={second}")
        assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"], url
    assert "Посилання кіоску немає" in owner.get("/wallboard/settings").get_data(as_text=True)


# ---- the event stream ------------------------------------------------------------------------------------


def test_the_stream_sends_the_tiles_again_after_each_change(owner, appliance):
    appliance.feed(TO_THE_QUEUE)
    resp = owner.get("/wallboard/events", buffered=False)
    chunks = resp.iter_encoded()
    (_retry, _), (kind, data) = sse_items(chunks, 2)
    assert kind == "tiles" and 'id="waiting-value">1<' in json.loads(data)["html"]
    appliance.feed(RINGING_CALL[:1])                 # arriving: not waiting yet
    appliance.feed(RINGING_CALL[1:])                 # ringing: waiting
    items = sse_items(chunks, 3)
    html = json.loads(items[-1][1])["html"]
    assert 'id="waiting-value">2<' in html and 'class="agent agent-ringing" id="agent-104"' in html
    appliance.feed([{"kind": "CallEnded", "at": at(30), "call_id": CALL, "outcome": "answered"}])
    kind, data = sse_items(chunks, 1)[0]
    assert kind == "tiles" and 'id="waiting-value">1<' in json.loads(data)["html"]
    resp.close()


# ---- in a browser ---------------------------------------------------------------------------------------------


def test_the_wallboard_in_chromium_in_both_languages_and_by_the_kiosk_link(browser, app, owner, appliance):
    appliance.feed(TO_THE_QUEUE + RINGING_CALL + OUTBOUND_CALL)
    set_thresholds(appliance_dir(owner), {"waiting": {"amber": 2}, "longest_wait": {"red": 20},
                                          "missed_open": {"amber": 1, "red": 5}})
    token = make_kiosk(owner)
    with b.serving(app) as base:
        browser.set_window_size(1280, 720)
        try:
            b.log_in(browser, base, OWNER_PASSWORD)
            browser.get(base + "/lang/uk?next=/wallboard/")     # the browser itself asks for English
            assert browser.title.startswith("Табло")
            WebDriverWait(browser, 10).until(lambda d: not d.find_element(By.ID, "stream-down").is_displayed())
            assert b.live_text(browser, "waiting-value") == "2"
            assert "level-red" in b.live_class(browser, "tile-longest-wait")
            assert "level-amber" in b.live_class(browser, "tile-waiting")
            b.shot(browser, "wallboard-uk")

            browser.get(base + "/lang/en?next=/wallboard/")
            assert browser.title.startswith("Wallboard")
            WebDriverWait(browser, 10).until(lambda d: not d.find_element(By.ID, "stream-down").is_displayed())
            assert "Callers waiting" in browser.page_source
            b.shot(browser, "wallboard-en")

            # The TV: no cookies at all, only the link.
            browser.delete_all_cookies()
            browser.get(f"{base}/wallboard/?kiosk={token}")
            WebDriverWait(browser, 10).until(lambda d: not d.find_element(By.ID, "stream-down").is_displayed())
            assert browser.find_elements(By.ID, "wallboard-settings") == []
            appliance.feed([{"kind": "CallEnded", "at": at(30), "call_id": CALL, "outcome": "answered"}])
            WebDriverWait(browser, 10).until(lambda d: b.live_text(d, "waiting-value") == "1")
            b.shot(browser, "wallboard-kiosk-uk")
        finally:
            browser.set_window_size(1200, 900)
            browser.delete_all_cookies()


# ---- the unit that shows it on the Pi's screen ------------------------------------------------------------


def test_the_wallboard_unit_verifies_and_stays_optional(tmp_path):
    import configparser
    import subprocess
    from pathlib import Path

    units = Path(__file__).resolve().parents[2] / "systemd"
    src = units / "pbx-wallboard.service"
    (tmp_path / src.name).write_text(src.read_text())
    res = subprocess.run(["systemd-analyze", "verify", str(tmp_path / src.name)], capture_output=True, text=True)
    assert res.returncode == 0 and "pbx" not in res.stdout + res.stderr, res.stdout + res.stderr

    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read(src)
    svc = cp["Service"]
    exec_start = svc["ExecStart"]
    for flag in ("--kiosk", "--noerrdialogs", "--disable-session-crashed-bubble", '"$$PBX_WALLBOARD_URL"'):
        assert flag in exec_start
    assert exec_start.startswith("/bin/sh -c 'exec cage ") and svc["EnvironmentFile"] == "/etc/pbx/wallboard.env"
    assert svc["User"] == "pbx-wallboard" and svc["PAMName"] == "login" and svc["Restart"] == "always"
    # Skipped, not failed, on a machine without the display packages or the kiosk address.
    assert "ConditionPathExists=/etc/pbx/wallboard.env" in src.read_text()
    assert "ConditionFileIsExecutable=/usr/bin/cage" in src.read_text()
    # The installer lays out and enables only the appliance's own two units.
    assert "pbx-wallboard" not in (units / "install").read_text()
