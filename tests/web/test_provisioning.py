"""The extension pages for phones outside the office: the TLS port and the certificate's fingerprint,
and the "encrypted only" setting that becomes the extension's `secure` key."""

from __future__ import annotations

from appliance.store import Store
from tests.web.conftest import post_form

FINGERPRINT = ":".join(["AB"] * 32)


def test_the_list_shows_the_tls_port_and_the_fingerprint(owner, panel_data):
    page = owner.get("/extensions/").data.decode()
    assert 'id="sip-fingerprint"' not in page and "--tls-port 0" in page  # off, and how it is turned off
    with Store(panel_data) as store:
        store.set_setting("sip_tls", {"port": 5061, "fingerprint": FINGERPRINT})
    page = owner.get("/extensions/").data.decode()
    assert "5061" in page and f'id="sip-fingerprint">{FINGERPRINT}<' in page


def test_encrypted_only_sets_and_clears_the_secure_key(owner, panel_data):
    form = {"name": "Home office", "rule_local": "y", "max_outbound": "2"}
    assert post_form(owner, "/extensions/101", {**form, "secure": "y"}).status_code == 302
    with Store(panel_data) as store:
        assert store.extension("101")["secure"] == 1
    edit = owner.get("/extensions/101").data.decode()
    box = edit[edit.index('name="secure"') - 200: edit.index('name="secure"') + 200]
    assert "checked" in box
    assert post_form(owner, "/extensions/101", form).status_code == 302
    with Store(panel_data) as store:
        assert store.extension("101")["secure"] == 0


def test_the_setup_page_of_a_new_phone_names_the_tls_port(owner, panel_data):
    with Store(panel_data) as store:
        store.set_setting("sip_tls", {"port": 5061, "fingerprint": FINGERPRINT})
    resp = post_form(owner, "/extensions/new", {"number": "150", "name": "Remote", "rule_local": "y",
                                                "max_outbound": "2", "secure": "y"})
    page = resp.data.decode()
    assert 'id="setup-tls"' in page and "5061" in page and FINGERPRINT in page
