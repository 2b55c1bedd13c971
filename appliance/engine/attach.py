"""Wiring the B2BUA into `pbx run`: one call from the appliance's start-up.

    from appliance.engine.attach import attach
    self.b2bua = await self.loop.run_in_executor(None, attach, self)

It opens the trunk transport (`--trunk-port`, default 5070, on the `--bind`
address), starts the B2BUA on the engine thread with the edge as the proxy
towards phones, and registers the control commands `calls` (recent call
records), `engine.reload` (read extensions, trunks and routing again),
`trunks.status` (whether each trunk works and, in words, why not) and
`calls.originate` (click-to-call: an extension's desk phone, then a number; callback.py),
`monitor.supervise` (a supervisor's phone listens to, whispers in or barges into a
call; supervise.py), `agents.status` and `agents.set` (agents' statuses; agents.py),
`monitor.move`, `monitor.place` and `monitor.vip` (a queued caller moved; moves.py).
Engine events reach control subscribers through the appliance's own
hand-over (appliance.handover: a batch per wake-up of the loop).
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Callable

from . import moves
from .b2bua import B2BUA
from .callback import originate_command
from .nightcode import NightCode
from .supervise import SuperviseRefused

DEFAULT_TRUNK_PORT = 5070


def attach(app: Any) -> B2BUA:
    opts = app.options
    engine = app.engine
    trunk_port = int(opts.extra.get("trunk_port") or DEFAULT_TRUNK_PORT)
    b2bua = B2BUA(engine, opts.data_dir, edge=("127.0.0.1", opts.sip_port), trunk_port=trunk_port,
                  emit=app.handover.put, link_key=app.link_key)

    def setup() -> None:
        if "trunk" not in engine.transports:
            engine.add_udp_transport("trunk", opts.bind, trunk_port, opts.extra.get("trunk_public", ""))
        b2bua.start()

    if getattr(app, "notify", None) is not None:
        b2bua.outbox_written = app.notify.kick
    engine.call(setup, timeout=15)
    if getattr(app, "night", None) is not None:
        night = NightCode(b2bua, lambda args: _on_loop(app, lambda: _set_night(app.night, args)))
        engine.call(night.register)

    def calls(args: dict) -> dict:
        return {"calls": app.store.recent_calls(int(args.get("limit", 50)))}

    def reload(args: dict) -> dict:
        engine.call(b2bua.reload, timeout=10)
        return {"extensions": len(b2bua.extensions), "trunks": len(b2bua.trunks.config)}

    def trunks_status(args: dict) -> dict:
        return {"trunks": engine.call(b2bua.trunks.status, timeout=5)}

    app.control.command("calls", calls)
    app.control.command("engine.reload", reload)
    app.control.command("trunks.status", trunks_status)
    app.control.command("calls.originate", originate_command(engine, b2bua))
    app.control.command("monitor.supervise", supervise_command(engine, b2bua))
    app.control.command("agents.status", lambda args: engine.call(b2bua.agents.views, timeout=5))
    app.control.command("agents.set", agents_set_command(engine, b2bua))
    for name, handler in moves.commands(engine, b2bua).items():  # monitor.move, monitor.place, monitor.vip
        app.control.command(name, handler)
    return b2bua


def supervise_command(engine: Any, b2bua: B2BUA) -> Callable[[dict], dict]:
    """`monitor.supervise {call_id, ext, mode}` -> {call_id, ext, mode}; a refusal is its error."""
    from appliance.control import ControlError

    def handler(args: dict) -> dict:
        call_id, ext, mode = (str(args.get(k) or "") for k in ("call_id", "ext", "mode"))
        if not call_id or not ext:
            raise ControlError("say which call and which extension listens: {call_id, ext, mode}")
        try:
            return engine.call(b2bua.supervisors.start, call_id, ext, mode or "listen", timeout=5)
        except SuperviseRefused as e:
            raise ControlError(str(e)) from None
    return handler


def agents_set_command(engine: Any, b2bua: B2BUA) -> Callable[[dict], dict]:
    """`agents.set {ext, status, by?}` -> the extension's status view; an unknown one is the error."""
    from appliance.control import ControlError

    def handler(args: dict) -> dict:
        ext, status = str(args.get("ext") or ""), str(args.get("status") or "")
        try:
            return engine.call(b2bua.agents.set, ext, status, str(args.get("by") or "panel"), timeout=5)
        except ValueError as e:
            raise ControlError(str(e)) from None
    return handler


def _on_loop(app: Any, fn: Callable[[], Any]) -> Future:
    """Run fn on the appliance's loop thread (where the night service lives); its result as a Future."""
    fut: Future = Future()

    def run() -> None:
        try:
            fut.set_result(fn())
        except Exception as e:  # noqa: BLE001 - handed to the engine, which tells the caller
            fut.set_exception(e)
    app.handover.flush(force=True)  # the events the engine emitted before this reach the loop before it runs
    app.loop.call_soon_threadsafe(run)
    return fut


def _set_night(night: Any, args: dict) -> dict:
    """*28N names the N-th night switch of the routing; *28 all of them."""
    switch = None
    if args.get("switch_index"):
        names = list(night.switches())
        if not 1 <= args["switch_index"] <= len(names):
            raise ValueError(f"no night switch number {args['switch_index']}")
        switch = names[args["switch_index"] - 1]
    return night.set(args["mode"], switch=switch, by=args["by"])
