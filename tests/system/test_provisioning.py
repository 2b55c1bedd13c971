"""A desk phone that fetched its file registers: `pbx run`, the panel over HTTP, a pjsua2 phone.

The owner assigns a Yealink phone to extension 101 on the extension page
(logged in, with the form's CSRF token, as a browser does); the phone, with
no session, fetches `<mac>.cfg` from the address the page shows; a real SIP
user agent then registers through the edge with the server, port, user and
password read from that file, and nothing else.
"""

from __future__ import annotations

import http.cookiejar
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest
from werkzeug.security import generate_password_hash

from appliance.store import Store
from tests.conftest import free_port
from tests.engine import harness
from tests.system.running import Running
from tests.system.test_office import wait_for_bindings

pytestmark = [pytest.mark.sip, pytest.mark.slow]

OWNER_PASSWORD = "owner-secret-1"
MAC = "805ec0123456"


class Browser:
    """The owner's browser: cookies kept, each form posted with its page's CSRF token."""

    def __init__(self, root: str):
        self.root = root
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> str:
        with self.opener.open(self.root + path, timeout=10) as resp:
            return resp.read().decode()

    def post(self, path: str, data: dict, page: str | None = None) -> str:
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', self.get(page or path)).group(1)
        body = urllib.parse.urlencode({**data, "csrf_token": token}).encode()
        with self.opener.open(self.root + path, data=body, timeout=10) as resp:
            return resp.read().decode()


def fetch(url: str) -> tuple[int, bytes]:
    """GET as a phone does: no cookie, no session."""
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_a_phone_registers_with_the_password_from_the_file_it_fetched(tmp_path):
    data = tmp_path / "data"
    with Store(data) as store:
        store.seed_defaults()
        store.set_setting("panel_password_hash", generate_password_hash(OWNER_PASSWORD))
    app = Running(data)
    procs = []
    try:
        root = f"http://127.0.0.1:{app.web}"
        owner = Browser(root)
        owner.post("/auth/login", {"password": OWNER_PASSWORD})
        owner.post("/extensions/101/phone", {"mac": "80:5E:C0:12:34:56", "vendor": "yealink"}, page="/extensions/101")
        page = owner.get("/extensions/101")
        shown = re.search(r'<code class="provision-url">([^<]+)</code>', page).group(1)
        path = urllib.parse.urlsplit(shown).path
        assert path.endswith(f"/{MAC}.cfg")

        status, body = fetch(root + path)
        assert status == 200
        lines = body.decode().splitlines()
        assert lines[0] == "#!version:1.0.0.1"
        keys = dict((k.strip(), v.strip()) for k, v in (line.split("=", 1) for line in lines[1:]
                                                        if "=" in line and not line.startswith("#")))
        server, port = keys["account.1.sip_server.1.address"], int(keys["account.1.sip_server.1.port"])
        assert (server, port, keys["account.1.sip_server.1.transport_type"]) == ("127.0.0.1", app.sip, "0")

        phone = harness.Proc([sys.executable, str(harness.AGENT), "--port", str(free_port()),
                              "--name", keys["account.1.user_name"], "--register", f"{server}:{port}",
                              "--password", keys["account.1.password"]], "yealink")
        procs.append(phone)
        phone.expect(timeout=15, ev="reg", code=200)
        wait_for_bindings(data, {"101"})

        # A wrong secret is refused with nothing in the answer.
        status, body = fetch(root + path.replace("/provision/", "/provision/x", 1))
        assert (status, body) == (403, b"")
    finally:
        for p in procs:
            p.stop()
        app.stop()
