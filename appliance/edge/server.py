"""The SIP edge: UDP, TCP and TLS listeners, the door guard, digest auth, registrar and proxy.

This is the I/O layer.  It reads datagrams and stream messages, lets the
guard drop what a banned source sends that cannot get past its ban, parses
(a SipError becomes the status it hints, or silence when too little parsed),
works out what a request proves (a dialog of ours, credentials that verify,
or nothing), asks the guard whether to act on it, and hands it to the
registrar or the proxy.  Every exception stops at `handle()`: a message can
be refused, never the edge.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Callable

from appliance.edge import events as ev
from appliance.edge.bindings import Binding, BindingTable, Flow
from appliance.edge.guard import Guard, GuardPolicy, Proof, is_address, is_scanner, trunk_hosts
from appliance.edge.keepalive import DEFAULT_INTERVAL, KeepAlive
from appliance.edge.notifier import Notifier
from appliance.edge.proxy import DIALOG_CREATING, Proxy
from appliance.edge.registrar import Registrar, uri_key
from appliance.netaddr import primary_address
from appliance.sip.message import parse_head
from appliance.sip import (
    Credentials,
    NonceSigner,
    Request,
    Response,
    SipError,
    SipURI,
    StreamFramer,
    challenge,
    parse,
    parse_credentials,
    response_to,
    verify,
)

log = logging.getLogger("appliance.edge")

MAX_MESSAGE = 16384
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE, PRACK, REFER, SUBSCRIBE, NOTIFY, MESSAGE"
# A stand-in HA1 for unknown users: the same work, the same answer, nothing to enumerate.
_DUMMY = {"MD5": hashlib.md5(b"unknown").hexdigest(), "SHA-256": hashlib.sha256(b"unknown").hexdigest()}
_SETTINGS = {
    "max_failures": ("edge_auth_max_failures", int),
    "failure_window": ("edge_auth_failure_window", float),
    "failure_ban": ("edge_auth_ban", float),
    "flood_requests": ("edge_flood_requests", int),
    "flood_window": ("edge_flood_window", float),
    "flood_ban": ("edge_flood_ban", float),
    "flood_per_phone": ("edge_flood_per_phone", int),
    "flood_trickle": ("edge_flood_trickle", int),
    "tcp_message_timeout": ("edge_tcp_message_timeout", float),
    "tcp_idle_timeout": ("edge_tcp_idle_timeout", float),
    "tcp_per_source": ("edge_tcp_per_source", int),
    "trunk_refresh": ("edge_trunk_refresh", float),
}


@dataclass(frozen=True, slots=True)
class Shown:
    """What a phone's request proves about itself."""

    proof: Proof = Proof.NONE
    extension: str | None = None  # whose dialog, INVITE or credentials
    stale: bool = False  # credentials on an expired nonce of ours: challenge again with stale=true
    failed: str | None = None  # the username whose credentials did not verify


NOTHING = Shown()
# Requests from phones with a handler of their own; the rest go to `_phone_request`.
_PHONE_HANDLERS = {"REGISTER": "_register", "ACK": "_ack_from_phone", "CANCEL": "_cancel_from_phone",
                   "SUBSCRIBE": "_subscribe"}
# Requests the edge answers itself (as registrar, as notifier): challenged with 401, credentials in Authorization.
_OWN_REQUESTS = frozenset({"REGISTER", "SUBSCRIBE"})


