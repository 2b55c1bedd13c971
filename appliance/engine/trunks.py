"""Trunks: their pjsua2 accounts, registration with back-off, and which trunk a call came from or leaves by.

A collaborator of the B2BUA (appliance/engine/b2bua.py), created by it and called by name;
everything here runs on the engine thread.
"""

from __future__ import annotations

import logging
import socket
import time
from datetime import datetime, timezone
from typing import Any

import pjsua2 as pj

from appliance.routing.numbers import normalise

from .sipmsg import Invite, split_address
from .session import REG_BACKOFF, Account, Timer

log = logging.getLogger("appliance.engine.b2bua")

# Trunks that do not register: an IP trunk (the provider's addresses), and an analog line, whose
# user agent (appliance/analog) is an IP trunk on loopback to the engine.
LOOSE = ("ip", "analog")


class Trunks:
    """The B2BUA's trunks: their pjsua accounts, registration with back-off, which trunk a call came on or leaves by."""

    def __init__(self, b2bua: Any):
        self.b2bua = b2bua
        self.config: dict[str, dict] = {}    # enabled trunks by name, as the store has them
        self.ips: dict[str, set[str]] = {}   # trunk name -> the addresses its calls come from
        # trunk name -> the provider's last reply to its registration (code, reason, since when it is
        # up or down); emptied when the accounts are made again, so a changed trunk starts unknown
        self.replies: dict[str, dict] = {}

    def reload(self, store: Any, accounts_made: bool) -> None:
        """The enabled trunks from the store; their accounts made again when they changed."""
        trunks = {t["name"]: t for t in store.trunks() if t.get("enabled", 1)}
        self.ips = {}
        for name, t in trunks.items():
            ips = set()
            for addr in [t["host"], *t.get("addresses", [])]:
                ips.add(resolve(split_address(addr)[0] if addr.count(":") == 1 else addr))
            self.ips[name] = ips
        changed = trunks != self.config
        self.config = trunks
        if accounts_made and changed:
            self.create_accounts()

    def create_accounts(self) -> None:
        tid = self.b2bua.engine.transports.get("trunk")
        for name in [n for n in self.b2bua.accounts if n.startswith("trunk:")]:
            acc = self.b2bua.accounts.pop(name)
            try:
                acc.shutdown()
            except pj.Error:
                pass
        self.replies = {}
        if tid is None:
            return
        cfg = self.b2bua.engine.config
        public = self.b2bua.settings.get("trunk_public") or cfg.trunk_public or cfg.trunk_host
        for name, t in self.config.items():
            acc = Account(self.b2bua, f"trunk:{name}", t)
            ac = pj.AccountConfig()
            host = f"{t['host']}:{t.get('port') or 5060}"
            domain = t.get("from_domain") or t["host"]
            ac.sipConfig.transportId = tid
            self.b2bua.media_ports(ac)
            if t["kind"] == "register":
                ac.idUri = f"sip:{t['username']}@{domain}"
                ac.regConfig.registrarUri = f"sip:{host}"
                ac.regConfig.timeoutSec = int(t.get("register_expires") or 300)
                ac.regConfig.retryIntervalSec = 0   # our own back-off, see reg_state
                ac.regConfig.registerOnAdd = True
                ac.sipConfig.authCreds.append(pj.AuthCredInfo(
                    "digest", "*", t.get("auth_username") or t["username"], 0, t.get("password") or ""))
            else:
                number = t.get("caller_id") or (t.get("numbers") or ["pbx"])[0]
                ac.idUri = f"sip:{number}@{public if public not in ('0.0.0.0', '') else '127.0.0.1'}"
                ac.regConfig.registerOnAdd = False
            acc.create(ac, False)
            acc.config = ac
            if t["kind"] in LOOSE:
                self._remember(name, None, "", True)
            self.b2bua.accounts[f"trunk:{name}"] = acc
            self.b2bua.emit("TrunkConfigured", trunk=name, type=t["kind"])

    def reg_state(self, acc: Account, prm: Any) -> None:
        name = acc.name.split(":", 1)[1]
        code = prm.code
        self._remember(name, code, str(prm.reason), 200 <= code < 300 and prm.expiration > 0)
        if 200 <= code < 300 and prm.expiration > 0:
            acc.registered, acc.failures = True, 0
            self.b2bua.emit("TrunkRegistered", trunk=name, expires=prm.expiration)
            return
        was = acc.registered
        acc.registered = False
        if prm.expiration == 0 and 200 <= code < 300:
            self.b2bua.emit("TrunkUnregistered", trunk=name)
            return
        delay = REG_BACKOFF[min(acc.failures, len(REG_BACKOFF) - 1)]
        acc.failures += 1
        self.b2bua.emit("TrunkRegistrationFailed", trunk=name, code=code, reason=prm.reason,
                  retry_in=delay, was_registered=was)
        t = Timer(time.monotonic() + delay, lambda: self._reregister(acc))
        self.b2bua.add_timer(t)

    def _remember(self, name: str, code: int | None, reason: str, up: bool) -> None:
        """Keep the provider's last reply; `since` moves only when the trunk goes up or down."""
        before = self.replies.get(name)
        since = before["since"] if before and before["up"] == up else _now_iso()
        self.replies[name] = {"code": code, "reason": reason, "up": up, "since": since}

    def status(self) -> list[dict]:
        """Engine thread: every enabled trunk, whether it works and, in words, why not."""
        out = []
        for name, t in self.config.items():
            made = f"trunk:{name}" in self.b2bua.accounts
            reply = self.replies.get(name) or {}
            if t["kind"] in LOOSE:
                up, code, reason, since = made, None, "", reply.get("since")
            else:
                up, code, reason, since = bool(reply.get("up")), reply.get("code"), reply.get("reason", ""), reply.get("since")
            out.append({"name": name, "kind": t["kind"], "up": up, "code": code, "reason": reason, "since": since,
                        "error": None if up else trouble_words(code, reason)})
        return out

    def _reregister(self, acc: Account) -> None:
        if self.b2bua.accounts.get(acc.name) is acc:
            try:
                acc.setRegistration(True)
            except pj.Error as e:
                log.warning("trunk %s: %s", acc.name, e.info())

    def trunk_for_source(self, host: str, inv: Invite, acc: Account | None = None) -> str | None:
        names = [n for n, ips in self.ips.items() if host in ips]
        if not names:
            return None
        for n in names:
            t = self.config[n]
            if t["kind"] == "register" and inv.ruri_user in (t.get("username"), t.get("auth_username")):
                return n
        for n in names:
            numbers = {normalise(x) for x in self.config[n].get("numbers", [])}
            if normalise(inv.to_user) in numbers or normalise(inv.ruri_user) in numbers:
                return n
        return names[0]

    def trunk_out(self, prefer: str = "") -> tuple[Account, dict] | None:
        order = ([prefer] if prefer else []) + [n for n in self.config if n != prefer]
        for name in order:
            acc = self.b2bua.accounts.get(f"trunk:{name}")
            if acc is None:
                continue
            if acc.trunk["kind"] in LOOSE or acc.registered:
                return acc, acc.trunk
        return None


def trouble_words(code: int | None, reason: str = "") -> str:
    """Why a trunk does not work, in an owner's words, from the provider's last reply (None: no reply yet).

    pjsip reports 408 when the provider never answered and 502/503 when it could not send to it
    (no route, the name does not resolve, TCP refused)."""
    if code is None:
        return "waiting for the provider's answer"
    if code in (401, 407, 403):
        return f"the provider refused the password ({code})"
    if code == 404:
        return "the provider does not know this username (404)"
    if code == 408:
        return "no answer from the provider (408)"
    if code in (502, 503, 504):
        return f"the provider's server could not be reached ({code})"
    if 200 <= code < 300:
        return "not registered"
    return f"the provider answered {code} {reason}".rstrip()


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def resolve(host: str) -> str:
    try:
        socket.inet_aton(host)
        return host
    except OSError:
        pass
    try:
        return socket.gethostbyname(host)
    except OSError:
        return host
