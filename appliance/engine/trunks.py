"""Trunks: their pjsua2 accounts, registration with back-off, and which trunk a call came from or leaves by.

Branch trunks (`kind: branch`) link this appliance with another shop's: their
calls carry the signed `X-PBX-Branch` header (branchlink.py) both ways, and an
OPTIONS ping every 2 s says whether the link is up; it is reported with the
registration events (TrunkRegistered, TrunkRegistrationFailed), so the trunk
LED, the panel and routing (`State.links`) follow it.  docs/branches.md.

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

from appliance.errors import ConfigError
from appliance.routing.branch import Ranges, in_ranges, parse_ranges, split_target
from appliance.routing.desk import ring_extension
from appliance.routing.numbers import normalise
from appliance.routing.steps import Leg as LegSpec

from . import branchlink
from .sipmsg import Invite, split_address
from .session import REG_BACKOFF, Account, RingRun, Session, Timer

log = logging.getLogger("appliance.engine.b2bua")

# Trunks that do not register: an IP trunk (the provider's addresses), and an analog line, whose
# user agent (appliance/analog) is an IP trunk on loopback to the engine.
LOOSE = ("ip", "analog")
BRANCH = "branch"  # another shop's appliance: signed calls both ways, OPTIONS pings
LINK_LOOK = 0.1    # seconds between looks at the branch links' sockets (the loop turns every 5 ms)


class Trunks:
    """The B2BUA's trunks: their pjsua accounts, registration with back-off, which trunk a call came on or leaves by."""

    def __init__(self, b2bua: Any):
        self.b2bua = b2bua
        self.config: dict[str, dict] = {}    # enabled trunks by name, as the store has them
        self.ips: dict[str, set[str]] = {}   # trunk name -> the addresses its calls come from
        # trunk name -> the provider's last reply to its registration (code, reason, since when it is
        # up or down); emptied when the accounts are made again, so a changed trunk starts unknown
        self.replies: dict[str, dict] = {}
        # Branch trunks: name -> its pings' state, and the socket they go out on.
        self.pingers: dict[str, branchlink.Pinger] = {}
        self.sockets: dict[str, socket.socket] = {}
        self.checker = branchlink.Checker()   # the nonces of branch calls taken (no replays)
        self._hooked = False
        self._looked = 0.0

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
            if t["kind"] == BRANCH:
                ac.idUri = f"sip:pbx@{public if public not in ('0.0.0.0', '') else '127.0.0.1'}"
                ac.regConfig.registerOnAdd = False
            elif t["kind"] == "register":
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
        self._open_links()

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

    # -- branch links ----------------------------------------------------------------

    def _open_links(self) -> None:
        """A socket and a pinger per branch trunk (made again with the accounts)."""
        self._close_links()
        now = time.monotonic()
        for name, t in self.config.items():
            if t["kind"] != BRANCH:
                continue
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                # Connected: the far end's "port unreachable" comes back as an error at once.
                sock.connect((resolve(t["host"]), int(t.get("port") or 5060)))
            except OSError as e:
                log.warning("branch %s: cannot reach %s: %s", name, t["host"], e)
                sock.close()
                continue
            self.sockets[name] = sock
            self.pingers[name] = branchlink.Pinger(now)
        if self.pingers and not self._hooked:
            self._hooked = True
            self.b2bua.engine.on_turn(self.look_at_links)
            self.b2bua.engine.on_shutdown(self._close_links)

    def _close_links(self) -> None:
        for sock in self.sockets.values():
            sock.close()
        self.sockets, self.pingers = {}, {}

    def look_at_links(self) -> None:
        """Engine turn: answers to the pings read, the pings that are due sent, silent links put down."""
        now = time.monotonic()
        if now - self._looked < LINK_LOOK:
            return
        self._looked = now
        for name, sock in list(self.sockets.items()):
            pinger = self.pingers[name]
            refused = ""
            while True:
                try:
                    data = sock.recv(4096)
                except BlockingIOError:
                    break
                except OSError as e:  # ECONNREFUSED: nothing listens at the far trunk port
                    refused = f"the branch's port refused ({e.strerror or e})"
                    break
                answer = branchlink.answer_of(data)
                if answer is not None and pinger.answered(now, *answer):
                    self._link_changed(name, pinger)
            if (refused and pinger.lost(now, refused)) or (not refused and pinger.lost(now)):
                self._link_changed(name, pinger)
            if pinger.due(now):
                host, port = sock.getpeername()
                try:
                    sock.send(branchlink.options(host, port, sock.getsockname(), pinger.cseq, pinger.call_id))
                except OSError:
                    pass  # counted as no answer

    def _link_changed(self, name: str, pinger: branchlink.Pinger) -> None:
        self._remember(name, pinger.code, pinger.reason, bool(pinger.up))
        if pinger.up:
            log.info("branch %s: link up", name)
            self.b2bua.emit("TrunkRegistered", trunk=name, expires=0, check="options")
        else:
            log.warning("branch %s: link down: %s", name, pinger.reason)
            self.b2bua.emit("TrunkRegistrationFailed", trunk=name, code=pinger.code, reason=pinger.reason,
                            retry_in=branchlink.PING_EVERY, was_registered=True, check="options")

    def link_up(self, name: str) -> bool:
        pinger = self.pingers.get(name)
        return pinger is not None and bool(pinger.up)

    def links(self) -> dict[str, bool]:
        """Routing's `State.links`: each branch trunk and whether its link is up now."""
        return {name: self.link_up(name) for name, t in self.config.items() if t["kind"] == BRANCH}

    def branch_ranges(self) -> dict[str, Ranges]:
        """Each enabled branch trunk's extension ranges (for the desk dial plan)."""
        out = {}
        for name, t in self.config.items():
            if t["kind"] == BRANCH:
                try:
                    out[name] = parse_ranges(t.get("numbers") or [])
                except ConfigError:
                    log.warning("branch %s: its extensions %r are not ranges", name, t.get("numbers"))
        return out

    def ring_branch(self, s: Session, run: RingRun, i: int, spec: LegSpec) -> None:
        """A leg to another shop: its extension (`shop2/201`) or its routing (`shop2`), signed."""
        name = spec.branch
        t, acc = self.config.get(name), self.b2bua.accounts.get(f"trunk:{name}")
        came = self.config.get(s.trunk)
        if came is not None and came["kind"] == BRANCH:
            run.codes.append(482)
            s.note("skip", target=spec.target, why="a call from a branch is not sent on to a branch")
        elif t is None or acc is None or t["kind"] != BRANCH or not self.link_up(name):
            run.codes.append(503)
            s.note("skip", target=spec.target, why=f"the link to branch {name} is down")
        else:
            user = split_target(spec.target)[1] or s.dialled or "pbx"
            caller = s.caller or "anonymous"
            shown = (s.caller_name or "").replace('"', "").replace("\\", "")
            public = acc.config.idUri.rpartition("@")[2] if acc.config is not None else "127.0.0.1"
            local = f'"{shown}" <sip:{caller}@{public}>' if shown else f"<sip:{caller}@{public}>"
            signed = branchlink.sign(t.get("password") or "", caller, user)
            self.b2bua.ringer.place(s, run, i, acc, f"sip:{user}@{t['host']}:{t.get('port') or 5060}", local,
                                    trunk=name, headers=((branchlink.HEADER, signed),))
        if spec.target not in s.rung:
            s.rung.append(spec.target)

    def from_branch(self, a: Any, inv: Invite, name: str) -> None:
        """A call another shop sent: one of our extensions rings, anything else takes our routing."""
        b2bua = self.b2bua
        ranges = self.branch_ranges().get(name, ())
        colleague = in_ranges(inv.from_user, ranges)
        number = inv.ruri_user
        if number in b2bua.extensions:
            s = Session(b2bua, a, "internal" if colleague else "inbound", normalise(inv.from_user),
                        inv.from_name, number, trunk=name)
            b2bua.begin(s)
            step = ring_extension(number)
            s.step = step
            self.b2bua.execute(s, step)
            return
        s = Session(b2bua, a, "inbound", normalise(inv.from_user), inv.from_name, normalise(number), trunk=name)
        b2bua.begin(s)
        b2bua.route_first(s)

    def status(self) -> list[dict]:
        """Engine thread: every enabled trunk, whether it works and, in words, why not."""
        out = []
        for name, t in self.config.items():
            made = f"trunk:{name}" in self.b2bua.accounts
            reply = self.replies.get(name) or {}
            if t["kind"] in LOOSE:
                up, code, reason, since = made, None, "", reply.get("since")
            elif t["kind"] == BRANCH:
                up, code, reason, since = self.link_up(name), reply.get("code"), reply.get("reason", ""), reply.get("since")
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
        signed = inv.header(branchlink.HEADER)
        if signed:
            return self._branch_for(host, inv, signed)
        # A branch's calls are known by their signature, never by their address alone.
        names = [n for n, ips in self.ips.items() if host in ips and self.config[n]["kind"] != BRANCH]
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

    def _branch_for(self, host: str, inv: Invite, signed: str) -> str | None:
        """The branch trunk whose secret signed this INVITE (from one of its addresses), or None."""
        why = "no branch trunk has this address"
        for name, ips in self.ips.items():
            t = self.config[name]
            if t["kind"] != BRANCH or host not in ips:
                continue
            why = self.checker.check(t.get("password") or "", signed, inv.from_user, inv.ruri_user)
            if why is None:
                return name
        log.warning("refused a branch call from %s to %r: %s", host, inv.ruri_user, why)
        return None

    def trunk_out(self, prefer: str = "") -> tuple[Account, dict] | None:
        order = ([prefer] if prefer else []) + [n for n in self.config if n != prefer]
        for name in order:
            acc = self.b2bua.accounts.get(f"trunk:{name}")
            if acc is None or acc.trunk["kind"] == BRANCH:  # a branch is no way out to the phone network
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
