"""The extension pages for phones outside the office: the TLS port and the certificate's fingerprint,
and the "encrypted only" setting that becomes the extension's `secure` key."""

from __future__ import annotations

from appliance.store import Store
from tests.web.conftest import log_in, post_form

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


# ---- phones that configure themselves (docs/provisioning.md) ------------------------------------

import re  # noqa: E402
import time  # noqa: E402
import xml.etree.ElementTree as ET  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import segno  # noqa: E402

from appliance.provision import mac_of_file, normalise_mac  # noqa: E402
from appliance.store import ha1  # noqa: E402
from appliance.store.provisioning import ProvisioningTables  # noqa: E402

MAC = "001565abcdef"


def assign(owner, number: str, mac: str, vendor: str):
    return post_form(owner, f"/extensions/{number}/phone", {"mac": mac, "vendor": vendor}, page=f"/extensions/{number}")


def phone_row(panel_data, mac: str = MAC) -> dict:
    with Store(panel_data) as store:
        return ProvisioningTables(store).phone(mac)


def file_path(owner, number: str, mac: str = MAC) -> str:
    """The file's address as the extension page shows it, without scheme and host."""
    page = owner.get(f"/extensions/{number}").data.decode()
    url = re.search(r'<code class="provision-url">([^<]+)</code>', page).group(1)
    return "/" + url.split("/", 3)[3]


