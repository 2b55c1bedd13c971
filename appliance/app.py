"""`pbx run`: the whole appliance in one process.

The asyncio loop on the main thread runs the SIP edge and the control
socket; the engine thread owns pjsua2; the panel is served from a thread of
its own and talks to the rest only through the control socket, exactly as it
does when it runs as a separate service.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import resource
import secrets
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from appliance import __version__
from appliance.control import ControlServer, socket_path
from appliance.defaults import seed_defaults
from appliance.engine.core import EngineConfig, EngineThread
from appliance.handover import Handover
from appliance.sdnotify import notify
from appliance.store import Store

log = logging.getLogger("appliance")


@dataclass
class RunOptions:
    data_dir: Path
    bind: str = "0.0.0.0"
    sip_port: int = 5060
    web_port: int = 8080
    engine_port: int = 5080
    web: bool = True
    web_bind: str | None = None        # the panel's address; default: bind
    https: bool = False                # serve the panel over HTTPS
    web_cert: Path | None = None       # the owner's certificate and key; default: one made on first start
    web_key: Path | None = None
    tls_port: int = 5061               # SIP over TLS for phones; 0: off
    sip_cert: Path | None = None       # the owner's certificate and key for SIP over TLS; default: made on first start
    sip_key: Path | None = None
    extra: dict = field(default_factory=dict)


def raise_fd_limit() -> None:
    # Every call leg holds two media sockets; 1024 descriptors is not enough for
    # a few hundred legs.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def host_address(bind: str) -> str:
    """An address phones on the LAN can use, for the banner."""
    from appliance.netaddr import primary_address

    return primary_address() if bind in ("0.0.0.0", "::", "") else bind


class Appliance:
    def __init__(self, options: RunOptions):
        self.options = options
        self.started = time.time()
        self.store: Store | None = None
        self.engine: EngineThread | None = None
        self.edge: Any = None
        self.control: ControlServer | None = None
        self.web_server: Any = None
        self.web_thread: threading.Thread | None = None
        self.night: Any = None   # appliance.night.service.NightService
        self.hw: Any = None      # appliance.hw.Hardware: LEDs and the night button, a control client
        self.missed: Any = None  # appliance.missed.service.MissedService: missed-call cases
        self.monitor: Any = None  # appliance.monitor.LiveCalls: the calls in progress, from the events
        self.notify: Any = None  # appliance.notify.deliver.Deliverer: the outbox's worker thread
        self.wallboard: Any = None  # appliance.wallboard.WallboardWatch: the wallboard's thresholds, for the LEDs
        self.lines: list = []    # appliance.analog: one user agent process per analog line (docs/analog.md)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping = asyncio.Event()
        # The edge's proof to the engine that a request came through it (X-PBX-Link);
        # new at every start, kept in memory only.
        self.link_key = secrets.token_hex(16)

    # -- bring up -------------------------------------------------------------

    async def start(self) -> dict[str, str] | None:
        opts = self.options
        self.loop = asyncio.get_running_loop()
        raise_fd_limit()
        opts.data_dir.mkdir(parents=True, exist_ok=True)
        # openssl makes the first start's certificate (about 0.5 s) while the rest comes up.
        tls = self.loop.run_in_executor(None, sip_tls, opts) if opts.tls_port else None
        self.store = Store(opts.data_dir)
        created = seed_defaults(self.store)
        panel_password = self._seed_panel_password()

        self.control = ControlServer(socket_path(opts.data_dir))
        self.control.command("status", self.status)
        from appliance.night.service import NightService

        self.night = NightService(self.store, self._emit)
        self.night.register(self.control)
        from appliance.missed.service import MissedService
        from appliance.notify.deliver import Deliverer

        self.notify = Deliverer(opts.data_dir)
        self.notify.start()
        self.missed = MissedService(self.store, self._emit, kick=self.notify.kick)
        self.missed.register(self.control)
        from appliance.monitor import ContactNames, LiveCalls

        self.monitor = LiveCalls(self.control.publish, ContactNames(self.store))
        self.monitor.register(self.control)
        await self.control.start()
        self.night.start(self.loop)
        self.missed.start(self.loop)
        from appliance.hw import Hardware

        self.hw = Hardware.from_setting(self.store.get_setting("hw"), socket_path(opts.data_dir))
        await self.loop.run_in_executor(None, self.hw.start)
        from appliance.wallboard import WallboardWatch

        # After the LEDs subscribed, so they see its first alert.
        self.wallboard = WallboardWatch(self.store, self.control.publish, lambda: self.monitor.snapshot()["calls"],
                                        self.missed.open_count)
        self.wallboard.start(self.loop)

        self.handover = Handover(self.loop, self._emit)
        self.engine = EngineThread(
            EngineConfig(sip_host="127.0.0.1", sip_port=opts.engine_port),
            on_event=self.handover.put,
            on_heartbeat=lambda: notify("WATCHDOG=1"),
        )
        # The engine's events reach the loop at the end of a quiet turn of the engine, or after 50 ms
        # (appliance.handover): the loop's work keeps out of the gap between two messages of a call.
        self.handover.defer_for(self.engine.thread, self.engine.idle)
        self.engine.on_turn_end(self.handover.flush)
        await self.loop.run_in_executor(None, self.engine.start)
        from appliance.engine.attach import attach  # the B2BUA: trunks, routing, call records
        self.b2bua = await self.loop.run_in_executor(None, attach, self)
        from appliance.engine.take import take

        self.monitor.taker = lambda call_id, ext: self.engine.submit(take, self.b2bua, call_id, ext)
        self._connect_callbacks()
        from appliance.analog.processes import start_lines
        from appliance.engine.attach import DEFAULT_TRUNK_PORT

        # Analog phones register to the edge as their extensions (on loopback unless it listens on one address).
        edge_host = "127.0.0.1" if opts.bind in ("0.0.0.0", "::", "") else opts.bind
        self.lines = start_lines(opts.data_dir, self.store, int(opts.extra.get("trunk_port") or DEFAULT_TRUNK_PORT),
                                 (edge_host, opts.sip_port))

        from appliance.edge import Edge

        tls_context, fingerprint = await tls if tls is not None else (None, None)
        self.edge = Edge(self.store, opts.bind, opts.sip_port, engine_addr=("127.0.0.1", opts.engine_port),
                         on_event=self._emit, link_key=self.link_key, night_modes=self._night_modes,
                         tls_port=opts.tls_port or None, tls_context=tls_context)
        await self.edge.start()
        # What the panel shows phones' owners: the port, and the fingerprint to compare on the phone.
        self.store.set_setting("sip_tls", {"port": self.edge.tls_port, "fingerprint": fingerprint}
                               if self.edge.tls_port else None)

        if opts.web:
            self._start_web()
        self._emit({"kind": "ApplianceStarted", "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds")})
        shown = dict(created or {})
        if panel_password:
            shown["panel"] = panel_password
        return shown or None

    def _connect_callbacks(self) -> None:
        """Missed cases' automatic callbacks: presence and originations on the engine thread, live calls, night."""
        from appliance.engine.callback import agents_now
        from appliance.missed.dialer import night_now, on_call_numbers

        b2bua = self.b2bua
        self.missed.auto.connect(
            agents=lambda: self.engine.submit(agents_now, b2bua),
            originate=lambda ext, number, text: self.engine.submit(b2bua.callbacks.originate, ext, number, text),
            live=lambda: on_call_numbers(self.monitor), night=lambda: night_now(self.night))

    def _seed_panel_password(self) -> str | None:
        from werkzeug.security import generate_password_hash

        from appliance.store import generate_password

        if self.store.get_setting("panel_password_hash"):
            return None
        # It opens the panel once: the owner chooses their own before any page shows.
        password = generate_password()
        with self.store.transaction():
            self.store.set_setting("panel_password_hash", generate_password_hash(password))
            self.store.set_setting("panel_password_temporary", True)
        return password

    def _start_web(self) -> None:
        from werkzeug.serving import make_server

        from web import create_app

        app = create_app({"DATA_DIR": str(self.options.data_dir), "SESSION_COOKIE_SECURE": self.options.https})
        self.web_server = make_server(panel_bind(self.options), self.options.web_port, app, threaded=True,
                                      ssl_context=panel_tls(self.options))
        self.web_thread = threading.Thread(target=self.web_server.serve_forever, name="web", daemon=True)
        self.web_thread.start()

    # -- running ---------------------------------------------------------------

    def _emit(self, event: Any) -> None:
        """Loop thread: an event of any part (a dict from the engine, a dataclass from the edge) to subscribers."""
        if isinstance(event, dict):
            data = event
        else:
            data = {"kind": type(event).__name__, **dataclasses.asdict(event)}
        if self.control:
            self.control.publish(data)
        if self.missed:
            self.missed.on_event(data)
        if self.monitor:
            self.monitor.on_event(data)
        if self.wallboard:
            self.wallboard.on_event(data)
        if self.edge:
            self.edge.notifier.on_event(data)  # busy lamps on the desk phones

    def _night_modes(self) -> list[str]:
        """Each night switch's mode in the routing's order, for the night keys' lamps (`*28`, `*28N`)."""
        switches = self.night.status_or_none() if self.night else None
        return [view["mode"] for view in (switches or {}).values()]

    def status(self, args: dict) -> dict:
        bindings = self.store.bindings() if self.store else []
        return {
            "version": __version__,
            "uptime_s": round(time.time() - self.started, 1),
            "engine": {
                "running": bool(self.engine and self.engine.running),
                "sip": f"127.0.0.1:{self.options.engine_port}",
                "live_objects": len(self.engine.registry) if self.engine else 0,
            },
            "edge": {"sip": f"{self.options.bind}:{self.options.sip_port}", "bindings": len(bindings),
                     "tls": self.edge.tls_port if self.edge else None},
            "web": panel_url(self.options) if self.options.web else None,
            "extensions": len(self.store.extensions()) if self.store else 0,
            "timezone": self.store.timezone if self.store else None,
            "missed_open": self.missed.open_count() if self.missed else 0,
            "night": self.night.status_or_none() if self.night else None,
            "leds": self.hw.leds() if self.hw else {},
            "wallboard": self.wallboard.status() if self.wallboard else None,
        }

    # -- shut down -------------------------------------------------------------

    async def stop(self) -> None:
        notify("STOPPING=1")
        steps: list[tuple[str, Any]] = []
        if self.hw is not None:
            steps.append(("lights and button", lambda: self.loop.run_in_executor(None, self.hw.stop)))
        if self.night is not None:
            steps.append(("night service", self.night.stop))
        if self.missed is not None:
            steps.append(("missed calls", self.missed.stop))
        if self.wallboard is not None:
            steps.append(("wallboard", self.wallboard.stop))
        if self.notify is not None:
            steps.append(("outbox", lambda: self.loop.run_in_executor(None, self.notify.stop)))
        if self.web_server is not None:
            steps.append(("panel", lambda: self.loop.run_in_executor(None, self.web_server.shutdown)))
        if self.edge is not None:
            steps.append(("SIP edge", self.edge.stop))
        if self.lines:
            from appliance.analog.processes import stop_lines

            steps.append(("analog lines", lambda: self.loop.run_in_executor(None, stop_lines, self.lines)))
        if self.engine is not None:
            steps.append(("call engine", lambda: self.loop.run_in_executor(None, self.engine.stop, 2.5)))
        if self.control is not None:
            steps.append(("control socket", self.control.stop))
        for name, step in steps:
            t0 = time.monotonic()
            result = step()
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                await result
            took = time.monotonic() - t0
            # A slow part is named in the journal, so a slow stop can be traced to it.
            (log.warning if took > 1.0 else log.debug)("stopping: %s took %.2f s", name, took)
        if self.store is not None:
            self.store.close()


