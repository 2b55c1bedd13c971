"""The trunks pages, the trunk states in words, and the watch that undoes a change that broke a trunk."""

from __future__ import annotations

import itertools

import pytest

from appliance.store import Store
from appliance.store.panel import PanelTables
from tests.web.conftest import post_form
from web import office, trunkwatch
from web.areas import trunks as trunks_area

PROVIDER = {"name": "provider", "kind": "register", "host": "sip.example.net", "port": "5060", "transport": "udp",
            "username": "380441234567", "password": "old-secret", "numbers": "0441234567\n0441234568",
            "caller_id": "0441234567", "register_expires": "300", "enabled": "y"}


def saved_trunks(data_dir) -> list[dict]:
    with Store(data_dir) as store:
        return store.trunks()


def versions(data_dir) -> int:
    with Store(data_dir) as store:
        return len(PanelTables(store).versions())


def add_provider(data_dir, **changes) -> int:
    """A register trunk saved as the panel would, and a route that takes calls only from it."""
    with Store(data_dir) as store:
        doc = office.document(store)
        doc["trunks"].append({"name": "provider", "kind": "register", "host": "sip.example.net",
                              "username": "380441234567", "password": "old-secret", "numbers": ["0441234567"],
                              **changes})
        return office.save(store, doc, "owner", "added trunk provider")


def live(monkeypatch, *states: dict) -> None:
    """The running appliance's answer to trunks.status, as the page asks it."""
    monkeypatch.setattr(trunks_area, "ask", lambda cmd, **kw: ({"trunks": list(states)}, None))


# -- the pages -------------------------------------------------------------------------------------


def test_adding_a_trunk_saves_every_field(owner, panel_data):
    resp = post_form(owner, "/trunks/new", {**PROVIDER, "auth_username": "auth-1", "from_domain": "example.net",
                                            "pass_caller_id": "y"})
    assert resp.status_code == 302
    [t] = saved_trunks(panel_data)
    assert t["name"] == "provider" and t["kind"] == "register" and t["host"] == "sip.example.net"
    assert t["numbers"] == ["0441234567", "0441234568"] and t["password"] == "old-secret"
    assert t["auth_username"] == "auth-1" and t["from_domain"] == "example.net"
    assert t["pass_caller_id"] == 1 and t["enabled"] == 1 and t["register_expires"] == 300
    with Store(panel_data) as store:
        assert PanelTables(store).latest_version()["summary"] == "added trunk provider"


@pytest.mark.parametrize("changes, field", [
    ({"username": ""}, "username"),
    ({"port": "70000"}, "port"),
    ({"register_expires": "30"}, "register_expires"),
    ({"numbers": "0441234567\ncall me"}, "numbers"),
    ({"kind": "ip", "addresses": ""}, "addresses"),
    ({"name": ""}, "name"),
    ({"host": ""}, "host"),
])
def test_an_invalid_trunk_is_refused_next_to_its_field(owner, panel_data, changes, field):
    resp = post_form(owner, "/trunks/new", {**PROVIDER, **changes})
    assert resp.status_code == 400
    assert f'id="{field}-error"' in resp.data.decode()
    assert saved_trunks(panel_data) == [] and versions(panel_data) == 0


def test_a_duplicate_name_is_refused_next_to_the_field(owner, panel_data):
    add_provider(panel_data)
    resp = post_form(owner, "/trunks/new", {**PROVIDER, "host": "other.example.net"})
    assert resp.status_code == 400 and 'id="name-error"' in resp.data.decode()
    assert [t["host"] for t in saved_trunks(panel_data)] == ["sip.example.net"]


def test_an_ip_trunk_takes_its_addresses_one_per_line(owner, panel_data):
    data = {**PROVIDER, "name": "ipprov", "kind": "ip", "username": "", "addresses": "192.0.2.10\n192.0.2.11\n"}
    assert post_form(owner, "/trunks/new", data).status_code == 302
    [t] = saved_trunks(panel_data)
    assert t["kind"] == "ip" and t["addresses"] == ["192.0.2.10", "192.0.2.11"]


def test_the_password_is_never_shown_and_an_empty_one_keeps_the_saved_one(owner, panel_data):
    add_provider(panel_data)
    page = owner.get("/trunks/edit/provider").data.decode()
    assert "old-secret" not in page
    resp = post_form(owner, "/trunks/edit/provider", {**PROVIDER, "password": "", "port": "5080"})
    assert resp.status_code == 302
    [t] = saved_trunks(panel_data)
    assert t["password"] == "old-secret" and t["port"] == 5080
    post_form(owner, "/trunks/edit/provider", {**PROVIDER, "password": "new-secret"})
    assert saved_trunks(panel_data)[0]["password"] == "new-secret"


