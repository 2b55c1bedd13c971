"""Provisioning: the files phones fetch to configure themselves (docs/provisioning.md).

Two kinds of address, both opened by a secret in the address and by nothing
else (no owner session; `web.auth.require_login` lets exactly
PROVISION_ENDPOINTS through and these views check the secret):

- `/provision/<secret>/<file>`: a desk phone's file, by the phone's MAC
  address in the file name; the secret is the phone's own.
- `/provision/softphone/<token>`: a softphone's file (Linphone's remote
  provisioning), once: the token is deleted as it is used.

Whatever is wrong (secret, MAC address, file name, token, an extension
gone) is answered 403 with an empty body, so the answer says nothing about
the office.  Wrong secrets are counted per source address like wrong panel
passwords: the fifth within 15 minutes locks the address out (429, empty).
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, current_app, request

from appliance.control import socket_path
from appliance.provision import Account, linphone, mac_of_file, render, same_secret, token_hash
from appliance.store.panel import PanelTables
from appliance.store.provisioning import ProvisioningTables
from web.db import ask, get_store

bp = Blueprint("provision", __name__, url_prefix="/provision")
NAV = (None, None)

PROVISION_ENDPOINTS = frozenset({"provision.phone_file", "provision.softphone"})

FAILURE_LIMIT = 5
FAILURE_WINDOW = 15 * 60
LOCKOUT_SECONDS = 5 * 60
SIP_PORT = 5060
TLS_PORT = 5061


@bp.route("/")
def index():
    """Nothing to list: every file is reached by its own secret address."""
    abort(404)


def _source() -> str:
    # Its own key in the wrong-password counts: a phone's mistakes never lock the owner's login.
    return f"provision {request.remote_addr or 'unknown'}"


def _refused(count: bool = True) -> Response:
    if count:
        PanelTables(get_store()).login_failed(_source(), time.time(), FAILURE_LIMIT, FAILURE_WINDOW, LOCKOUT_SECONDS)
    return Response(b"", status=403)


def _locked() -> bool:
    return PanelTables(get_store()).locked_until(_source(), time.time()) is not None


def sip_host() -> str:
    """The address the phone reached the panel at: the same machine's SIP edge is there."""
    host = urlsplit(request.host_url).hostname or "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def sip_ports() -> tuple[int, int]:
    """(UDP/TCP port, TLS port) of the running appliance's edge; the defaults when it is not running."""
    port = SIP_PORT
    if socket_path(current_app.config["DATA_DIR"]).exists():
        status, _error = ask("status")
        try:
            port = int(str(status["edge"]["sip"]).rsplit(":", 1)[1])
        except (TypeError, KeyError, IndexError, ValueError):
            pass
    tls = get_store().get_setting("sip_tls")
    tls_port = int(tls["port"]) if isinstance(tls, dict) and tls.get("port") else TLS_PORT
    return port, tls_port


def account(extension: dict, password: str, version: int = 0) -> Account:
    """An extension's SIP line as its phone must be told it: TLS for an extension that is `secure`."""
    port, tls_port = sip_ports()
    secure = bool(extension.get("secure"))
    return Account(server=sip_host(), port=tls_port if secure else port, transport="tls" if secure else "udp",
                   user=str(extension["number"]), password=password, name=extension.get("name") or "",
                   realm=get_store().realm, version=version)


@bp.route("/<secret>/<filename>")
def phone_file(secret: str, filename: str):
    if _locked():
        return Response(b"", status=429)
    store = get_store()
    tables = ProvisioningTables(store)
    # Compared with every phone's secret in constant time, rather than looked up: an office has a few dozen.
    phone = None
    for row in tables.phones():
        if same_secret(secret, row["secret"]):
            phone = row
    if phone is None:
        return _refused()
    # The right secret for another file (a phone asks for its vendor's common files too): refused, not counted.
    if mac_of_file(filename) != phone["mac"]:
        return _refused(count=False)
    extension = store.extension(phone["extension"])
    if extension is None:
        return _refused(count=False)
    body, media_type = render(phone["vendor"], account(extension, phone["password"], int(phone["created_at"])),
                              phone["mac"])
    tables.fetched(phone["mac"], time.time())
    return Response(body, mimetype=media_type.split(";")[0], content_type=media_type)


@bp.route("/softphone/<token>")
def softphone(token: str):
    if _locked():
        return Response(b"", status=429)
    store = get_store()
    number = ProvisioningTables(store).use_token(token_hash(token), time.time())
    extension = store.extension(number) if number else None
    if extension is None:
        return _refused(count=number is None)
    offered = [a.strip() for a in str(store.get_setting("sip_digest_algorithms", "MD5,SHA-256")).upper().split(",")]
    algorithm = "MD5" if "MD5" in offered else "SHA-256"
    ha1 = extension["ha1_md5"] if algorithm == "MD5" else extension["ha1_sha256"]
    body = linphone(account(extension, ""), ha1, algorithm)
    return Response(body, content_type="application/xml")
