"""Owner access through Flask's test client: first-run password, lockout, sessions, CSRF, headers, language."""

from __future__ import annotations

import time

from werkzeug.security import generate_password_hash

from appliance.store import Store
from appliance.store.panel import PanelTables
from tests.web.conftest import OWNER_PASSWORD, log_in, post_form
from web import create_app


def test_a_first_run_without_a_password_asks_for_one_and_refuses_a_short_one(data_dir):
    with Store(data_dir) as store:
        store.seed_defaults()
    app = create_app({"DATA_DIR": str(data_dir), "TESTING": True})
    client = app.test_client()
    assert client.get("/").headers["Location"].endswith("/auth/setup")
    assert client.get("/auth/login").headers["Location"].endswith("/auth/setup")
    resp = post_form(client, "/auth/setup", {"password": "short", "confirm": "short"})
    assert resp.status_code == 400
    assert 'id="password-error"' in resp.data.decode()
    with Store(data_dir) as store:
        assert store.get_setting("panel_password_hash") is None, "a refused password must not be saved"
    resp = post_form(client, "/auth/setup", {"password": "a-long-password", "confirm": "another-password"})
    assert resp.status_code == 400 and 'id="confirm-error"' in resp.data.decode()
    resp = post_form(client, "/auth/setup", {"password": "a-long-password", "confirm": "a-long-password"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    # Once set, the setup page is closed to anyone not logged in.
    other = app.test_client()
    assert other.get("/auth/setup").headers["Location"].endswith("/auth/login")


def test_the_printed_password_opens_only_the_page_that_replaces_it(data_dir):
    with Store(data_dir) as store:
        store.seed_defaults()
        store.set_setting("panel_password_hash", generate_password_hash("printed-once-123"))
        store.set_setting("panel_password_temporary", True)
    app = create_app({"DATA_DIR": str(data_dir), "TESTING": True})
    client = app.test_client()
    resp = log_in(client, "printed-once-123")
    assert resp.headers["Location"].endswith("/auth/setup")
    assert client.get("/history/").headers["Location"].endswith("/auth/setup")
    resp = post_form(client, "/auth/setup", {"password": "owners-own-pass", "confirm": "owners-own-pass"})
    assert resp.status_code == 302
    assert client.get("/history/").status_code == 200
    fresh = app.test_client()
    assert log_in(fresh, "printed-once-123").status_code == 401
    assert log_in(fresh, "owners-own-pass").status_code == 302


def test_six_wrong_passwords_lock_the_source_out_even_for_the_right_one(app):
    client = app.test_client()
    codes = [log_in(client, f"wrong-{i}").status_code for i in range(5)]
    assert codes == [401, 401, 401, 401, 429]
    resp = log_in(client, OWNER_PASSWORD)
    assert resp.status_code == 429
    page = resp.data.decode()
    assert 'id="password-error"' in page and "Спробуйте знову за 5 хв" in page
    # Another address is not locked out.
    other = app.test_client()
    resp = post_form(other, "/auth/login", {"password": OWNER_PASSWORD}, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert resp.status_code == 302


def test_a_cookie_from_before_logout_opens_nothing(app):
    client = app.test_client()
    log_in(client)
    assert client.get("/").status_code == 200
    saved = client.get_cookie("pbx_session").value
    resp = post_form(client, "/auth/logout", {}, page="/")
    assert resp.status_code == 302
    thief = app.test_client()
    thief.set_cookie("pbx_session", saved)
    resp = thief.get("/")
    assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"]


def test_an_idle_session_ends(panel_data):
    app = create_app({"DATA_DIR": str(panel_data), "TESTING": True, "PANEL_IDLE_SECONDS": 0.5})
    client = app.test_client()
    log_in(client)
    assert client.get("/").status_code == 200
    time.sleep(0.7)
    resp = client.get("/")
    assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"]
    with Store(panel_data) as store:
        assert store.db.execute("select count(*) from panel_sessions").fetchone()[0] == 0


# Endpoints open without the owner's session, each for its own reason (and tested where it is built).
OPEN = {"static", "auth.login", "auth.setup", "i18n.choose"}
OWN_KEY = ("wallboard.", "provision.")  # a kiosk token or a phone's secret opens these, nothing else


def _example_url(rule) -> str:
    """The rule's URL with a plausible value in each argument."""
    def example(conv) -> object:
        kind = type(conv).__name__
        if kind in ("IntegerConverter", "NumberConverter"):
            return 1
        if kind == "AnyConverter":
            return sorted(conv.items)[0]
        return "x"

    values = {name: example(conv) for name, conv in rule._converters.items()}
    return rule.build(values, append_unknown=False)[1]


def test_every_page_but_login_needs_a_session(app):
    """Every route the panel has, found in its URL map: without a session a GET goes to the login
    page and a POST is refused; none is forgotten as new areas are added."""
    client = app.test_client()
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in OPEN or rule.endpoint.startswith(OWN_KEY):
            continue
        url = _example_url(rule)
        if "GET" in rule.methods:
            resp = client.get(url)
            assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"], (rule.endpoint, url)
        if "POST" in rule.methods:
            resp = client.post(url, data={})
            assert resp.status_code in (302, 400), (rule.endpoint, url, resp.status_code)
            assert "Location" not in resp.headers or "/auth/login" in resp.headers["Location"]
        checked += 1
    assert checked > 40, checked


def test_posts_without_the_csrf_token_are_refused(owner):
    resp = owner.post("/night", data={"mode": "toggle"})
    assert resp.status_code == 400
    resp = owner.post("/auth/logout")
    assert resp.status_code == 400
    assert owner.get("/").status_code == 200, "a refused logout leaves the session alone"


def test_security_headers(app, owner):
    for client, url in ((app.test_client(), "/auth/login"), (owner, "/")):
        h = client.get(url).headers
        assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
        assert "script-src 'self'" in h["Content-Security-Policy"]
        assert h["X-Frame-Options"] == "DENY"
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Cache-Control"] == "no-store"
    cookie = owner.get_cookie("pbx_session")
    assert cookie.http_only and cookie.same_site == "Lax"


def test_ukrainian_by_default_english_from_the_browser_or_the_switch(app):
    client = app.test_client()
    assert "Пароль власника" in client.get("/auth/login").data.decode()
    page = client.get("/auth/login", headers={"Accept-Language": "en-GB,en;q=0.8"}).data.decode()
    assert "Owner password" in page and '<html lang="en">' in page
    resp = client.get("/lang/en?next=/auth/login")
    assert resp.headers["Location"] == "/auth/login"
    assert "Owner password" in client.get("/auth/login").data.decode()
    client.get("/lang/uk")
    assert "Пароль власника" in client.get("/auth/login", headers={"Accept-Language": "en"}).data.decode()
    # An open redirect is not offered.
    assert client.get("/lang/en?next=//evil.example/").headers["Location"] == "/"


def test_sessions_are_rows_on_the_server(app, panel_data):
    client = app.test_client()
    log_in(client)
    with Store(panel_data) as store:
        tables = PanelTables(store)
        assert store.db.execute("select count(*) from panel_sessions").fetchone()[0] == 1
        tables.end_all_sessions()
    assert client.get("/").status_code == 302


def test_a_login_without_the_csrf_token_is_refused_and_with_it_accepted(app):
    client = app.test_client()
    resp = client.post("/auth/login", data={"password": OWNER_PASSWORD})
    assert resp.status_code == 400 and b'id="error-message"' in resp.data
    assert log_in(client).status_code == 302
