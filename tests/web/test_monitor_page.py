"""The live calls page: the snapshot rendered without JavaScript, the server-sent events that follow it,
taking a waiting call; and in headless Chromium against `pbx run`, the page changing by itself as a
real call moves from the menu to the queue, to ringing, to talking.

The first tests run the appliance's control socket and live monitor in a thread of their own and
feed the monitor the event dicts the engine emits."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future
from datetime import datetime

import pytest
from werkzeug.security import generate_password_hash
from appliance.control import ControlServer, socket_path
from appliance.monitor import ContactNames, LiveCalls
from appliance.store import Store
from tests.web.conftest import post_form

CALL = "c0ffee0000000001"
CUSTOMER = "+380501110001"


def at(second: float) -> str:
    return f"2026-03-02T09:00:{second:06.3f}+00:00"


# What the engine emits for a customer who presses 2 at the main menu and waits in the support queue.
TO_THE_QUEUE = [
    {"kind": "CallStarted", "at": at(0), "call_id": CALL, "direction": "inbound", "caller": CUSTOMER,
     "caller_name": "", "dialled": "0441234567", "trunk": "provider", "extension": ""},
    {"kind": "StepStarted", "at": at(0.1), "call_id": CALL, "step": "menu", "dest": "menu:main", "name": "menu 'Main'"},
    {"kind": "MenuKey", "at": at(3), "call_id": CALL, "menu": "menu 'Main'", "digit": "2", "digits": "2"},
    {"kind": "StepStarted", "at": at(3.1), "call_id": CALL, "step": "queue", "dest": "queue:support",
     "name": "queue 'Support'"},
    {"kind": "QueueJoined", "at": at(3.1), "call_id": CALL, "queue": "support", "caller": CUSTOMER, "position": 2,
     "vip": False, "waiting": 2},
]
RINGING = [
    {"kind": "QueuePosition", "at": at(20), "call_id": CALL, "queue": "support", "position": 1},
    {"kind": "LegStarted", "at": at(21), "call_id": CALL, "target": "104", "uri": "sip:104@127.0.0.1", "leg": 7},
]


class Appliance:
    """The control socket and the live monitor on a loop of their own, as `pbx run` has them."""

    def __init__(self, data_dir):
        self.loop = asyncio.new_event_loop()
        self.store = Store(data_dir)
        self.taken: list[tuple[str, str]] = []
        self.control = ControlServer(socket_path(data_dir))
        self.monitor = LiveCalls(self.control.publish, ContactNames(self.store), clock=lambda: self.now)
        self.monitor.register(self.control)
        self.monitor.taker = self.take
        self.asked: list[tuple[str, dict]] = []   # monitor.move, monitor.place, monitor.vip as the engine got them
        for name in ("monitor.move", "monitor.place", "monitor.vip"):
            self.control.command(name, lambda args, name=name: self.queued_action(name, args))
        self.now = datetime.fromisoformat(at(25))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.run(self.control.start)

    def take(self, call_id: str, ext: str) -> Future:
        self.taken.append((call_id, ext))
        fut: Future = Future()
        fut.set_result({"call_id": call_id, "ext": ext})
        return fut

    def queued_action(self, name: str, args: dict) -> dict:
        """The engine's answer to an action on a queued caller (appliance/engine/moves.py), or its refusal."""
        from appliance.control import ControlError

        if args.get("call_id") not in self.monitor.calls:
            raise ControlError(f"call {args.get('call_id')} has ended")
        self.asked.append((name, args))
        position = {"monitor.place": args.get("position"), "monitor.vip": 1}.get(name)
        return {"call_id": args["call_id"], "to": args.get("to"), "position": position}

    def run(self, coro_fn):
        return asyncio.run_coroutine_threadsafe(coro_fn(), self.loop).result(5)

    def feed(self, events: list[dict]) -> None:
        async def each():
            for e in events:
                self.control.publish(e)
                self.monitor.on_event(e)
        self.run(each)

    def subscribers(self) -> int:
        async def count():
            return len(self.control._subscribers)
        return self.run(count)

    def stop(self) -> None:
        self.run(self.control.stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.store.close()


@pytest.fixture
def appliance(panel_data):
    with Store(panel_data) as store:
        store.add_extension("104", "Olena", "pw-103-secret")
        store.put_contact({"number": CUSTOMER, "name": "Hardware store", "vip": 1})
    a = Appliance(panel_data)
    yield a
    a.stop()


def test_the_page_shows_each_call_at_its_stage_without_javascript(owner, appliance):
    appliance.feed(TO_THE_QUEUE)
    page = owner.get("/monitor/").get_data(as_text=True)
    assert 'id="call-c0ffee0000000001"' in page
    assert "Hardware store" in page and "VIP" in page           # the caller's name from the contacts
    assert "queue:support, місце 2" in page                          # Ukrainian by default
    assert 'class="stage-queue"' in page
    assert "0:21" in page                                       # 21.9 s in the queue at the monitor's clock
    assert 'src="/static/monitor.js"' in page and "<script>" not in page
    assert 'action="/monitor/take"' in page and '<option value="104">104 Olena</option>' in page

    appliance.feed(RINGING)
    page = owner.get("/monitor/").get_data(as_text=True)
    assert 'class="stage-ringing"' in page and "104 Olena" in page and "queue:support, місце 1" in page

    appliance.feed([{"kind": "CallBridged", "at": at(24), "call_id": CALL, "by": "104"},
                    {"kind": "CallAnswered", "at": at(24), "call_id": CALL, "by": "104", "wait_s": 24.0}])
    page = owner.get("/monitor/").get_data(as_text=True)
    assert 'class="stage-talking"' in page and "з 104 Olena" in page and 'action="/monitor/take"' not in page

    appliance.feed([{"kind": "CallEnded", "at": at(30), "call_id": CALL, "outcome": "answered"}])
    page = owner.get("/monitor/").get_data(as_text=True)
    assert "call-c0ffee0000000001" not in page and 'id="no-calls"' in page


def test_the_menu_stage_shows_the_menu_and_the_keys(owner, appliance):
    appliance.feed(TO_THE_QUEUE[:3])
    page = owner.get("/monitor/").get_data(as_text=True)
    # A menu the saved routing does not name is shown by its reference.
    assert 'class="stage-menu"' in page and "menu:main: клавіші 2" in page


def sse_items(chunks, n: int) -> list[tuple[str, str]]:
    """The next n server-sent items (event name, data) from a streaming response."""
    out, buf = [], ""
    while len(out) < n:
        buf += next(chunks).decode()
        while "\n\n" in buf:
            item, buf = buf.split("\n\n", 1)
            fields = dict(line.split(": ", 1) if ": " in line else (line.rstrip(":"), "")
                          for line in item.splitlines())
            out.append((fields.get("event", "comment" if item.startswith(":") else "retry"), fields.get("data", "")))
    return out


def test_the_event_stream_sends_the_snapshot_then_each_change_and_closes_with_the_browser(owner, appliance):
    import json

    appliance.feed(TO_THE_QUEUE)
    resp = owner.get("/monitor/events", buffered=False)
    assert resp.mimetype == "text/event-stream"
    chunks = resp.iter_encoded()
    (retry, _), (kind, data) = sse_items(chunks, 2)
    assert kind == "snapshot" and 'id="call-c0ffee0000000001"' in json.loads(data)["html"]
    assert appliance.subscribers() == 1

    appliance.feed(RINGING[:1])
    kind, data = sse_items(chunks, 1)[0]
    assert kind == "call" and json.loads(data)["id"] == CALL and "stage-queue" in json.loads(data)["html"]
    appliance.feed(RINGING[1:])
    kind, data = sse_items(chunks, 1)[0]
    assert "stage-ringing" in json.loads(data)["html"] and "104 Olena" in json.loads(data)["html"]
    appliance.feed([{"kind": "CallEnded", "at": at(30), "call_id": CALL, "outcome": "answered"}])
    kind, data = sse_items(chunks, 1)[0]
    assert kind == "ended" and json.loads(data)["id"] == CALL

    resp.close()  # the browser went away: the subscription ends with it
    appliance.feed([{"kind": "CallStarted", "at": at(40), "call_id": "other", "caller": "101"}])
    deadline = time.monotonic() + 5
    while appliance.subscribers() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert appliance.subscribers() == 0


def test_a_quiet_stream_sends_a_comment_every_heartbeat(owner, appliance, monkeypatch):
    from web.areas import monitor as area

    monkeypatch.setattr(area, "HEARTBEAT", 0.2)
    resp = owner.get("/monitor/events", buffered=False)
    chunks = resp.iter_encoded()
    items = sse_items(chunks, 3)
    assert [k for k, _ in items] == ["retry", "snapshot", "comment"]
    resp.close()


def test_the_stream_ends_when_the_appliance_stops(owner, appliance):
    resp = owner.get("/monitor/events", buffered=False)
    chunks = resp.iter_encoded()
    sse_items(chunks, 2)
    appliance.run(appliance.control.stop)
    with pytest.raises(StopIteration):
        while True:
            next(chunks)


def test_without_the_appliance_the_page_says_so(owner):
    page = owner.get("/monitor/").get_data(as_text=True)
    assert 'id="appliance-down"' in page
    resp = owner.get("/monitor/events", buffered=False)
    assert [k for k, _ in sse_items(resp.iter_encoded(), 2)] == ["retry", "down"]


def test_take_to_my_phone_asks_the_appliance(owner, appliance):
    appliance.feed(TO_THE_QUEUE)
    resp = post_form(owner, "/monitor/take", {"call_id": CALL, "ext": "104"}, page="/monitor/",
                     follow_redirects=True)
    assert appliance.taken == [(CALL, "104")]
    assert "104" in resp.get_data(as_text=True)
    resp = post_form(owner, "/monitor/take", {"call_id": "gone", "ext": "104"}, page="/monitor/",
                     follow_redirects=True)
    assert "gone" in resp.get_data(as_text=True) and appliance.taken == [(CALL, "104")]


def test_a_queued_caller_can_be_moved_placed_and_made_a_vip_from_the_page(owner, appliance, panel_data):
    with Store(panel_data) as store:
        store.add_extension("105", "Taras", "pw-105-secret")
    appliance.feed(TO_THE_QUEUE)
    page = owner.get("/monitor/").get_data(as_text=True)
    assert 'action="/monitor/move"' in page and '<option value="105">' in page and 'value="hangup"' not in page
    assert 'action="/monitor/place"' in page and 'name="position" min="1" value="2"' in page
    assert 'action="/monitor/vip"' not in page       # a VIP contact already

    resp = post_form(owner, "/monitor/move", {"call_id": CALL, "to": "105"}, page="/monitor/", follow_redirects=True)
    assert appliance.asked[-1] == ("monitor.move", {"call_id": CALL, "to": "105", "by": "panel"})
    assert "105" in resp.get_data(as_text=True)
    post_form(owner, "/monitor/place", {"call_id": CALL, "position": "1"}, page="/monitor/", follow_redirects=True)
    assert appliance.asked[-1] == ("monitor.place", {"call_id": CALL, "position": 1, "by": "panel"})
    resp = post_form(owner, "/monitor/place", {"call_id": CALL, "position": "0"}, page="/monitor/",
                     follow_redirects=True)
    assert len(appliance.asked) == 2 and "1 або більше" in resp.get_data(as_text=True)
    resp = post_form(owner, "/monitor/vip", {"call_id": "gone"}, page="/monitor/", follow_redirects=True)
    assert len(appliance.asked) == 2 and "gone has ended" in resp.get_data(as_text=True)

    appliance.feed([{"kind": "CallStarted", "at": at(1), "call_id": "other", "direction": "inbound",
                     "caller": "+380509990000", "dialled": "0441234567"},
                    {"kind": "QueueJoined", "at": at(1), "call_id": "other", "queue": "support", "position": 3}])
    page = owner.get("/monitor/").get_data(as_text=True)
    assert page.count('action="/monitor/vip"') == 1
    post_form(owner, "/monitor/vip", {"call_id": "other"}, page="/monitor/", follow_redirects=True)
    assert appliance.asked[-1] == ("monitor.vip", {"call_id": "other", "by": "panel"})
    appliance.feed([{"kind": "QueuePosition", "at": at(2), "call_id": "other", "queue": "support", "position": 1,
                     "vip": True}])
    assert appliance.run(_snapshot_of(appliance, "other"))["vip"] is True


def _snapshot_of(appliance, call_id):
    async def view():
        return next(c for c in appliance.monitor.snapshot()["calls"] if c["id"] == call_id)
    return view


# ---- in headless Chromium, against `pbx run` with real user agents --------------------------------

DESKS = {"101": "desk-101-pass", "102": "desk-102-pass"}
SHOP = "0441234567"


def queue_office_yaml(provider_port: int) -> str:
    exts = "".join(f'  - {{number: "{n}", name: Desk {n}, password: {p}}}\n' for n, p in DESKS.items())
    return (
        "version: 1\ntimezone: Europe/Kyiv\nextensions:\n" + exts +
        f"trunks:\n  - {{name: provider, kind: ip, host: 127.0.0.1, port: {provider_port}, "
        f'addresses: [127.0.0.1], numbers: ["{SHOP}"]}}\n'
        f'contacts:\n  - {{number: "{CUSTOMER}", name: Hardware store}}\n'
        "routing:\n"
        f'  routes:\n    - {{name: Shop, numbers: ["{SHOP}"], to: "queue:support"}}\n'
        '  queues:\n    support: {name: Support, strategy: ringall, members: ["101"], ring_time: 30, '
        "announce_every: 0, max_wait: 120, on_fail: hangup}\n"
        "  unmatched: hangup\n")


def row_text(browser, css: str) -> str:
    """The text of the row `css` finds ("" when there is none, or it was replaced while read)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return " ".join(r.text for r in browser.find_elements(By.CSS_SELECTOR, css))
    except StaleElementReferenceException:
        return ""


def take_with(browser, css: str, ext: str) -> None:
    """Choose `ext` in the row's take form and press its button (again if an update replaced the row)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    for _ in range(5):
        try:
            row = browser.find_element(By.CSS_SELECTOR, css)
            Select(row.find_element(By.TAG_NAME, "select")).select_by_value(ext)
            row.find_element(By.TAG_NAME, "button").click()
            return
        except StaleElementReferenceException:
            continue
    raise AssertionError("the row kept changing under the take form")


@pytest.mark.sip
def test_the_page_follows_a_real_call_without_a_reload_and_takes_it_to_another_phone(browser, tmp_path):
    from click.testing import CliRunner
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from appliance.cli import cli
    from tests.conftest import free_port
    from tests.system.running import Running, desk_phones_and_provider
    from tests.web import browser as b
    from tests.web.conftest import OWNER_PASSWORD

    provider_port = free_port()
    (tmp_path / "office.yaml").write_text(queue_office_yaml(provider_port))
    data = tmp_path / "data"
    res = CliRunner().invoke(cli, ["config", "import", str(tmp_path / "office.yaml"), "--data", str(data)])
    assert res.exit_code == 0, res.output
    with Store(data) as store:
        store.set_setting("panel_password_hash", generate_password_hash(OWNER_PASSWORD))
    app = Running(data)
    procs: list = []
    try:
        phones, provider = desk_phones_and_provider(app, data, DESKS, provider_port, procs)
        base = f"http://127.0.0.1:{app.web}"
        b.log_in(browser, base, OWNER_PASSWORD)
        browser.get(base + "/monitor/")
        assert browser.find_element(By.ID, "no-calls").is_displayed()
        browser.execute_script("window.notReloaded = true;")

        provider.send(cmd="call", uri=f"sip:{SHOP}@127.0.0.1:{app.trunk}",
                      **{"from": f"<sip:{CUSTOMER}@127.0.0.1:{provider_port}>"})
        pid = provider.expect(ev="calling")["id"]
        phones["101"].expect(ev="incoming", timeout=10)   # the queue rings its agent, who does not answer
        wait = WebDriverWait(browser, 10)
        ringing = "#live-calls tr.stage-ringing"
        wait.until(lambda d: "101 Desk 101" in row_text(d, ringing))
        waiting = row_text(browser, ringing)
        assert "Hardware store" in waiting
        assert "Support" in waiting and "position 1" in waiting, waiting   # still its place in the queue
        assert browser.execute_script("return window.notReloaded === true;")
        b.shot(browser, "monitor-ringing")

        # Take it to 102: the form posts and the page comes back; 102 rings alongside 101.
        take_with(browser, ringing, "102")
        wait.until(lambda d: d.execute_script("return window.notReloaded !== true;"))
        browser.execute_script("window.notReloaded = true;")
        inc = phones["102"].expect(ev="incoming", timeout=10)
        wait.until(lambda d: "102 Desk 102" in row_text(d, ringing))
        phones["102"].send(cmd="answer", id=inc["id"])
        wait.until(lambda d: "102 Desk 102" in row_text(d, "#live-calls tr.stage-talking"))
        assert browser.execute_script("return window.notReloaded === true;"), "the page changed by itself"
        b.shot(browser, "monitor-talking")

        provider.send(cmd="hangup", id=pid)
        wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#live-calls tbody tr"))
        assert browser.find_element(By.ID, "no-calls").is_displayed()
        assert browser.execute_script("return window.notReloaded === true;")
        browser.get(base + "/")   # leave the page: its stream ends with it
    finally:
        for p in procs:
            p.stop()
        app.stop()
