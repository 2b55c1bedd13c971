"""The reports page: a range of office days, the figures, each table as CSV, the charts as SVG; a bad
range answers 400 with the error next to its field; screenshots in Ukrainian and English."""

from __future__ import annotations

import csv
import io

from selenium.webdriver.common.by import By

from appliance.store import Store
from tests.web import browser as b
from tests.web.conftest import OWNER_PASSWORD
from web import create_app

EN = {"Accept-Language": "en"}


def call(store: Store, call_id: str, started: str, *, by: str | None, wait: float, talk: float, path: list,
         outcome: str, direction: str = "inbound", extension: str | None = None) -> None:
    """A call as the engine's recorder writes it: its start, its answer, its end (and its missed call)."""
    store.call_started({"id": call_id, "started_at": started, "direction": direction, "caller": "+380671234567",
                        "dialled": "0441234567", "trunk": "provider", "extension": extension, "invite": "I",
                        "source": "x"})
    if by:
        store.call_answered(call_id, started, by)
    row = {"id": call_id, "started_at": started, "answered_at": started if by else None, "ended_at": started,
           "direction": direction, "caller": "+380671234567", "dialled": "0441234567", "trunk": "provider",
           "extension": extension, "answered_by": by, "outcome": outcome, "wait_s": wait, "talk_s": talk,
           "path": path, "invite": None, "source": None}
    lost = {"caller": "+380671234567", "dialled": "0441234567", "at": started, "manager": None} \
        if not by and direction == "inbound" else None
    store.finish_call(row, lost)


def ring(by: str | None, reason: str) -> list:
    path = [{"t": 0.0, "kind": "step", "step": "ring", "dest": "group:office", "name": "Office"}]
    if by:
        path.append({"t": 5.0, "kind": "answered", "by": by})
    return path + [{"kind": "end", "reason": reason, "rung": ["101"]}]


def seed(data_dir) -> None:
    # Tuesday 11 March 2025, Kyiv is UTC+2: 08:00 UTC is 10:00 in the office.
    with Store(data_dir) as store:
        call(store, "a1", "2025-03-11T08:00:00.000+00:00", by="101", wait=5.0, talk=60.0, path=ring("101", "caller hung up"),
             outcome="answered")
        call(store, "a2", "2025-03-11T08:10:00.000+00:00", by="102", wait=30.0, talk=120.0,
             path=ring("102", "caller hung up"), outcome="answered")
        call(store, "a3", "2025-03-11T08:20:00.000+00:00", by="101", wait=10.0, talk=90.0, path=ring("101", "caller hung up"),
             outcome="answered")
        call(store, "m1", "2025-03-11T08:30:00.000+00:00", by=None, wait=40.0, talk=0.0,
             path=ring(None, "caller gave up"), outcome="missed")
        call(store, "s1", "2025-03-11T08:40:00.000+00:00", by=None, wait=2.0, talk=0.0,
             path=ring(None, "caller gave up"), outcome="missed")
        call(store, "o1", "2025-03-11T09:00:00.000+00:00", by="+380671234567", wait=4.0, talk=30.0,
             path=[{"kind": "end", "reason": "", "rung": []}], outcome="answered", direction="outbound",
             extension="103")
        # Outside the range: not counted.
        call(store, "x1", "2025-03-12T08:00:00.000+00:00", by="101", wait=5.0, talk=60.0, path=ring("101", "x"),
             outcome="answered")


RANGE = "day_from=2025-03-11&day_to=2025-03-11&within=20"


def test_the_figures_of_a_day(owner, panel_data):
    seed(panel_data)
    resp = owner.get(f"/reports/?{RANGE}", headers=EN)
    assert resp.status_code == 200
    page = resp.data.decode()
    assert 'id="fig-calls-in">5<' in page and 'id="fig-calls-out">1<' in page
    assert 'id="fig-answered">3<' in page and 'id="fig-missed">1<' in page and 'id="fig-short">1<' in page
    # Answered within 20 s: 2 of the 4 offered (3 answered + 1 missed; the short abandon apart).
    assert 'id="fig-service-level">50.0 %<' in page
    assert 'id="fig-avg-wait">15.0 s<' in page and 'id="fig-p90-wait">30<' in page
    assert 'id="fig-avg-talk">90.0<' in page
    assert 'id="fig-abandoned-ringing">1<' in page
    # Tables, the charts as inline SVG, and no style attribute anywhere (the CSP allows none).
    for table in ("hour", "weekday", "day", "person", "group", "number", "menu", "lost", "staffing"):
        assert f'id="table-{table}"' in page or table == "menu", table
    assert page.count("<svg") == 3 and "<rect" in page and "style=" not in page
    # 4 calls of 90 s in that hour is 0.1 Erlang: one person is enough, and two answered.
    assert "Tuesdays 10–11: people needed 1, you had 2" in page and 'class="short"' not in page


