"""Trunks: their pjsua2 accounts, registration with back-off, and which trunk a call came from or leaves by.

Part of the B2BUA (appliance/engine/b2bua.py); everything here runs on the engine thread.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pjsua2 as pj

from appliance.routing.numbers import normalise

from .sipmsg import Invite
from .session import REG_BACKOFF, Account, Timer

log = logging.getLogger("appliance.engine.b2bua")


class TrunksMixin:
    """Methods of `B2BUA` (see b2bua.py)."""

    def _create_trunk_accounts(self) -> None:
        tid = self.engine.transports.get("trunk")
        for name in [n for n in self.accounts if n.startswith("trunk:")]:
            acc = self.accounts.pop(name)
            try:
                acc.shutdown()
            except pj.Error:
                pass
        if tid is None:
            return
        cfg = self.engine.config
        public = self.settings.get("trunk_public") or cfg.trunk_public or cfg.trunk_host
        for name, t in self.trunks.items():
            acc = Account(self, f"trunk:{name}", t)
            ac = pj.AccountConfig()
            host = f"{t['host']}:{t.get('port') or 5060}"
            domain = t.get("from_domain") or t["host"]
            ac.sipConfig.transportId = tid
            self._media_ports(ac)
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
            self.accounts[f"trunk:{name}"] = acc
            self.emit("TrunkConfigured", trunk=name, type=t["kind"])

    def reg_state(self, acc: Account, prm: Any) -> None:
        name = acc.name.split(":", 1)[1]
        code = prm.code
        if 200 <= code < 300 and prm.expiration > 0:
            acc.registered, acc.failures = True, 0
            self.emit("TrunkRegistered", trunk=name, expires=prm.expiration)
            return
        was = acc.registered
        acc.registered = False
        if prm.expiration == 0 and 200 <= code < 300:
            self.emit("TrunkUnregistered", trunk=name)
            return
        delay = REG_BACKOFF[min(acc.failures, len(REG_BACKOFF) - 1)]
        acc.failures += 1
        self.emit("TrunkRegistrationFailed", trunk=name, code=code, reason=prm.reason,
                  retry_in=delay, was_registered=was)
        t = Timer(time.monotonic() + delay, lambda: self._reregister(acc))
        self.add_timer(t)

    def _reregister(self, acc: Account) -> None:
        if self.accounts.get(acc.name) is acc:
            try:
                acc.setRegistration(True)
            except pj.Error as e:
                log.warning("trunk %s: %s", acc.name, e.info())

    def trunk_for_source(self, host: str, inv: Invite, acc: Account | None = None) -> str | None:
        names = [n for n, ips in self.trunk_ips.items() if host in ips]
        if not names:
            return None
        for n in names:
            t = self.trunks[n]
            if t["kind"] == "register" and inv.ruri_user in (t.get("username"), t.get("auth_username")):
                return n
        for n in names:
            numbers = {normalise(x) for x in self.trunks[n].get("numbers", [])}
            if normalise(inv.to_user) in numbers or normalise(inv.ruri_user) in numbers:
                return n
        return names[0]

    def trunk_out(self, prefer: str = "") -> tuple[Account, dict] | None:
        order = ([prefer] if prefer else []) + [n for n in self.trunks if n != prefer]
        for name in order:
            acc = self.accounts.get(f"trunk:{name}")
            if acc is None:
                continue
            if acc.trunk["kind"] == "ip" or acc.registered:
                return acc, acc.trunk
        return None