def test_renaming_a_trunk_keeps_the_routes_that_take_calls_from_it(owner, panel_data):
    add_provider(panel_data)
    with Store(panel_data) as store:
        doc = office.document(store)
        doc["routing"]["routes"] = [{"name": "Shop", "trunks": ["provider"], "to": "group:office"}]
        office.save(store, doc, "owner", "a route for the provider")
    resp = post_form(owner, "/trunks/edit/provider", {**PROVIDER, "name": "kyivstar"})
    assert resp.status_code == 302
    with Store(panel_data) as store:
        doc = office.document(store)
    assert [t["name"] for t in doc["trunks"]] == ["kyivstar"]
    assert doc["routing"]["routes"][0]["trunks"] == ["kyivstar"]


def test_removing_a_trunk_a_route_needs_is_refused_and_otherwise_done(owner, panel_data):
    add_provider(panel_data)
    with Store(panel_data) as store:
        doc = office.document(store)
        doc["routing"]["routes"] = [{"name": "Shop", "trunks": ["provider"], "to": "group:office"}]
        office.save(store, doc, "owner", "a route for the provider")
    before = versions(panel_data)
    resp = post_form(owner, "/trunks/remove/provider", {}, page="/trunks/edit/provider")
    assert resp.status_code == 400 and "Shop" in resp.data.decode()
    assert len(saved_trunks(panel_data)) == 1 and versions(panel_data) == before
    with Store(panel_data) as store:
        doc = office.document(store)
        doc["routing"]["routes"] = []
        doc["routing"]["unmatched"] = "group:office"
        office.save(store, doc, "owner", "no route for the provider")
    resp = post_form(owner, "/trunks/remove/provider", {}, page="/trunks/edit/provider")
    assert resp.status_code == 302 and saved_trunks(panel_data) == []


def test_the_list_says_each_trunks_state_in_words(owner, panel_data, monkeypatch):
    add_provider(panel_data)
    page = owner.get("/trunks/", headers={"Accept-Language": "en"}).data.decode()
    assert 'id="appliance-down"' in page and "unknown: the appliance is not running" in page
    live(monkeypatch, {"name": "provider", "kind": "register", "up": False, "code": 403, "reason": "Forbidden",
                       "since": "2026-03-10T09:00:00+00:00", "error": "the provider refused the password (403)"})
    page = owner.get("/trunks/", headers={"Accept-Language": "en"}).data.decode()
    assert "the provider refused the password (403)" in page and "bad-text" in page
    live(monkeypatch, {"name": "provider", "kind": "register", "up": True, "code": 200, "reason": "OK",
                       "since": None, "error": None})
    page = owner.get("/trunks/", headers={"Accept-Language": "en"}).data.decode()
    assert 'id="trunk-state-1">registered<' in page


def test_a_change_to_a_working_trunk_is_watched(owner, panel_data, monkeypatch):
    add_provider(panel_data)
    live(monkeypatch, {"name": "provider", "kind": "register", "up": True, "code": 200, "reason": "OK"})
    started = []
    monkeypatch.setattr(trunkwatch, "start", lambda *args: started.append(args) or object())
    assert post_form(owner, "/trunks/edit/provider", {**PROVIDER, "password": "typo"}).status_code == 302
    with Store(panel_data) as store:
        tables = PanelTables(store)
        changed = tables.latest_version()["id"]
        before = tables.version_before(changed)["id"]
    [(data_dir, name, before_id, changed_id)] = started
    assert (name, before_id, changed_id) == ("provider", before, changed)


def test_a_change_to_a_trunk_that_was_not_working_is_not_watched(owner, panel_data, monkeypatch):
    add_provider(panel_data)
    live(monkeypatch, {"name": "provider", "kind": "register", "up": False, "code": 403, "reason": "Forbidden"})
    started = []
    monkeypatch.setattr(trunkwatch, "start", lambda *args: started.append(args))
    assert post_form(owner, "/trunks/edit/provider", {**PROVIDER, "password": "fixed"}).status_code == 302
    assert started == []


def test_the_page_shows_what_the_watch_undid_until_the_owner_has_read_it(owner, panel_data):
    with Store(panel_data) as store:
        store.set_setting(trunkwatch.NOTICE, {"trunk": "provider", "code": 403, "reason": "Forbidden",
                                              "timed_out": False, "undone": True})
    page = owner.get("/trunks/", headers={"Accept-Language": "en"}).data.decode()
    assert "The change to trunk provider was undone: the provider refused the password (403)." in page
    assert post_form(owner, "/trunks/notice", {}, page="/trunks/").status_code == 302
    assert 'id="trunk-notice"' not in owner.get("/trunks/").data.decode()


