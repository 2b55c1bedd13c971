"""Night mode in the appliance: the switches' states kept in the store, changed by commands and the schedule.

`NightService` is the one writer of night states.  Inside `pbx run` it
registers the control commands below and keeps a timer that settles every
switch at its next boundary (a temporary override ends, an automatic switch
follows its schedule); `pbx night` uses the same class directly on the store
when the appliance is not running.  Every change is saved with an event in
one transaction (`Store.save_night`) and then published to control
subscribers:

    {"kind": "NightModeChanged", "at": ISO, "switch": "kyiv", "name": "Kyiv shop",
     "mode": "night", "how": "temporary", "since": ISO, "until": ISO or null,
     "by": "button", "was": {"mode": "day", "how": "auto"}}

Control commands (arguments as JSON; `switch` absent means every switch):

    night.status {switch?}                          -> {"switches": {id: view}}
    night.set    {mode: on|off|auto|toggle, permanent?, switch?, by}
                                                    -> {"switches": {...}, "changed": [ids]}
    night.press  {long: bool, switch?, by?}         -> the same; the button's short and long press
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timezone
from typing import Any, Callable

from appliance.night import state as st
from appliance.night.state import NightState, Switch

log = logging.getLogger("appliance.night")

EVENT = "NightModeChanged"
# The timer looks at least this often, so a wall clock that jumps (a Pi has
# no real-time clock and sets its time from the network after boot) is
# caught up within this many seconds.
MAX_WAIT = 30.0
MODE_WORDS = {"on": "night", "night": "night", "off": "day", "day": "day"}
MAX_BY = 80


class NightError(ValueError):
    """A night command refused: no such switch, a mode that does not exist."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class NightService:
    def __init__(self, store: Any, emit: Callable[[dict], None] | None = None,
                 clock: Callable[[], datetime] = utc_now):
        self.store = store
        self.emit = emit or (lambda event: None)
        self.clock = clock
        self._routing_key: str | None = None
        self._switches: dict[str, Switch] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _now(self) -> datetime:
        # Whole seconds: what people read back, and what the store keeps.
        return self.clock().replace(microsecond=0)

    # -- the switches --------------------------------------------------------

    def switches(self) -> dict[str, Switch]:
        """The saved routing's night switches (parsed again only when the routing changed)."""
        doc = self.store.routing_document()
        tz = self.store.timezone
        key = json.dumps([doc, tz], sort_keys=True)
        if key != self._routing_key:
            from appliance.routing.config import parse

            switches: dict[str, Switch] = {}
            if doc.get("night"):
                from appliance.errors import ConfigError

                extensions = {e["number"]: e.get("name") or "" for e in self.store.extensions()}
                try:
                    switches = st.switches_of(parse(doc, extensions, timezone=tz))
                except ConfigError as e:
                    raise NightError(f"the saved routing is not valid: {e.at('routing')}") from None
            self._switches, self._routing_key = switches, key
        return self._switches

    def _chosen(self, switch: str | None) -> list[Switch]:
        switches = self.switches()
        if not switches:
            raise NightError("the routing has no night switch: add one under routing.night "
                             "(docs/routing.md, night)")
        if switch is None or switch == "":
            return list(switches.values())
        if switch not in switches:
            raise NightError(f"no night switch {switch!r} (switches: {', '.join(switches)})")
        return [switches[switch]]

    def _saved(self) -> dict[str, NightState]:
        return {sid: NightState.from_dict(row) for sid, row in self.store.night_states().items()}

    def _history(self, now: datetime) -> dict[str, list[NightState | None]]:
        """Per switch, its states in order: as saved (None: never saved), then as of now."""
        saved = self._saved()
        return {sid: [saved.get(sid), st.settle(saved.get(sid), sw, now)] for sid, sw in self.switches().items()}

    # -- reading -------------------------------------------------------------

    def status(self, switch: str | None = None) -> dict:
        """Each switch's state as of now (what the schedule did is saved by the timer, not here)."""
        now = self._now()
        chosen = self._chosen(switch)
        history = self._history(now)
        return {"switches": {sw.id: self._view(history[sw.id][-1], sw, now) for sw in chosen}}

    def status_or_none(self) -> dict | None:
        """For `pbx status`: the switches' states, or None when the routing has none."""
        try:
            return self.status()["switches"]
        except NightError:
            return None

    def _view(self, state: NightState, sw: Switch, now: datetime) -> dict:
        return {**state.as_dict(), "name": sw.name, "schedule": sw.schedule,
                "text": st.describe(state, sw, self.store.timezone, now)}

    # -- changing ------------------------------------------------------------

    def set(self, mode: str, *, permanent: bool = False, switch: str | None = None, by: str) -> dict:
        """Night (`on`), day (`off`), back to the schedule (`auto`) or the other mode (`toggle`)."""
        by = _who(by)
        chosen = self._chosen(switch)
        if mode == "auto":
            return self._change(chosen, lambda cur, sw, now, ref: st.to_auto(cur, sw, by=by, now=now))
        if mode == "toggle":
            return self._change(chosen, lambda cur, sw, now, ref: st.set_mode(
                cur, sw, "day" if ref.mode == "night" else "night", permanent=permanent, by=by, now=now))
        if mode not in MODE_WORDS:
            raise NightError(f"night mode is on, off, auto or toggle, not {mode!r}")
        target = MODE_WORDS[mode]
        return self._change(chosen, lambda cur, sw, now, ref: st.set_mode(
            cur, sw, target, permanent=permanent, by=by, now=now))

    def press(self, long: bool, *, switch: str | None = None, by: str = "button") -> dict:
        """The button: a short press toggles until the next boundary; a long press keeps
        the mode shown for good, or returns a permanent override to automatic.  With
        several switches the first one decides, and all follow."""
        if not long:
            return self.set("toggle", switch=switch, by=by)
        by = _who(by)

        def held(cur: NightState, sw: Switch, now: datetime, ref: NightState) -> NightState:
            if ref.how == "permanent":
                return st.to_auto(cur, sw, by=by, now=now)
            return st.set_mode(cur, sw, cur.mode, permanent=True, by=by, now=now)

        return self._change(self._chosen(switch), held)

    def tick(self) -> None:
        """Save what the schedule changed (the timer calls this at each boundary)."""
        now = self._now()
        self._save(now, self._history(now))

    def _change(self, chosen: list[Switch], fn: Callable[..., NightState]) -> dict:
        """fn(current, switch, now, first chosen switch's current) -> new state, for each chosen switch."""
        now = self._now()
        history = self._history(now)      # what the schedule did is saved (and an event) first
        ref = history[chosen[0].id][-1]
        changed = []
        for sw in chosen:
            current = history[sw.id][-1]
            new = fn(current, sw, now, ref)
            if new != current:
                history[sw.id].append(new)
                if new.differs(current):
                    changed.append(sw.id)
        self._save(now, history)
        return {"switches": {sw.id: self._view(history[sw.id][-1], sw, now) for sw in chosen}, "changed": changed}

    def _save(self, now: datetime, history: dict[str, list[NightState | None]]) -> None:
        """Save each switch's last state, with an event for every step that changed mode or way of setting."""
        switches = self.switches()
        rows, events = [], []
        for sid, steps in history.items():
            last = steps[-1]
            if last == steps[0]:
                continue
            rows.append(last)
            before = steps[0]
            for new in steps[1:]:
                # A switch's first row is where it starts, not a change.
                if before is not None and new.differs(before):
                    events.append(self._event(new, before, switches.get(sid), now))
                before = new
        if rows:
            self.store.save_night([r.as_dict() for r in rows], events)
        for event in events:
            self.emit(event)
        self._reschedule(now)

    @staticmethod
    def _event(new: NightState, old: NightState | None, sw: Switch | None, now: datetime) -> dict:
        return {"kind": EVENT, "at": now.astimezone(timezone.utc).isoformat(timespec="milliseconds"), **new.as_dict(),
                "name": sw.name if sw else new.switch,
                "was": {"mode": old.mode, "how": old.how} if old is not None else None}

    # -- inside the appliance ------------------------------------------------

    def register(self, control: Any) -> None:
        """The control commands (see the module's docstring)."""
        from appliance.control import ControlError

        def guarded(fn: Callable[[dict], dict]) -> Callable[[dict], dict]:
            def handler(args: dict) -> dict:
                try:
                    return fn(args)
                except NightError as e:
                    raise ControlError(str(e)) from None
            return handler

        control.command("night.status", guarded(lambda a: self.status(_switch(a))))
        control.command("night.set", guarded(lambda a: self.set(
            str(a.get("mode", "")), permanent=bool(a.get("permanent")), switch=_switch(a),
            by=a.get("by") or "control client")))
        control.command("night.press", guarded(lambda a: self.press(
            bool(a.get("long")), switch=_switch(a), by=a.get("by") or "button")))

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Catch up with what the schedule did while the appliance was off, then follow it."""
        self._loop = loop
        self._on_timer()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._loop = None, None

    def _reschedule(self, now: datetime) -> None:
        if self._loop is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        boundaries = [s.until for s in self._saved().values() if s.until is not None and s.switch in self.switches()]
        wait = MAX_WAIT
        if boundaries:
            wait = min(wait, max(0.05, (min(boundaries) - now).total_seconds()))
        self._timer = self._loop.call_later(wait, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        try:
            self.tick()
        except Exception:  # noqa: BLE001 - the timer must outlive one bad read
            log.exception("night mode: settling the switches failed")
            if self._loop is not None:
                self._timer = self._loop.call_later(MAX_WAIT, self._on_timer)


def _switch(args: dict) -> str | None:
    value = args.get("switch")
    return None if value is None else str(value)


def _who(by: object) -> str:
    text = " ".join(str(by or "").split())
    if not text:
        raise NightError("say who or what sets the night switch (by)")
    return text[:MAX_BY]