def panel_bind(options: RunOptions) -> str:
    return options.web_bind if options.web_bind is not None else options.bind


def panel_tls(options: RunOptions) -> Any:
    """The panel's TLS context when it is served over HTTPS, else None."""
    if not options.https:
        return None
    from web.tls import context, self_signed

    if options.web_cert and options.web_key:
        return context(options.web_cert, options.web_key)
    return context(*self_signed(options.data_dir, [host_address(panel_bind(options))]))


def sip_tls(options: RunOptions) -> tuple[Any, str]:
    """(server context, SHA-256 fingerprint) of SIP over TLS: the owner's certificate or the one made on first start."""
    from appliance.edge import tls

    cert, key = tls.certificate(options.data_dir, [host_address(options.bind)], options.sip_cert, options.sip_key)
    return tls.server_context(cert, key), tls.fingerprint(cert)


def panel_url(options: RunOptions) -> str:
    return f"{'https' if options.https else 'http'}://{host_address(panel_bind(options))}:{options.web_port}/"


def print_banner(options: RunOptions, created: dict[str, str] | None) -> None:
    addr = host_address(options.bind)
    lines = []
    if options.web:
        where = panel_bind(options)
        reach = ("from the office network" if where in ("0.0.0.0", "::", "")
                 else "from this machine only" if where.startswith("127.") or where == "::1" else f"on {where}")
        lines.append(f"Panel: {panel_url(options)} (reachable {reach})")
    lines.append(f"Phones: register to {addr}:{options.sip_port} (UDP or TCP)"
                 + (f", {addr}:{options.tls_port} (TLS)" if options.tls_port else ""))
    if created:
        panel = created.pop("panel", None)
        if panel:
            lines.append(f"  panel password for the first login: {panel} (you then choose your own)")
        for number, password in created.items():
            lines.append(f"  extension {number}: user {number}, password {password}")
        lines.append("  These passwords are shown once; only their digests are kept.")
        lines.append("  A new one: pbx ext passwd NUMBER")
    for line in lines:
        print(line, flush=True)


async def run(options: RunOptions) -> int:
    app = Appliance(options)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, app.stopping.set)
    try:
        created = await app.start()
    except Exception:
        log.exception("the appliance failed to start")
        await app.stop()
        return 1
    print_banner(options, created)
    log.info("ready: edge on %s:%d, engine on 127.0.0.1:%d", options.bind, options.sip_port, options.engine_port)
    print("ready", flush=True)
    notify("READY=1")
    await app.stopping.wait()
    log.info("stopping")
    await app.stop()
    log.info("stopped")
    return 0