def yealink_keys(body: str) -> dict[str, str]:
    lines = body.splitlines()
    assert lines[0] == "#!version:1.0.0.1"
    pairs = (line.split("=", 1) for line in lines[1:] if line.strip() and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def fanvil_keys(body: str) -> dict[str, str]:
    lines = body.split("\r\n")
    assert lines[0].startswith("<<VOIP CONFIG FILE>>Version:2.") and "<<END OF FILE>>" in lines
    assert "<SIP CONFIG MODULE>" in lines
    pairs = (line.split(":", 1) for line in lines if ":" in line and not line.startswith("<"))
    return {k.strip(): v for k, v in pairs}


def parsed(vendor: str, body: bytes) -> dict[str, str]:
    """(server, port, transport, user, auth user, password, name) read back from a vendor's file."""
    if vendor == "yealink":
        k = yealink_keys(body.decode())
        return {"server": k["account.1.sip_server.1.address"], "port": k["account.1.sip_server.1.port"],
                "transport": {"0": "udp", "1": "tcp", "2": "tls"}[k["account.1.sip_server.1.transport_type"]],
                "user": k["account.1.user_name"], "auth": k["account.1.auth_name"],
                "password": k["account.1.password"], "name": k["account.1.display_name"],
                "srtp": k["account.1.srtp_encryption"] == "2", "enabled": k["account.1.enable"] == "1"}
    if vendor == "fanvil":
        k = fanvil_keys(body.decode())
        return {"server": k["SIP1 Register Addr"], "port": k["SIP1 Register Port"],
                "transport": {"0": "udp", "1": "tcp", "2": "tls"}[k["SIP1 Transport"]],
                "user": k["SIP1 Phone Number"], "auth": k["SIP1 Register User"], "password": k["SIP1 Register Pswd"],
                "name": k["SIP1 Display Name"], "srtp": k["SIP1 Enable SRTP"] == "1",
                "enabled": k["SIP1 Enable Reg"] == "1"}
    root = ET.fromstring(body)
    if vendor == "grandstream":
        assert root.tag == "gs_provision" and root.findtext("mac") == MAC
        p = {e.tag: e.text or "" for e in root.find("config")}
        server, port = p["P47"].rsplit(":", 1)
        return {"server": server, "port": port, "transport": {"0": "udp", "1": "tcp", "2": "tls"}[p["P130"]],
                "user": p["P35"], "auth": p["P36"], "password": p["P34"], "name": p["P3"],
                "srtp": p["P183"] == "2", "enabled": p["P271"] == "1"}
    assert vendor == "snom" and root.tag == "settings"
    s = {e.tag: e.text or "" for e in root.find("phone-settings")}
    host, _sep, params = s["user_host1"].partition(";")
    server, port = host.rsplit(":", 1)
    return {"server": server, "port": port, "transport": params.removeprefix("transport=") or "udp",
            "user": s["user_name1"], "auth": s["user_pname1"], "password": s["user_pass1"],
            "name": s["user_realname1"], "srtp": s["user_srtp1"] == "on", "enabled": s["user_active1"] == "on"}


@pytest.mark.parametrize("vendor", ["yealink", "grandstream", "fanvil", "snom"])
def test_each_vendors_file_carries_the_line_and_a_password_the_extension_has(app, owner, panel_data, vendor):
    with Store(panel_data) as store:
        before = store.extension("101")["ha1_md5"]
    assert assign(owner, "101", "00:15:65:AB:CD:EF", vendor).status_code == 302
    path = file_path(owner, "101")
    phone = app.test_client()  # the phone: no session, no cookie
    resp = phone.get(path)
    assert resp.status_code == 200
    got = parsed(vendor, resp.data)
    with Store(panel_data) as store:
        ext, realm = store.extension("101"), store.realm
        assert ProvisioningTables(store).phone(MAC)["fetched_at"]
    assert got["server"] == "localhost" and got["port"] == "5060" and got["transport"] == "udp" and not got["srtp"]
    assert got["user"] == got["auth"] == "101" and got["enabled"]
    assert got["name"] == ext["name"]
    # The file's password is the extension's new one: its digests are what the edge checks.
    assert ext["ha1_md5"] != before
    assert ha1("101", realm, got["password"], "MD5") == ext["ha1_md5"]
    assert ha1("101", realm, got["password"], "SHA-256") == ext["ha1_sha256"]
    assert "set-cookie" not in resp.headers


@pytest.mark.parametrize("vendor", ["yealink", "grandstream", "fanvil", "snom"])
def test_a_secure_extensions_file_names_tls_its_port_and_srtp(app, owner, panel_data, vendor):
    with Store(panel_data) as store:
        store.set_setting("sip_tls", {"port": 5071, "fingerprint": FINGERPRINT})
    post_form(owner, "/extensions/102", {"name": "Home office", "rule_local": "y", "max_outbound": "2", "secure": "y"})
    assert assign(owner, "102", MAC, vendor).status_code == 302
    got = parsed(vendor, app.test_client().get(file_path(owner, "102")).data)
    assert (got["transport"], got["port"], got["srtp"], got["user"]) == ("tls", "5071", True, "102")


def test_a_name_cannot_add_a_key_to_a_key_value_file(app, owner, panel_data):
    post_form(owner, "/extensions/101", {"name": "Desk\naccount.1.password = x", "rule_local": "y", "max_outbound": "2"})
    assign(owner, "101", MAC, "yealink")
    body = app.test_client().get(file_path(owner, "101")).data.decode()
    assert yealink_keys(body)["account.1.password"] == phone_row(panel_data)["password"]
    assert sum(line.startswith("account.1.password") for line in body.splitlines()) == 1


def test_a_wrong_secret_mac_or_file_gets_403_with_an_empty_body(app, owner, panel_data):
    assign(owner, "101", MAC, "yealink")
    assign(owner, "102", "001565000002", "snom")
    secret = phone_row(panel_data)["secret"]
    other = phone_row(panel_data, "001565000002")["secret"]
    phone = app.test_client()
    for path in (f"/provision/{secret[:-1]}x/{MAC}.cfg",  # wrong secret
                 f"/provision/{secret}/001565000002.cfg",  # another phone's MAC
                 f"/provision/{other}/{MAC}.cfg",  # another phone's secret
                 f"/provision/{secret}/y000000000044.cfg",  # the vendor's common file
                 f"/provision/{secret}/{MAC}-local.cfg",
                 "/provision/softphone/not-a-token"):
        resp = phone.get(path)
        assert resp.status_code == 403, path
        assert resp.data == b"", path
    assert phone.get(f"/provision/{secret}/{MAC}.cfg").status_code == 200
    assert phone.get(f"/provision/{secret}/{MAC.upper()}.cfg").status_code == 200


def test_wrong_secrets_lock_the_source_out_but_not_the_owners_login(app, owner, panel_data):
    assign(owner, "101", MAC, "yealink")
    secret = phone_row(panel_data)["secret"]
    phone = app.test_client()
    for i in range(5):
        assert phone.get(f"/provision/wrong{i}/{MAC}.cfg").status_code == 403
    resp = phone.get(f"/provision/{secret}/{MAC}.cfg")  # even the right one, for a while
    assert resp.status_code == 429 and resp.data == b""
    assert owner.get("/extensions/").status_code == 200
    assert log_in(app.test_client()).status_code == 302  # the same address may still log in


def test_the_secret_opens_only_the_provisioning_files(app, owner, panel_data):
    from web.areas.provision import PROVISION_ENDPOINTS

    assert PROVISION_ENDPOINTS == {"provision.phone_file", "provision.softphone"}
    assign(owner, "101", MAC, "yealink")
    secret = phone_row(panel_data)["secret"]
    phone = app.test_client()
    assert phone.get(f"/provision/{secret}/{MAC}.cfg").status_code == 200
    # Having fetched a file opens no session, and the secret opens no page of the panel.
    for path in ("/", "/extensions/", "/extensions/101", f"/extensions/?secret={secret}", "/provision/",
                 f"/history/?kiosk={secret}", "/settings/"):
        resp = phone.get(path)
        assert resp.status_code == 302 and "/auth/login" in resp.location, path
    assert phone.post(f"/provision/{secret}/{MAC}.cfg").status_code in (400, 405)
    # Every endpoint of the panel but those and the login pages asks for a session.
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PROVISION_ENDPOINTS or rule.endpoint in ("static", "auth.login", "auth.setup",
                                                                      "i18n.choose") or "GET" not in rule.methods:
            continue
        if rule.endpoint.startswith("wallboard."):
            continue  # the kiosk's own exemption, tested with the wallboard
        path = rule.build({a: "101" for a in rule.arguments})[1]
        assert phone.get(path).status_code == 302, rule.endpoint
    assert owner.get("/provision/").status_code == 404


def test_the_mac_field_refuses_what_is_not_a_mac_address_and_saves_nothing(owner, panel_data):
    with Store(panel_data) as store:
        before = store.extension("101")["ha1_md5"]
    for bad in ("00:15:65:AB:CD", "0015.65ab.cdeg", "01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", ""):
        resp = assign(owner, "101", bad, "yealink")
        assert resp.status_code == 400, bad
        page = resp.data.decode()
        assert 'id="mac-error"' in page, bad
        error_at = page.index('id="mac-error"')
        assert page.index('id="mac"') < error_at < page.index('id="vendor"')
    with Store(panel_data) as store:
        assert store.extension("101")["ha1_md5"] == before
        assert ProvisioningTables(store).phones() == []


def test_a_mac_address_is_assigned_once(owner, panel_data):
    assert assign(owner, "102", MAC, "yealink").status_code == 302
    with Store(panel_data) as store:
        before = store.extension("101")["ha1_md5"]
    resp = assign(owner, "101", "00-15-65-ab-cd-ef", "snom")
    assert resp.status_code == 400
    error = re.search(r'id="mac-error">([^<]+)<', resp.data.decode()).group(1)
    assert "102" in error
    with Store(panel_data) as store:
        assert store.extension("101")["ha1_md5"] == before
        assert [(p["mac"], p["extension"], p["vendor"]) for p in ProvisioningTables(store).phones()] == \
            [(MAC, "102", "yealink")]


def test_a_new_password_goes_into_the_file_and_a_removed_phone_gets_nothing(app, owner, panel_data):
    assign(owner, "101", MAC, "fanvil")
    path = file_path(owner, "101")
    phone = app.test_client()
    before = phone.get(path).data.decode()
    with Store(panel_data) as store:  # as if the phone had been set up a minute ago
        ProvisioningTables(store).set_password("101", phone_row(panel_data)["password"], time.time() - 60)
    first = phone.get(path).data.decode()
    assert first != before
    page = post_form(owner, "/extensions/101/password", {}, page="/extensions/101").data.decode()
    new = re.search(r'id="setup-password">([^<]+)<', page).group(1)
    second = phone.get(path).data.decode()
    assert fanvil_keys(second)["SIP1 Register Pswd"] == new != fanvil_keys(first)["SIP1 Register Pswd"]
    # The phone applies only a file whose version is higher than the one it runs.
    version = [float(f.split("\r\n")[0].split("Version:")[1]) for f in (first, second)]
    assert version[1] > version[0]
    resp = post_form(owner, f"/extensions/101/phone/{MAC}/remove", {}, page="/extensions/101")
    assert resp.status_code == 302
    assert phone.get(path).status_code == 403


def test_mac_addresses_as_typed_and_as_asked_for():
    assert normalise_mac(" 00:15:65:AB:CD:EF ") == normalise_mac("0015.65ab.cdef") == MAC
    assert normalise_mac("00-15-65-ab-cd-ef") == normalise_mac("001565ABCDEF") == MAC
    assert normalise_mac("00156") is None and normalise_mac(None) is None
    assert mac_of_file(f"{MAC}.cfg") == mac_of_file(f"cfg{MAC}.xml") == mac_of_file(f"cfg{MAC}") == MAC
    assert mac_of_file(f"snom760-{MAC.upper()}.htm") == mac_of_file(f"{MAC}.xml") == MAC
    assert mac_of_file("y000000000044.cfg") is None and mac_of_file(f"{MAC}-local.cfg") is None
    assert mac_of_file(f"../{MAC}.cfg") is None


# ---- softphones: the QR code's one-time address ---------------------------------------------------


def svg_modules(svg: str) -> np.ndarray:
    """The dark modules of segno's inline SVG as an image (0 dark, 255 light): its path is rows of
    horizontal runs ("M4 4.5h7m2 0h1..."), in modules once the scale is undone."""
    size = int(re.search(r'width="(\d+)"', svg).group(1))
    scale = int(re.search(r'scale\((\d+)\)', svg).group(1))
    path = re.search(r'<path stroke="#000" d="([^"]+)"', svg).group(1)
    n = size // scale
    image = np.full((n, n), 255, dtype=np.uint8)
    x = y = 0.0
    for op, args in re.findall(r"([MmHh])([-\d. ]+)", path.replace("h", " h").replace("m", " m")):
        nums = [float(v) for v in args.split()]
        if op == "M":
            x, y = nums
        elif op == "m":
            x, y = x + nums[0], y + nums[1]
        else:
            image[int(y), int(x):int(x + nums[0])] = 0
            x += nums[0]
    return np.kron(image, np.ones((6, 6), dtype=np.uint8))  # a few pixels per module, as a camera sees it


def make_qr(owner, number: str = "101") -> tuple[str, str]:
    resp = post_form(owner, f"/extensions/{number}/softphone", {}, page=f"/extensions/{number}")
    assert resp.status_code == 200
    page = resp.data.decode()
    url = re.search(r'id="softphone-url">([^<]+)<', page).group(1)
    svg = re.search(r'<figure id="softphone-qr">(.*?)</figure>', page, re.S).group(1)
    return url, svg


def test_the_qr_code_reads_back_as_the_address_it_shows(owner):
    import zxingcpp

    url, svg = make_qr(owner)
    assert "style=" not in svg  # the CSP forbids inline styles
    decoded = zxingcpp.read_barcodes(svg_modules(svg))
    assert [d.text for d in decoded] == [url]
    # And module for module what segno makes of that address.
    assert svg == segno.make(url, error="m", micro=False).svg_inline(
        scale=5, border=4, dark="#000", light="#fff", svgclass="qr", lineclass=None, omitsize=False, title=None)


def test_the_softphone_address_works_once_and_a_new_code_ends_the_old(app, owner, panel_data):
    url, _svg = make_qr(owner)
    path = "/" + url.split("/", 3)[3]
    phone = app.test_client()
    resp = phone.get(path)
    assert resp.status_code == 200
    root = ET.fromstring(resp.data)
    sections = {s.get("name"): {e.get("name"): e.text for e in s} for s in root}
    with Store(panel_data) as store:
        ext, realm = store.extension("101"), store.realm
    assert sections["proxy_0"]["reg_proxy"] == "<sip:localhost:5060;transport=udp>"
    assert sections["proxy_0"]["reg_identity"].endswith("<sip:101@localhost>")
    auth = sections["auth_info_0"]
    assert (auth["username"], auth["realm"], auth["algorithm"], auth["ha1"]) == ("101", realm, "MD5", ext["ha1_md5"])
    assert "passwd" not in auth
    again = phone.get(path)
    assert again.status_code == 403 and again.data == b""

    old, _svg = make_qr(owner)
    new, _svg = make_qr(owner)
    assert phone.get("/" + old.split("/", 3)[3]).status_code == 403
    assert phone.get("/" + new.split("/", 3)[3]).status_code == 200