@pytest.mark.parametrize("state, words", [
    ({"up": True, "kind": "register"}, "registered"),
    ({"up": True, "kind": "ip"}, "in use: calls come from the provider's addresses"),
    ({"up": False, "code": None}, "waiting for the provider's answer"),
    ({"up": False, "code": None, "timed_out": True, "seconds": 60}, "no answer from the provider within 60 s"),
    ({"up": False, "code": 401}, "the provider refused the password (401)"),
    ({"up": False, "code": 404}, "the provider does not know this username (404)"),
    ({"up": False, "code": 408}, "no answer from the provider (408)"),
    ({"up": False, "code": 503}, "the provider's server could not be reached (503)"),
    ({"up": False, "code": 480, "reason": "Temporarily Unavailable"},
     "the provider answered 480 Temporarily Unavailable"),
])
def test_state_words(app, state, words):
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert trunks_area.state_words(state) == words


# -- the engine's side of trunks.status ------------------------------------------------------------


class FakeReply:
    def __init__(self, code: int, reason: str, expiration: int = 300):
        self.code, self.reason, self.expiration = code, reason, expiration


class FakeAccount:
    def __init__(self, name: str, trunk: dict):
        self.name, self.trunk, self.registered, self.failures = name, trunk, False, 0


class FakeB2BUA:
    """What Trunks reads of the B2BUA: its accounts, events and timers."""

    def __init__(self):
        self.accounts: dict = {}
        self.events: list = []

    def emit(self, kind: str, **fields) -> None:
        self.events.append((kind, fields))

    def add_timer(self, timer) -> None:
        pass


def test_trunks_status_remembers_the_providers_last_reply():
    engine_trunks = pytest.importorskip("appliance.engine.trunks")
    b2bua = FakeB2BUA()
    t = engine_trunks.Trunks(b2bua)
    reg = {"name": "provider", "kind": "register", "host": "127.0.0.1"}
    t.config = {"provider": reg, "ipprov": {"name": "ipprov", "kind": "ip", "host": "127.0.0.1"}}
    acc = FakeAccount("trunk:provider", reg)
    b2bua.accounts = {"trunk:provider": acc, "trunk:ipprov": FakeAccount("trunk:ipprov", {})}
    [prov, ipprov] = sorted(t.status(), key=lambda s: s["name"], reverse=True)
    assert prov["up"] is False and prov["code"] is None and prov["error"] == "waiting for the provider's answer"
    assert ipprov["up"] is True and ipprov["error"] is None
    t.reg_state(acc, FakeReply(403, "Forbidden"))
    prov = next(s for s in t.status() if s["name"] == "provider")
    assert (prov["up"], prov["code"], prov["reason"]) == (False, 403, "Forbidden")
    assert prov["error"] == "the provider refused the password (403)" and prov["since"]
    t.reg_state(acc, FakeReply(200, "OK"))
    prov = next(s for s in t.status() if s["name"] == "provider")
    assert prov["up"] is True and prov["error"] is None


def test_trouble_words_name_the_reason():
    engine_trunks = pytest.importorskip("appliance.engine.trunks")
    assert engine_trunks.trouble_words(403, "Forbidden") == "the provider refused the password (403)"
    assert engine_trunks.trouble_words(408, "Request Timeout") == "no answer from the provider (408)"
    assert engine_trunks.trouble_words(None) == "waiting for the provider's answer"
    assert engine_trunks.trouble_words(486, "Busy Here") == "the provider answered 486 Busy Here"


# -- the watch -------------------------------------------------------------------------------------