def lookup_trunks(names: frozenset[str], known: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    """Each trunk host's addresses (blocking: runs in an executor); a name that fails keeps what it had."""
    found: dict[str, frozenset[str]] = {}
    for name in names:
        if is_address(name):
            found[name] = frozenset([name])
            continue
        try:
            found[name] = frozenset(info[4][0] for info in socket.getaddrinfo(name, None, type=socket.SOCK_DGRAM))
        except OSError:
            found[name] = known.get(name, frozenset())
    return found


def _by_address(bans: list[dict]) -> dict[str, tuple[float, str]]:
    """Stored bans in the guard's shape: address -> (until, reason)."""
    return {r["address"]: (r["until"], r["reason"] or "") for r in bans}


class Edge:
    """Registrar and proxy in front of the engine.

    `Edge(store, host, port, engine_addr)`; `await start()`, `await stop()`.
    `on_event(event)` receives BindingAdded, BindingRemoved, SourceBanned and
    AuthFailed.  Port 0 picks a free port (the same for UDP and TCP); after
    start, `port` holds it.

    With `tls_context` (an ssl.SSLContext with the certificate) phones may also
    use SIP over TLS on `tls_port` (0 picks a free port; after start,
    `tls_port` holds it, or None when TLS is off or its port was taken).
    UDP bindings get an OPTIONS ping every `keepalive_interval` seconds
    (setting `edge_udp_keepalive`, default 25; 0 turns them off).
    """

    def __init__(
        self,
        store,
        host: str = "0.0.0.0",
        port: int = 5060,
        engine_addr: tuple[str, int] = ("127.0.0.1", 5080),
        *,
        advertise: str | None = None,
        on_event: Callable[[object], None] | None = None,
        policy: GuardPolicy | None = None,
        clock: Callable[[], float] = time.time,
        algorithms: tuple[str, ...] | None = None,
        max_message: int = MAX_MESSAGE,
        flush_interval: float = 1.0,
        tcp: bool = True,
        link_key: str | None = None,
        night_modes: Callable[[], list[str]] | None = None,
        tls_port: int | None = None,
        tls_context: ssl.SSLContext | None = None,
        keepalive_interval: float | None = None,
    ):
        self.store = store
        # Shared with the engine for this boot (see proxy.LINK_HEADER).
        self.link_key = link_key or secrets.token_hex(16)
        self.host = host
        self.port = port
        self.engine = Flow("udp", engine_addr[0], int(engine_addr[1]))
        self.advertise = advertise
        self.on_event = on_event
        self.clock = clock
        # MD5 first by default: many desk phones (and sipp) answer only the first
        # challenge and give up on SHA-256; clients that prefer SHA-256 still find it.
        setting = store.get_setting("sip_digest_algorithms", "MD5,SHA-256")
        self.algorithms = algorithms or tuple(a.strip().upper() for a in str(setting).split(",") if a.strip())
        self.max_message = max_message
        self.flush_interval = flush_interval
        self.use_tcp = tcp
        self.tls_context = tls_context
        self.tls_port = tls_port if tls_context is not None else None
        self.tls_server: asyncio.base_events.Server | None = None
        if keepalive_interval is None:
            keepalive_interval = float(store.get_setting("edge_udp_keepalive", DEFAULT_INTERVAL))
        self.keepalive = KeepAlive(keepalive_interval)
        self.policy = policy or self._policy_from_store()
        self.guard = Guard(self.policy, trusted=frozenset())
        self.table = BindingTable()
        self.registrar = Registrar(self.table)
        self.realm = store.get_setting("sip_realm", "pbx")
        self.secret = self._secret()
        self.nonces = NonceSigner(self.secret, 300.0)
        self.proxy: Proxy | None = None
        self.udp: asyncio.DatagramTransport | None = None
        self.tcp_server: asyncio.base_events.Server | None = None
        self.connections: dict[Flow, "TcpConnection"] = {}  # TCP and TLS, by their flow
        self.per_source: dict[str, int] = {}  # address -> open TCP connections
        self.trunk_addresses: dict[str, frozenset[str]] = {}  # trunk host -> its addresses (trusted)
        self._trunk_names: frozenset[str] = frozenset()
        self._trunks_at = 0.0  # monotonic time of the last lookup
        self._lookups: set[asyncio.Task] = set()
        self._db_version: int | None = None
        self._ticker: asyncio.Task | None = None
        self._soon: asyncio.TimerHandle | None = None
        self.counters = {"received": 0, "dropped": 0, "refused": 0}
        # Busy lamps: subscriptions to the dialog event package (notifier.py).
        from appliance.store.subscriptions import Subscriptions

        self.notifier = Notifier(send=self.send, known=lambda number: store.extension(number) is not None,
                                 clock=clock, saved=Subscriptions(store), night_modes=night_modes or (lambda: []),
                                 registered=lambda number: bool(self.contacts(number)))

    def _policy_from_store(self) -> GuardPolicy:
        policy = GuardPolicy()
        for attr, (key, kind) in _SETTINGS.items():
            value = self.store.get_setting(key)
            if value is not None:
                setattr(policy, attr, kind(value))
        return policy

    def _secret(self) -> bytes:
        # Kept in the store so nonces, dialog tokens and tags survive a restart.
        value = self.store.get_setting("edge_secret")
        if not value:
            value = secrets.token_hex(32)
            self.store.set_setting("edge_secret", value)
        return bytes.fromhex(value)

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        now = self.clock()
        self.table.load(self.store, now, uri_key)
        self._db_version = self.store.data_version()
        self.store.drop_ended_bans(now)
        self.guard.replace_bans(_by_address(self.store.bans(now)))
        self._trust_trunks(time.monotonic(), again=True)
        for attempt in range(20):
            self.udp, _ = await loop.create_datagram_endpoint(
                lambda: UdpProtocol(self), local_addr=(self.host, self.port), reuse_port=False
            )
            port = self.udp.get_extra_info("sockname")[1]
            try:
                # Room for a burst (every phone re-registering after a power cut) while the loop is busy.
                self.udp.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            except OSError:
                pass
            if not self.use_tcp:
                break
            try:
                self.tcp_server = await loop.create_server(lambda: TcpConnection(self), self.host, port, reuse_address=True)
                break
            except OSError:
                self.udp.close()
                if self.port != 0 or attempt == 19:
                    raise
        self.port = port
        await self._start_tls(loop)
        inner_host = "127.0.0.1" if self.host in ("0.0.0.0", "", "127.0.0.1", "localhost") else self.host
        outer_host = self.advertise or (primary_address() if self.host in ("0.0.0.0", "") else self.host)
        self.proxy = Proxy(
            table=self.table, secret=self.secret, inner=(inner_host, port), outer=(outer_host, port),
            engine=self.engine, send=self.send, link_key=self.link_key,
            outer_tls=(outer_host, self.tls_port) if self.tls_port else None,
        )
        self.notifier.start(self.proxy.outer)
        self._ticker = asyncio.create_task(self._tick())
        log.info("edge listening on %s:%d (udp%s)%s, engine at %s", self.host, port, "+tcp" if self.use_tcp else "",
                 f", tls on {self.tls_port}" if self.tls_port else "", self.engine)

    async def _start_tls(self, loop: asyncio.AbstractEventLoop) -> None:
        """The TLS listener; a port that cannot be had leaves TLS off, not the edge (UDP and TCP serve on)."""
        if self.tls_context is None or self.tls_port is None:
            return
        try:
            self.tls_server = await loop.create_server(
                lambda: TcpConnection(self, "tls"), self.host, self.tls_port, ssl=self.tls_context,
                reuse_address=True, ssl_handshake_timeout=self.policy.tcp_message_timeout)
        except OSError as e:
            log.error("SIP over TLS is off: port %d cannot be used (%s)", self.tls_port, e)
            self.tls_port = None
            return
        self.tls_port = self.tls_server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None
        if self._ticker:
            self._ticker.cancel()
            try:
                await self._ticker
            except asyncio.CancelledError:
                pass
            self._ticker = None
        for task in list(self._lookups):
            task.cancel()
        self.notifier.stop()
        if self.udp:
            self.udp.close()
            self.udp = None
        servers = [srv for srv in (self.tcp_server, self.tls_server) if srv is not None]
        for srv in servers:
            srv.close()
        for conn in list(self.connections.values()):
            conn.transport.close()
        for srv in servers:
            await srv.wait_closed()
        self.tcp_server = self.tls_server = None
        self.flush()

    def flush_soon(self, delay: float = 0.05) -> None:
        """Write new and removed bindings within `delay`: the engine rings only phones it can read.

        Refreshes of known bindings wait for the regular flush; a new phone
        (or one gone) is written almost at once, a batch at a time.
        """
        if self._soon is None:
            def run() -> None:
                self._soon = None
                self.flush()
            self._soon = asyncio.get_running_loop().call_later(delay, run)

    def flush(self) -> None:
        for b in self.table.flush(self.store):
            log.warning("binding of %s dropped: extension no longer exists", b.extension)
            self._emit(ev.BindingRemoved(b.extension, b.contact, "extension removed"))

    async def _tick(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                now = self.clock()
                for b in self.table.expire(now):
                    self._emit(ev.BindingRemoved(b.extension, b.contact, "expired"))
                self.flush()
                self.notifier.expire(now)
                mono = time.monotonic()
                self._read_store(now, mono)
                self.guard.sweep(now)
                self.proxy.sweep(mono - last)
                last = mono
                self._ping_udp_phones(mono)
            except Exception:  # the edge keeps serving; the next tick retries
                log.exception("edge housekeeping failed")

    def _ping_udp_phones(self, mono: float) -> None:
        """OPTIONS to every UDP flow a phone registered from, when its interval is up (keepalive.py)."""
        flows = {b.flow: b.contact for b in self.table.all() if b.flow.transport == "udp"}
        for flow, contact in self.keepalive.due(flows, mono):
            self.send(flow, self.keepalive.request(flow, contact, self.proxy.outer))

    def _read_store(self, now: float, mono: float) -> None:
        """Take bans and trunks as stored, when another connection changed the file.

        `pbx guard unban` only deletes the row: the store stays the one record
        of bans, the command works the same whether or not the appliance runs,
        and no control command has to be kept in step with it.  SQLite's
        data_version changes only when another connection committed, so a
        quiet tick costs one PRAGMA, and an unban takes effect within a tick.
        Only reads here: in WAL mode they never wait for another writer.
        """
        version = self.store.data_version()
        if version != self._db_version:
            self._db_version = version
            self.guard.replace_bans(_by_address(self.store.bans(now)))
            self._trust_trunks(mono, again=False)
        if mono - self._trunks_at >= self.policy.trunk_refresh:
            self._trust_trunks(mono, again=True)

    def _trust_trunks(self, mono: float, *, again: bool) -> None:
        """Trust the trunks' addresses: literal ones at once, host names once looked up.

        The lookup runs in an executor (DNS may hang, the loop must not), at
        start, when the trunks change, and every `trunk_refresh` seconds.
        """
        names = trunk_hosts(self.store.trunks())
        if names == self._trunk_names and not again:
            return
        self._trunk_names, self._trunks_at = names, mono
        known = {n: a for n, a in self.trunk_addresses.items() if n in names}
        self.trunk_addresses = {**known, **{n: frozenset([n]) for n in names if is_address(n)}}
        self.guard.trusted = frozenset().union(*self.trunk_addresses.values())
        if any(not is_address(n) for n in names):
            task = asyncio.get_running_loop().create_task(self._look_up(names, dict(self.trunk_addresses)))
            self._lookups.add(task)
            task.add_done_callback(self._lookups.discard)

    async def _look_up(self, names: frozenset[str], known: dict[str, frozenset[str]]) -> None:
        found = await asyncio.get_running_loop().run_in_executor(None, lookup_trunks, names, known)
        if names == self._trunk_names:  # not overtaken by a newer set of trunks
            self.trunk_addresses = found
            self.guard.trusted = frozenset().union(*found.values())

    # -- what the engine and the panel read ---------------------------------

    def bindings(self, extension: str | None = None) -> list[Binding]:
        items = self.table.all() if extension is None else self.table.of(extension)
        return sorted(items, key=lambda b: (b.extension, -b.q, -b.registered_at))

    def contacts(self, extension: str) -> list[str]:
        """Contact URIs to use as Request-URIs for ringing this extension through the edge."""
        now = self.clock()
        return [b.contact for b in self.bindings(extension) if b.expires_at > now]

    @property
    def route(self) -> str:
        """The Route header value the engine puts on requests for phones."""
        host, port = self.proxy.inner
        return f"<sip:{host}:{port};lr>"

    # -- sending ------------------------------------------------------------

    def send(self, flow: Flow, data: bytes) -> bool:
        if flow.transport in ("tcp", "tls"):
            conn = self.connections.get(flow)
            if conn is None:
                return False
            conn.transport.write(data)
            return True
        if self.udp is None:
            return False
        self.udp.sendto(data, (flow.host, flow.port))
        return True

    def _emit(self, event: object) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:
            log.exception("edge event handler failed on %r", event)

    def _ban(self, address: str, ban: tuple[float, str]) -> None:
        until, reason = ban
        log.warning("silencing %s until %s: %s", address, time.strftime("%H:%M:%S", time.localtime(until)), reason)
        try:
            self.store.save_ban(address, self.clock(), until, reason)
        except Exception:
            log.exception("could not store the ban of %s", address)
        self._emit(ev.SourceBanned(address, until, reason))

    # -- receiving ----------------------------------------------------------

    def handle(self, data: bytes, flow: Flow, stream: bool = False) -> None:
        """One message from one source; never raises."""
        try:
            self._handle(data, flow, stream)
        except Exception:
            log.exception("edge failed on a message from %s", flow)

    def _handle(self, data: bytes, flow: Flow, stream: bool) -> None:
        self.counters["received"] += 1
        from_engine = flow == self.engine
        now = self.clock()
        if not from_engine and not self.guard.worth_parsing(flow.host, now, data):
            self.counters["dropped"] += 1
            return
        if not data.strip(b"\r\n\x00 "):
            return  # a keep-alive
        try:
            msg = parse(data, max_size=self.max_message, stream=stream)
        except SipError as e:
            if from_engine or self._admit(flow, now, Proof.NONE):
                self._refuse(e, flow)
            return
        if isinstance(msg, Response):
            if not from_engine and self.notifier.response(msg, flow):
                return  # a phone's answer to our NOTIFY
            if not from_engine and self.keepalive.answered(msg):
                return  # a phone's answer to our keep-alive OPTIONS
            # Relayed only when it answers our Via; anything else counts towards the flood limit.
            if not self.proxy.response(msg, flow) and not from_engine:
                self._admit(flow, now, Proof.NONE)
            return
        try:
            if from_engine:
                self._from_engine(msg, now)
            elif is_scanner(msg.headers.get("user-agent")):
                self._admit(flow, now, Proof.NONE)
                self.counters["dropped"] += 1
            else:
                self._from_phone(msg, flow, now)
        except SipError as e:
            if e.message is None:
                e.message = msg
            self._refuse(e, flow)

    def _admit(self, flow: Flow, now: float, proof: Proof) -> bool:
        """Ask the guard whether to act on a message from outside; store and announce a ban it causes."""
        act, ban = self.guard.admit(flow.host, now, proof, self.table.phones_at(flow.host))
        if ban:
            self._ban(flow.host, ban)
        if not act:
            self.counters["dropped"] += 1
        return act

    def _refuse(self, err: SipError, flow: Flow) -> None:
        msg = err.message
        self.counters["refused"] += 1
        if not isinstance(msg, Request) or msg.method == "ACK" or not msg.headers.get("via"):
            log.debug("dropped a message from %s: %s", flow, err)
            self.counters["dropped"] += 1
            return
        log.info("refused %s from %s: %d %s", msg.method, flow, err.status_hint, err.reason)
        reason = err.reason if err.status_hint == 400 else None
        try:
            resp = response_to(msg, err.status_hint, reason, headers=err.headers, to_tag=self._tag(msg))
            self.send(flow, resp.to_bytes())
        except Exception:
            log.debug("could not answer a broken message from %s", flow)

    def _tag(self, req: Request) -> str:
        """A To tag for our own answers; the same for retransmissions, so their ACK can be recognised."""
        from_tag = ""
        raw = req.headers.get("from") or ""
        i = raw.lower().find(";tag=")
        if i >= 0:
            from_tag = raw[i + 5 :].split(";")[0].strip()
        return hashlib.blake2s(f"{req.call_id}|{from_tag}".encode(), key=self.secret[:32], digest_size=6).hexdigest()

    def _reply(self, req: Request, flow: Flow, status: int, headers=(), reason: str | None = None) -> None:
        self.send(flow, response_to(req, status, reason, headers=tuple(headers), to_tag=self._tag(req)).to_bytes())

    # -- requests from phones -----------------------------------------------

    def _from_phone(self, req: Request, flow: Flow, now: float) -> None:
        shown = self._shown(req, flow, now)
        act = self._admit(flow, now, shown.proof)
        if shown.failed is not None:
            self._auth_failed(req, flow, now, shown.failed, answer=act)
        elif act:
            getattr(self, _PHONE_HANDLERS.get(req.method, "_phone_request"))(req, flow, now, shown)

    def _shown(self, req: Request, flow: Flow, now: float) -> Shown:
        """What a phone's request proves: a dialog or INVITE we relayed for it, credentials, or nothing."""
        extension = self._dialog_of(req, flow)
        if extension is not None:
            return Shown(Proof.DIALOG, extension)
        if req.method in ("ACK", "CANCEL") or not self.guard.passes(flow.host, now, Proof.CREDENTIALS):
            # ACK and CANCEL cannot be challenged; a silenced address gets no password checks at all.
            return NOTHING
        return self._credentials_shown(req, flow, now)

    def _dialog_of(self, req: Request, flow: Flow) -> str | None:
        """The extension whose record-routed dialog, or relayed INVITE, this request belongs to."""
        method = req.method
        if method == "REGISTER" or (method == "ACK" and req.to.tag == self._tag(req)):
            return None  # a registration always authenticates; the ACK of our own 4xx belongs to nothing relayed
        if method == "SUBSCRIBE":
            owner = self.notifier.owner(req, flow)
            if owner is not None:
                return owner  # a refresh of a subscription of ours, from the address that made it
        _, token = self.proxy.split_routes(req)
        if token is not None and token.flow.host == flow.host and (method == "ACK" or req.to.tag is not None):
            return token.extension
        if method in ("ACK", "CANCEL"):
            invite = self.proxy.remembered_invite(req, flow)
            return invite.extension if invite is not None else None
        return None

    def _phone_request(self, req: Request, flow: Flow, now: float, shown: Shown) -> None:
        if req.method == "OPTIONS" and self._for_us(req):
            self._check_require(req, "require")
            self._reply(req, flow, 200, [("Allow", ALLOW), ("Accept", "application/sdp"), ("Supported", "")])
            return
        self._check_require(req, "proxy-require")
        if shown.proof is Proof.DIALOG:
            # In a dialog we record-routed for this phone: no new challenge.
            self.proxy.to_engine(req, flow, shown.extension, record_route=False)
        elif shown.proof is Proof.CREDENTIALS:
            dialog = req.method in DIALOG_CREATING and req.to.tag is None
            self.proxy.to_engine(req, flow, shown.extension, record_route=dialog)
        else:
            self._challenge(req, flow, now, proxy=True, stale=shown.stale)

    def _ack_from_phone(self, req: Request, flow: Flow, now: float, shown: Shown) -> None:
        if shown.extension is not None:
            self.proxy.to_engine(req, flow, shown.extension, record_route=False)
        # Otherwise the ACK of our own 407/403/4xx, or of nothing we relayed: absorbed here.

    def _cancel_from_phone(self, req: Request, flow: Flow, now: float, shown: Shown) -> None:
        if shown.extension is None:
            self._reply(req, flow, 481)
        else:
            self.proxy.to_engine(req, flow, shown.extension, record_route=False)

    def _for_us(self, req: Request) -> bool:
        try:
            uri = req.request_uri
        except SipError:
            return False
        return isinstance(uri, SipURI) and uri.user is None

    def _check_require(self, req: Request, header: str) -> None:
        # We support no extensions that a peer could require of us (RFC 3261 8.2.2.3).
        required = req.headers.values(header)
        if required and req.method not in ("ACK", "CANCEL"):
            raise SipError(420, "Bad Extension", req, headers=(("Unsupported", ", ".join(required)),))

    # -- authentication -----------------------------------------------------

    def _challenge(self, req: Request, flow: Flow, now: float, proxy: bool, stale: bool = False) -> None:
        nonce = self.nonces.issue(now, flow.host)
        name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        headers = [(name, challenge(self.realm, nonce, alg, stale=stale)) for alg in self.algorithms]
        self._reply(req, flow, 407 if proxy else 401, headers)

    def _credentials_shown(self, req: Request, flow: Flow, now: float) -> Shown:
        """Check the request's digest credentials (Authorization for REGISTER, else Proxy-Authorization)."""
        header = "authorization" if req.method in _OWN_REQUESTS else "proxy-authorization"
        best = self._usable_credentials(req.headers.get_all(header))
        if best is None:
            return NOTHING
        state = self.nonces.check(best.nonce, now, flow.host)
        if state != "ok":
            return Shown(stale=state == "stale")
        stored = self.store.ha1_of(best.username, best.algorithm)
        ha1 = stored or _DUMMY[best.algorithm]
        if verify(best, req.method, req.uri, ha1) and stored is not None:
            return Shown(Proof.CREDENTIALS, best.username)
        return Shown(failed=best.username)

    def _usable_credentials(self, values: list[str]) -> Credentials | None:
        """The Digest credentials for our realm and algorithms, SHA-256 preferred; None if there are none.

        Another scheme (RFC 4475 3.3.7), realm or algorithm, and broken Digest
        parameters, are passed over: the answer is then a fresh challenge.
        """
        best = None
        for value in values:
            try:
                cred = parse_credentials(value)
            except SipError:
                continue
            if cred is None or cred.realm != self.realm or cred.algorithm not in self.algorithms:
                continue
            if best is None or (cred.algorithm == "SHA-256" and best.algorithm != "SHA-256"):
                best = cred
        return best

    def _auth_failed(self, req: Request, flow: Flow, now: float, username: str, *, answer: bool) -> None:
        log.info("authentication failed for %r from %s", username, flow)
        self._emit(ev.AuthFailed(flow.host, username))
        ban = self.guard.auth_failed(flow.host, now)
        if answer:
            self._reply(req, flow, 403)
        if ban:
            self._ban(flow.host, ban)

    # -- registrar ----------------------------------------------------------

    def _register(self, req: Request, flow: Flow, now: float, shown: Shown) -> None:
        self._check_require(req, "require")
        to_uri = req.to.uri
        if not isinstance(to_uri, SipURI) or not to_uri.user:
            raise SipError(400, "To must name an extension", req)
        if shown.proof is not Proof.CREDENTIALS:
            self._challenge(req, flow, now, proxy=False, stale=shown.stale)
            return
        extension = shown.extension
        if to_uri.user_unescaped != extension:
            self._reply(req, flow, 403, reason="Not your extension")
            return
        if flow.transport != "tls" and self._secure(extension):
            # secure: true in the configuration: its calls carry SRTP, which needs keys sent over TLS.
            port = f" (port {self.tls_port})" if self.tls_port else ""
            self._reply(req, flow, 403, reason=f"Extension {extension} must register over TLS{port}")
            return
        result = self.registrar.register(req, extension, flow, now, self._tag(req))
        for b in result.added:
            self._emit(ev.BindingAdded(b.extension, b.contact, str(b.flow), b.user_agent, b.expires_at))
        for b, reason in result.removed:
            self._emit(ev.BindingRemoved(b.extension, b.contact, reason))
        self.send(flow, result.response.to_bytes())
        if result.added or result.removed:
            self.flush_soon()

    def _secure(self, extension: str) -> bool:
        row = self.store.extension(extension)
        return bool(row and row.get("secure"))

    # -- busy lamps -----------------------------------------------------------

    def _subscribe(self, req: Request, flow: Flow, now: float, shown: Shown) -> None:
        """SUBSCRIBE: the edge is the notifier of the dialog and presence packages (notifier.py); a dialog of the engine's is relayed."""
        if shown.proof is Proof.DIALOG and self.notifier.owner(req, flow) is None:
            self._phone_request(req, flow, now, shown)  # e.g. a refresh of a REFER's subscription
            return
        self._check_require(req, "require")
        if shown.proof is Proof.NONE:
            self._challenge(req, flow, now, proxy=False, stale=shown.stale)
            return
        answer = self.notifier.subscribe(req, flow, now, shown.extension, self._tag(req))
        self._reply(req, flow, answer.status, answer.headers, answer.reason)
        self.notifier.answered(answer)

    # -- requests from the engine -------------------------------------------

    def _from_engine(self, req: Request, now: float) -> None:
        if req.method == "OPTIONS" and self._for_us(req):
            self._reply(req, self.engine, 200, [("Allow", ALLOW)])
            return
        if req.method == "REGISTER":
            self._reply(req, self.engine, 403, reason="The edge is no registrar for the engine")
            return
        target, problem = self.proxy.from_engine(req, now)
        if target is None and req.method != "ACK":
            log.info("engine %s to %s not relayed: %s", req.method, req.uri, problem)
            self._reply(req, self.engine, 480, reason="Temporarily Unavailable")


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, edge: Edge):
        self.edge = edge

    def datagram_received(self, data: bytes, addr) -> None:
        self.edge.handle(data, Flow("udp", addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a phone that went away: nothing to do.
        log.debug("udp error: %s", exc)


class TcpConnection(asyncio.Protocol):
    """One phone's TCP or TLS connection; requests for it are written back on it (RFC 3261 18.2.2).

    `kind` is "tcp" or "tls" (asyncio's TLS transport hands us plain bytes:
    the framing, the limits and the CRLF pongs are the same).

    Loop timers bound what a peer can hold: a message must be whole within
    `tcp_message_timeout` of its first byte, and a connection that carries no
    binding is closed after `tcp_idle_timeout` of silence.  One address may
    hold `tcp_per_source` connections; the next is closed at once.
    """

    def __init__(self, edge: Edge, kind: str = "tcp"):
        self.edge = edge
        self.kind = kind
        self.flow: Flow | None = None
        self.framer = StreamFramer(edge.max_message)
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.heard_at = 0.0  # loop time of the last bytes received
        self._partial: asyncio.TimerHandle | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._counted = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1])
        self.flow = Flow(self.kind, *self.peer)
        edge, host = self.edge, self.peer[0]
        # A flood ban may be a spoofer's doing, so it refuses no connection (TCP
        # cannot be spoofed); an address silenced for failed passwords opens nothing new.
        silenced = not edge.guard.passes(host, edge.clock(), Proof.CREDENTIALS)
        if silenced or edge.per_source.get(host, 0) >= edge.policy.tcp_per_source:
            edge.counters["dropped"] += 1
            transport.abort()
            return
        edge.per_source[host] = edge.per_source.get(host, 0) + 1
        self._counted = True
        edge.connections[self.flow] = self
        self.loop = asyncio.get_running_loop()
        self.heard_at = self.loop.time()
        self._idle = self.loop.call_later(edge.policy.tcp_idle_timeout, self._check_idle)

    def data_received(self, data: bytes) -> None:
        self.heard_at = self.loop.time()
        flow = self.flow
        try:
            messages, pings = self.framer.feed(data)
        except SipError as e:
            # The stream cannot be resynchronised: answer what we can and close.
            e.message = parse_head(bytes(self.framer.buffer[: self.edge.max_message]))
            if self.edge._admit(flow, self.edge.clock(), Proof.NONE):
                self.edge._refuse(e, flow)
            log.info("closing tcp from %s: %s", flow, e)
            self.transport.close()
            return
        for _ in range(pings):
            self.transport.write(b"\r\n")
        for m in messages:
            self.edge.handle(m, flow, True)
        self._watch_partial(restart=bool(messages))

    def _watch_partial(self, *, restart: bool) -> None:
        """Time the message in the buffer from its first byte; a completed message starts the clock again."""
        pending = bool(self.framer.buffer)
        if self._partial is not None and (restart or not pending):
            self._partial.cancel()
            self._partial = None
        if pending and self._partial is None and not self.transport.is_closing():
            self._partial = self.loop.call_later(self.edge.policy.tcp_message_timeout, self._incomplete)

    def _incomplete(self) -> None:
        self._partial = None
        log.info("closing %s from %s:%d: a message incomplete after %g s", self.kind, *self.peer,
                 self.edge.policy.tcp_message_timeout)
        self.transport.close()

    def _check_idle(self) -> None:
        self._idle = None
        limit = self.edge.policy.tcp_idle_timeout
        quiet = self.loop.time() - self.heard_at
        if quiet < limit:
            self._idle = self.loop.call_later(limit - quiet, self._check_idle)
        elif self.edge.table.carries(self.flow):
            # Requests for a registered phone go over this connection: it stays while the binding does.
            self._idle = self.loop.call_later(limit, self._check_idle)
        else:
            log.info("closing %s from %s:%d: silent for %g s and no phone registered over it", self.kind, *self.peer, quiet)
            self.transport.close()

    def connection_lost(self, exc) -> None:
        for timer in (self._partial, self._idle):
            if timer is not None:
                timer.cancel()
        self._partial = self._idle = None
        edge = self.edge
        if self._counted:
            host = self.peer[0]
            left = edge.per_source.get(host, 1) - 1
            if left > 0:
                edge.per_source[host] = left
            else:
                edge.per_source.pop(host, None)
        if self.flow and edge.connections.get(self.flow) is self:
            del edge.connections[self.flow]
