"""The panel served for real on loopback, and headless Chromium to drive it."""

from __future__ import annotations

import re
import threading

import pytest
from werkzeug.security import generate_password_hash
from werkzeug.serving import make_server

from appliance.store import Store
from tests.conftest import free_port
from web import create_app

OWNER_PASSWORD = "owner-secret-1"


@pytest.fixture
def panel_data(data_dir):
    with Store(data_dir) as store:
        store.seed_defaults()
        store.set_setting("panel_password_hash", generate_password_hash(OWNER_PASSWORD))
    return data_dir


@pytest.fixture
def app(panel_data):
    return create_app({"DATA_DIR": str(panel_data), "TESTING": True})


def csrf_of(page: bytes | str) -> str:
    """The CSRF token of the first form on a page."""
    text = page.decode() if isinstance(page, bytes) else page
    m = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', text) or \
        re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert m, "the page has no form with a CSRF token"
    return m.group(1)


def post_form(client, url: str, data: dict, page: str | None = None, **kw):
    """POST a form as the browser would: with the CSRF token of the page it is on (`page`, default `url`)."""
    token = csrf_of(client.get(page or url).data)
    return client.post(url, data={**data, "csrf_token": token}, **kw)


def log_in(client, password: str = OWNER_PASSWORD):
    return post_form(client, "/auth/login", {"password": password})


@pytest.fixture
def owner(app):
    """A test client logged in as the owner."""
    client = app.test_client()
    resp = log_in(client)
    assert resp.status_code == 302, resp.data[:500]
    return client


@pytest.fixture
def panel_url(app):
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