class Clock:
    """Time that moves only when the watch sleeps."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def replies(*answers):
    """A status source that gives these answers in turn, then the last one for ever."""
    it = itertools.chain(answers, itertools.repeat(answers[-1]))
    return lambda: next(it)


def state(up: bool, code: int | None, reason: str = "") -> list[dict]:
    return [{"name": "provider", "kind": "register", "up": up, "code": code, "reason": reason,
             "error": None if up else f"the provider answered {code}"}]


def test_verdict():
    assert trunkwatch.verdict(None) == "waiting"
    assert trunkwatch.verdict({"up": True}) == "up"
    assert trunkwatch.verdict({"up": False, "code": None}) == "waiting"
    assert trunkwatch.verdict({"up": False, "code": 403}) == "down"


def test_the_watch_ends_when_the_trunk_works_again():
    clock = Clock()
    source = replies(None, [], state(False, None), state(True, 200))
    assert trunkwatch.watch("provider", source, deadline=60, every=2, clock=clock, sleep=clock.sleep) is None
    assert clock.now == 6


def test_the_watch_ends_at_once_when_the_provider_refuses():
    clock = Clock()
    found = trunkwatch.watch("provider", replies(state(False, None), state(False, 403, "Forbidden")),
                             deadline=60, every=2, clock=clock, sleep=clock.sleep)
    assert found["code"] == 403 and clock.now == 2


def test_the_watch_gives_up_at_the_deadline_when_nothing_answers():
    clock = Clock()
    found = trunkwatch.watch("provider", replies(state(False, None)), deadline=10, every=3, clock=clock,
                             sleep=clock.sleep)
    assert found["timed_out"] and found["code"] is None and found["seconds"] == 10
    assert clock.now == 12


def test_a_broken_change_is_undone_and_the_owner_told(panel_data):
    add_provider(panel_data)
    with Store(panel_data) as store:
        doc = office.document(store)
        doc["trunks"][0]["password"] = "typo"
        changed = office.save(store, doc, "owner", "changed trunk provider")
        before = PanelTables(store).version_before(changed)["id"]
    told = []
    clock = Clock()
    notice = trunkwatch.run(panel_data, "provider", before, changed, status=replies(state(False, 403, "Forbidden")),
                            tell=lambda: told.append(True), deadline=60, every=1, clock=clock, sleep=clock.sleep)
    assert notice["undone"] and notice["code"] == 403 and told == [True]
    with Store(panel_data) as store:
        assert store.trunks()[0]["password"] == "old-secret"
        latest = PanelTables(store).latest_version()
        assert latest["who"] == "appliance" and latest["restored_from"] == before
        assert latest["summary"] == "the change to trunk provider was undone: the provider answered 403"
        assert store.get_setting(trunkwatch.NOTICE)["trunk"] == "provider"


def test_a_later_change_is_not_thrown_away(panel_data):
    add_provider(panel_data)
    with Store(panel_data) as store:
        doc = office.document(store)
        doc["trunks"][0]["password"] = "typo"
        changed = office.save(store, doc, "owner", "changed trunk provider")
        before = PanelTables(store).version_before(changed)["id"]
        doc["extensions"][0]["name"] = "Reception"
        office.save(store, doc, "owner", "changed extension 101")
    told = []
    notice = trunkwatch.run(panel_data, "provider", before, changed, status=replies(state(False, None)),
                            tell=lambda: told.append(True), deadline=0, every=0, sleep=lambda s: None)
    assert notice["undone"] is False and notice["timed_out"] and told == []
    with Store(panel_data) as store:
        assert store.trunks()[0]["password"] == "typo" and store.extension("101")["name"] == "Reception"
        assert store.get_setting(trunkwatch.NOTICE)["undone"] is False


def test_a_working_change_stays(panel_data):
    changed = add_provider(panel_data)
    assert trunkwatch.run(panel_data, "provider", changed - 1, changed, status=replies(state(True, 200)),
                          tell=lambda: None, sleep=lambda s: None) is None
    with Store(panel_data) as store:
        assert PanelTables(store).latest_version()["id"] == changed
        assert store.get_setting(trunkwatch.NOTICE) is None


def test_nothing_is_watched_when_no_appliance_runs(panel_data):
    assert trunkwatch.start(panel_data, "provider", 1, 2) is None


# -- with the real appliance -----------------------------------------------------------------------


def test_a_wrong_provider_password_is_undone_on_a_running_appliance(data_dir):
    """`pbx run` with a trunk to a test registrar: trunks.status says it is registered; a wrong password
    makes the provider refuse it, the watch restores the version before, and it registers again."""
    pytest.importorskip("pjsua2")
    from tests.conftest import free_port
    from tests.peers.registrar import Registrar
    from tests.system.running import Running

    registrar = Registrar(free_port(), "pbxuser", "s3cret")
    with Store(data_dir) as store:
        store.seed_defaults()
        doc = office.document(store)
        doc["trunks"] = [{"name": "provider", "kind": "register", "host": "127.0.0.1", "port": registrar.port,
                          "username": "pbxuser", "password": "s3cret", "register_expires": 60}]
        office.save(store, doc, "owner", "added trunk provider")
    app = Running(data_dir)
    try:
        status = trunkwatch.control_status(data_dir)
        assert trunkwatch.watch("provider", status, deadline=20, every=0.2) is None, status()
        [up] = status()
        assert up["up"] and up["code"] == 200 and up["error"] is None and up["since"]
        with Store(data_dir) as store:
            doc = office.document(store)
            doc["trunks"][0]["password"] = "typo"
            changed = office.save(store, doc, "owner", "changed trunk provider")
            before = PanelTables(store).version_before(changed)["id"]
        trunkwatch.control_reload(data_dir)()
        notice = trunkwatch.run(data_dir, "provider", before, changed, deadline=20, every=0.2)
        assert notice is not None and notice["undone"] and notice["code"] == 401, notice
        with Store(data_dir) as store:
            assert store.trunks()[0]["password"] == "s3cret"
        assert trunkwatch.watch("provider", status, deadline=20, every=0.2) is None, status()
    finally:
        app.stop()
        registrar.stop()