def test_a_bad_range_answers_400_next_to_the_field(owner, panel_data):
    for query, where in (("day_from=2025-03-11&day_to=2025-03-10", "day_to"), ("day_from=soon&day_to=2025-03-10",
                                                                                "day_from"),
                         ("day_from=2020-01-01&day_to=2025-03-10", "day_to"),
                         ("day_from=2025-03-01&day_to=2025-03-10&within=0", "within"),
                         ("day_to=2025-03-10", "day_from")):
        resp = owner.get(f"/reports/?{query}", headers=EN)
        assert resp.status_code == 400, query
        page = resp.data.decode()
        assert f'id="{where}-error"' in page, query
    page = owner.get("/reports/?day_from=2025-03-11&day_to=2025-03-10", headers=EN).data.decode()
    assert "The last day comes before the first." in page
    assert owner.get("/reports/day.csv?day_from=2025-03-11&day_to=2025-03-10").status_code == 400


def test_each_table_exports_as_csv(owner, panel_data):
    seed(panel_data)
    resp = owner.get(f"/reports/person.csv?{RANGE}", headers=EN)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="calls-person-2025-03-11-2025-03-11.csv"'
    rows = list(csv.DictReader(io.StringIO(resp.data.decode())))
    by = {r["By person (who answered)"]: r for r in rows}
    assert set(by) == {"101", "102", "103"}
    assert (by["101"]["Answered"], by["101"]["Average wait, s"], by["101"]["Average talk, s"]) == ("2", "7.5", "75.0")
    assert by["103"]["Calls out"] == "1"
    lost = list(csv.DictReader(io.StringIO(owner.get(f"/reports/lost.csv?{RANGE}", headers=EN).data.decode())))
    assert [(r["Wait, s"], r["Gave up"]) for r in lost] == [("40.0", "while it rang (Office)"),
                                                           ("2.0", "while it rang (Office)")]
    hour = list(csv.reader(io.StringIO(owner.get(f"/reports/hour.csv?{RANGE}", headers=EN).data.decode())))
    assert hour[1][:8] == ["10:00", "5", "0", "4", "3", "1", "1", "1"]
    assert hour[2][:3] == ["11:00", "0", "1"]
    # In Ukrainian, the default.
    head = owner.get(f"/reports/weekday.csv?{RANGE}").data.decode().splitlines()
    assert head[0].startswith("За днями тижня,") and head[1].startswith("Вівторок,")
    assert owner.get(f"/reports/nothing.csv?{RANGE}").status_code == 404


def test_the_page_in_chromium_in_both_languages(browser, panel_data):
    seed(panel_data)
    app = create_app({"DATA_DIR": str(panel_data)})
    with b.serving(app) as base:
        b.log_in(browser, base, OWNER_PASSWORD)
        for lang, title in (("uk", "Звіти"), ("en", "Reports")):
            browser.get(f"{base}/lang/{lang}?next=/reports/%3F{RANGE.replace('&', '%26')}")
            assert title in browser.title
            assert b.text_of(browser, "fig-answered") == "3"
            bar = browser.find_element(By.CSS_SELECTOR, "#chart-hour rect.bar")
            assert bar.value_of_css_property("fill") != "rgb(0, 0, 0)"   # coloured by reports.css
            b.shot(browser, f"reports-{lang}")
            browser.execute_script("document.getElementById('staffing').scrollIntoView()")
            b.shot(browser, f"reports-{lang}-staffing")
            assert browser.execute_script("return document.documentElement.scrollWidth") <= 1200
