"""Automatic callbacks of missed-call cases inside `pbx run`: facts in, the rules of `autocall`, the engine out.

`AutoDialer` belongs to the `MissedService` and runs on the appliance's
loop.  Every `TICK_SECONDS` (and soon after a case opens or an attempt
ends) it reads the open cases and their attempts; when one is due and the
office is open it asks the engine thread for each extension's presence
(`agents_now`, appliance/engine/callback.py), reads who is on a call from
the live monitor, and lets `autocall.plan` decide.  A `Dial` becomes an
attempt row (appliance/store/missed.py) and an origination on the engine
thread, exactly as `calls.originate` places one: the agent's phone rings,
they hear a whisper naming the customer and how long ago they called, then
the customer is called and joined.

When the callback call ends, the missed service hands its record here
first (`settle`): the attempt gets its result, and a customer who answered
closes the case once, as `callback` by the agent.  A refused origination
(no trunk, no phone registered, a dial rule) is a failed attempt at once.
Attempts left under way by a stop are settled from their call's record at
the next start, or marked interrupted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Future
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from appliance.missed import autocall
from appliance.missed.autocall import Agent, Attempt, Dial, Waiting
from appliance.missed.cases import aware
from appliance.missed.config import SCHEDULE_PREFIX, autocall_of
from appliance.routing.numbers import normalise

if TYPE_CHECKING:
    from appliance.missed.service import MissedService

log = logging.getLogger("appliance.missed")

TICK_SECONDS = 5.0
ASK_TIMEOUT = 30.0   # an engine that never answered who is free is asked again after this
INTERRUPTED = "the appliance stopped during the attempt"


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat(timespec="milliseconds")


class AutoDialer:
    def __init__(self, service: "MissedService"):
        self.service = service
        self.store = service.store
        self.tables = service.tables
        # Connected by the appliance once the engine runs (`connect`); until then nothing is dialled.
        self.agents: Callable[[], Future] | None = None            # -> {ext: presence dict}, engine thread
        self.originate: Callable[[str, str, str], Future] | None = None   # (ext, number, whisper) -> call id
        self.live: Callable[[], set[str]] = lambda: set()          # numbers on a call with the office now
        self.night: Callable[[], bool] = lambda: False             # a night switch says night
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._asking = 0.0   # when the engine was asked who is free (0: no question out)

    def connect(self, agents: Callable[[], Future], originate: Callable[[str, str, str], Future],
                live: Callable[[], set[str]], night: Callable[[], bool]) -> None:
        self.agents, self.originate, self.live, self.night = agents, originate, live, night

    # -- life ------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop
        self.recover()
        self._turn()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._loop = None

    def _turn(self) -> None:
        try:
            self.round()
        except Exception:  # noqa: BLE001 - the timer must outlive one bad turn
            log.exception("missed: automatic callbacks failed")
        if self._loop is not None:
            self._timer = self._loop.call_later(TICK_SECONDS, self._turn)

    def poke(self) -> None:
        """Something changed (a case opened, an attempt ended): look again soon, not at the next tick."""
        if self._loop is not None:
            self._loop.call_soon(self._safe_round)

    def _safe_round(self) -> None:
        try:
            self.round()
        except Exception:  # noqa: BLE001
            log.exception("missed: automatic callbacks failed")

    def _on_loop(self, fn: Callable[[], None]) -> Callable[[Future], None]:
        """A Future's done callback (engine thread) that runs fn on the loop (at once without one: tests)."""
        def done(_: Future) -> None:
            if self._loop is None:
                fn()
            elif not self._loop.is_closed():
                self._loop.call_soon_threadsafe(fn)
        return done

    # -- one round ---------------------------------------------------------------

    def round(self) -> None:
        settings = autocall_of(self.store.get_setting("missed"))
        if not settings.enabled or self.agents is None:
            return
        if self._asking and time.monotonic() - self._asking < ASK_TIMEOUT:
            return
        self.settle_finished()
        now = self.service.clock()
        waiting = self.waiting()
        if not any(autocall.due(c, settings, now) is None for c in waiting):
            return
        if not self.office_open(now):
            return
        self._asking = time.monotonic()
        asked = self.agents()
        asked.add_done_callback(self._on_loop(lambda: self._decide(asked)))

    def _decide(self, asked: Future) -> None:
        self._asking = 0.0
        try:
            presence = asked.result()
        except Exception as e:  # noqa: BLE001 - the engine stopped or failed: try at the next tick
            log.warning("missed: could not read who is free: %s", e)
            return
        settings = autocall_of(self.store.get_setting("missed"))
        now = self.service.clock()
        waiting = self.waiting()   # read again: the answer took a moment
        agents = self._agents(presence)
        on_call = {normalise(n) for n in self.live() if n}
        for step in autocall.plan(now, waiting, agents, on_call, self.office_open(now), settings):
            if isinstance(step, Dial):
                self._dial(step, now)

    def waiting(self) -> list[Waiting]:
        """The open cases, oldest first, with their people, group and attempts."""
        rows = self.tables.cases()
        attempts = self.tables.attempts_of(r["id"] for r in rows)
        groups = self._groups()
        out = []
        for row in rows:
            person = row["assigned_to"] or self.tables.manager_of(row["caller"])
            out.append(Waiting(row["id"], row["caller"] or "", person, self._group_of(row["id"], groups),
                               tuple(_attempt(a) for a in attempts.get(row["id"], []))))
        return out

    def _group_of(self, case_id: int, groups: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
        calls = self.tables.calls_of(case_id)
        record = self.tables.call_record(calls[-1]) if calls else None
        return autocall.group_members(record["path"], groups) if record else ()

    def _routing(self) -> Any:
        from appliance.routing.config import read

        extensions = {e["number"]: e["name"] for e in self.store.extensions()}
        return read(self.store.routing_document() or {}, extensions, timezone=self.store.timezone)

    def _groups(self) -> dict[str, tuple[str, ...]]:
        try:
            routing = self._routing()
        except Exception:  # noqa: BLE001 - a broken routing leaves the case's person only
            return {}
        out = {f"group:{g.id}": g for g in routing.groups.values()}
        out.update({f"queue:{q.id}": q for q in routing.queues.values()})
        return {dest: tuple(m.target for m in hunt.members if not m.external) for dest, hunt in out.items()}

    def _wrapups(self) -> dict[str, int]:
        """Each extension's longest wrap-up among its groups and queues (routing's availability), in seconds."""
        from appliance.routing.strategies import resolve

        try:
            routing = self._routing()
        except Exception:  # noqa: BLE001
            return {}
        out: dict[str, int] = {}
        for hunt in (*routing.groups.values(), *routing.queues.values()):
            for m in hunt.members:
                if not m.external:
                    wrapup = resolve(m.availability, hunt.availability).wrapup or 0
                    out[m.target] = max(out.get(m.target, 0), wrapup)
        for ext, opts in routing.extensions.items():
            out[ext] = max(out.get(ext, 0), opts.availability.wrapup or 0)
        return out

    def _agents(self, presence: dict[str, dict]) -> dict[str, Agent]:
        wrapups = self._wrapups()
        return {ext: Agent(ext, bool(p.get("registered")), bool(p.get("dnd")), int(p.get("calls") or 0),
                           bool(p.get("ringing")),
                           aware(p["last_call_end"]) if p.get("last_call_end") else None, wrapups.get(ext, 0))
                for ext, p in presence.items()}

    def office_open(self, now: datetime) -> bool:
        """The `working_hours` schedule is open (else the default weekday hours) and no night switch says night."""
        if self.night():
            return False
        hours = str((self.store.get_setting("missed") or {}).get("working_hours") or "")
        if hours.startswith(SCHEDULE_PREFIX):
            from appliance.routing.schedule import Clock

            schedule = self._routing().schedules.get(hours[len(SCHEDULE_PREFIX):])
            if schedule is not None:
                return Clock(schedule).natural(now)
            log.warning("missed: working_hours names schedule %r, which is gone; default hours apply", hours)
        return autocall.default_hours_open(now, self.store.timezone)

    # -- attempts ------------------------------------------------------------------

    def _dial(self, step: Dial, now: datetime) -> None:
        with self.store.transaction():
            attempt_id = self.tables.add_attempt(step.case_id, _iso(now), step.ext)
        text = self._whisper(step, now)
        log.info("missed: calling back case %s (%s) from %s", step.case_id, step.number, step.ext)
        placed = self.originate(step.ext, step.number, text)
        placed.add_done_callback(self._on_loop(lambda: self._placed(attempt_id, step, placed)))

    def _placed(self, attempt_id: int, step: Dial, placed: Future) -> None:
        try:
            call_id = str(placed.result())
        except Exception as e:  # noqa: BLE001 - a refusal (no trunk, dial rules) is this attempt's result
            reason = str(e) or type(e).__name__
            log.info("missed: the callback of case %s from %s was refused: %s", step.case_id, step.ext, reason)
            with self.store.transaction():
                self.tables.attempt_over(attempt_id, f"refused: {reason}", False, _iso(self.service.clock()))
            self.service.attempted(step.case_id)
            return
        with self.store.transaction():
            self.tables.attempt_call(attempt_id, call_id)
        # The call may be over already (a phone that refused at once).
        self.settle(call_id)

    def _whisper(self, step: Dial, now: datetime) -> str:
        from appliance.routing import dialplan

        row = self.tables.case(step.case_id) or {}
        name = self.tables.names_of([step.number]).get(step.number) or " ".join(
            dialplan.Dialled(step.number, "").national)
        last = aware(row.get("last_at") or row.get("opened_at") or _iso(now))
        minutes = round(max(0.0, (now - last).total_seconds()) / 60)
        return autocall.whisper(name, minutes, self.service._language() == "en")

    def settle(self, call_id: str) -> bool:
        """A finished call that was an automatic callback: its attempt's result, and the case closed on success.

        True when the call is an attempt's (whether or not its record is written yet): the cases' other
        rules leave it alone, so a successful callback closes its case once, as `callback`."""
        attempt = self.tables.attempt_by_call(call_id)
        if attempt is None:
            return False
        if attempt["result"] is not None:
            return True
        outcome = autocall.attempt_result(self.tables.call_record(call_id))
        if outcome is None:
            return True
        result, ok = outcome
        now = self.service.clock()
        with self.store.transaction():
            self.tables.attempt_over(attempt["id"], result, ok, _iso(now))
        log.info("missed: callback of case %s from %s: %s", attempt["case_id"], attempt["ext"], result)
        if ok:
            row = self.tables.case(attempt["case_id"])
            if row is not None and row["status"] == "open":
                self.service.callback_succeeded(row["caller"], attempt["ext"], call_id)
        else:
            self.service.attempted(attempt["case_id"])
        self.poke()
        return True

    def settle_finished(self) -> None:
        """Attempts under way whose call is over (an event missed): settled from the record."""
        for attempt in self.tables.pending_attempts():
            if attempt["call_id"]:
                self.settle(attempt["call_id"])

    def recover(self) -> None:
        """At start: attempts the last run left under way are settled from their record, else interrupted."""
        self.settle_finished()
        now = _iso(self.service.clock())
        with self.store.transaction():
            for attempt in self.tables.pending_attempts():
                self.tables.attempt_over(attempt["id"], INTERRUPTED, False, now)


def _attempt(row: dict) -> Attempt:
    return Attempt(int(row["case_id"]), aware(row["at"]), str(row["ext"]), row["call_id"], row["result"],
                   bool(row["ok"]))


def on_call_numbers(monitor: Any) -> set[str]:
    """The outside numbers on a call with the office now, from the live monitor (appliance.monitor.LiveCalls)."""
    return {n for c in list(monitor.calls.values()) for n in (c.caller, c.dialled) if n}


def night_now(night: Any) -> bool:
    """Whether a night switch (appliance.night.service.NightService) says night now."""
    switches = night.status_or_none() if night is not None else None
    return any(view.get("mode") == "night" for view in (switches or {}).values())
