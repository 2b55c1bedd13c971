"""The decisions: from a call's facts and the current state to the next step.

`Router(config)` compiles a validated `RoutingConfig` once; after that every
question is a pure function of its arguments.  Destinations that only choose
(schedule, night switch, personal manager lookup, duty roster, a hunt group
whose members are all away) are resolved here, in a loop, and explained in the
trace; the loop stops at the first step the engine has to carry out.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any, Callable

from . import webhook as webhook_mod
from . import kinds
from .facts import IDLE, Facts, State
from .model import DutyRoster, Exits, Group, Member, Queue as QueueConfig, RoutingConfig, Route, split_ref
from .branch import split_target
from .numbers import caller_matches, normalise
from .schedule import Clock, local_label, zone
from .steps import (
    AskWebhook, Connected, Decision, Forward, Hangup, Leg, Menu, Outcome, Path, Play, Queue,
    Ring, Step, TraceEntry, Updates, Voicemail,
)
from .strategies import DESCRIPTIONS, Candidate, Context, order, plan, resolve, unavailable_reason

MAX_HOPS = 64          # destinations passed through in one decision
MAX_PATH = 400         # destinations in a whole call: a caller looping through menus forever

_FAIL_OUTCOMES = {
    Outcome.NO_ANSWER: "no answer",
    Outcome.BUSY: "busy",
    Outcome.UNAVAILABLE: "unavailable",
    Outcome.FAILED: "failure",
}


class _Go:
    """A destination that only chose where the call goes next."""

    __slots__ = ("ref", "reason", "owner")

    def __init__(self, ref: str, reason: str = "", owner: str = ""):
        self.ref, self.reason, self.owner = ref, reason, owner


def _with(p: Path, *, via: tuple[str, ...] | None = None, menus: tuple[str, ...] | None = None,
          tries: int | None = None, reason: str | None = None, owner: str | None = None) -> Path:
    """dataclasses.replace for Path, without its introspection (this is the hot path)."""
    return Path(p.route, p.via if via is None else via, p.menus if menus is None else menus,
                p.tries if tries is None else tries, p.reason if reason is None else reason,
                p.owner if owner is None else owner)


def _exit(exits: Exits, reason: str) -> str:
    return {"no answer": exits.no_answer, "busy": exits.busy,
            "unavailable": exits.unavailable}.get(reason, exits.failure)


class Router:
    def __init__(self, config: RoutingConfig):
        self.config = config
        self.clocks = {sid: Clock(s) for sid, s in config.schedules.items()}
        self.known = dict(config.known_extensions)
        self._handlers: dict[str, Callable[..., Step | _Go]] = {
            "ext": self._extension, "group": self._group, "queue": self._queue,
            "menu": self._menu, "schedule": self._schedule, "night": self._night,
            "announcement": self._announcement, "voicemail": self._voicemail,
            "external": self._external, "number": self._number, "webhook": self._webhook,
            "manager": self._manager, "duty": self._duty, "branch": self._branch, "hangup": self._hangup,
        }
        # What follows each kind of step: step type -> method(step, outcome, facts, state, digits, answer, by).
        self._after: dict[type, Callable[..., Decision]] = {
            Ring: self._after_ringing, Forward: self._after_ringing, Queue: self._after_queue,
            Menu: self._after_menu, Play: self._after_play, AskWebhook: self._after_webhook,
            Voicemail: self._after_end, Hangup: self._after_end, Connected: self._after_end,
        }
        self._menu_entries = {}
        for mid, m in config.menus.items():
            entries = set(m.options)
            if m.direct_dial is True:
                entries |= set(self.known)
            elif m.direct_dial:
                entries |= set(m.direct_dial)
            self._menu_entries[mid] = frozenset(entries)
        self._routes = [(r, tuple(normalise(n) for n in r.numbers)) for r in config.routes]
        self._described: dict[str, str] = {}

    def _d(self, ref: str) -> str:
        """A destination in words, for the trace: "group 'Sales'"."""
        text = self._described.get(ref)
        if text is None:
            text = self._described[ref] = kinds.describe(self.config, ref)
        return text

    def _exists(self, ref: str) -> bool:
        return kinds.exists(self.config, ref)

    # ---- the engine-facing API -------------------------------------------------------

    def first_step(self, facts: Facts, state: State) -> Decision:
        """The first step for a new inbound call."""
        trace: list[TraceEntry] = []
        route = self.match(facts.call)
        if route is None:
            ref = self.config.unmatched or "hangup"
            trace.append(TraceEntry("route", f"no route takes calls to {facts.call.dialled or 'an unknown number'}"
                                    f" from {facts.call.caller or 'a withheld number'}; unmatched calls go to {self._d(ref)}",
                                    {"route": None, "to": ref}))
            return self._enter(ref, Path(route=""), facts, state, trace, {})
        trace.append(TraceEntry("route", f"route '{route.name}' takes calls to {facts.call.dialled or 'any number'}"
                                f" from {facts.call.caller or 'a withheld number'}",
                                {"route": route.name, "to": route.to}))
        return self._enter(route.to, Path(route=route.name), facts, state, trace, {})

    def next_step(self, step: Step, outcome: Outcome, facts: Facts, state: State, *,
                  digits: str = "", answer: Any = None, by: str = "") -> Decision:
        """The step after `step` ended with `outcome`.

        digits: what the caller entered (Menu, or a key pressed in a Queue);
        answer: the webhook's parsed answer (WEBHOOK_ANSWER);
        by: who answered (ANSWERED): an extension number or an external number.
        """
        after = self._after.get(type(step))
        if after is None:
            raise ValueError(f"routing cannot continue from {type(step).__name__}")
        return after(step, outcome, facts, state, digits, answer, by)

    def match(self, call) -> Route | None:
        """The first route, in the order written, that takes this call."""
        for route, numbers in self._routes:
            if numbers and call.dialled not in numbers:
                continue
            if route.trunks and call.trunk not in route.trunks:
                continue
            if route.callers and not any(caller_matches(p, call.caller) for p in route.callers):
                continue
            return route
        return None

    def queue_ring(self, step: Queue, facts: Facts, state: State) -> Decision:
        """The agents to ring now for the caller at the head of `step`'s queue.

        Returns a Ring with no legs when no agent is free (try again after
        `step.retry` seconds); `updates.positions` carries round robin.
        """
        q = self.config.queues[split_ref(step.dest)[1]]
        trace: list[TraceEntry] = []
        positions: dict[str, int] = {}
        ordered, skipped = self._candidates(q.members, q.availability, facts, state)
        if not ordered:
            trace.append(TraceEntry("queue", f"queue '{q.name}': no agent free ({_skipped_text(skipped)})",
                                    {"queue": q.id, "skipped": dict(skipped)}))
            return Decision(Ring(step.dest, q.name, (), 0, step.path, priority=step.priority), tuple(trace))
        ordered = self._order(step.dest, q.strategy, ordered, len(q.members), facts, state, positions)
        legs, total = plan(q.strategy, ordered, ring_time=q.ring_time, rounds=1,
                           widen_after=q.widen_after, confirm=q.confirm)
        trace.append(TraceEntry("ring", f"queue '{q.name}' rings {_legs_text(legs)}",
                                {"queue": q.id, "legs": [_leg_dict(l) for l in legs]}))
        return Decision(Ring(step.dest, q.name, legs, total, step.path, priority=step.priority),
                        tuple(trace), Updates(positions))

    def queue_status(self, step: Queue, position: int, facts: Facts, state: State) -> dict[str, Any]:
        """What to announce to a caller waiting in a queue: position and estimated wait.

        The estimate uses the queue's recent answer times (seconds a caller at
        the head of the queue waited for an agent) and the agents free now:
        each agent takes the next caller after about one average answer time.
        """
        q = self.config.queues[split_ref(step.dest)[1]]
        ordered, _ = self._candidates(q.members, q.availability, facts, state)
        agents = max(len(ordered), 1)
        recent = state.answer_times.get(q.id, ())
        if recent:
            per_caller = sum(recent) / len(recent)
            wait = int(math.ceil(position / agents) * per_caller)
        else:
            wait = None
        minutes = None if wait is None else max(1, math.ceil(wait / 60))
        return {
            "queue": q.id, "position": position, "agents": len(ordered),
            "estimated_wait": wait, "minutes": minutes,
            "announce_position": q.announce_position,
            "announce_wait": q.announce_wait and wait is not None,
            "exit_key": q.exit_key, "callback_key": q.callback_key if q.callback else None,
        }

    # ---- walking destinations ---------------------------------------------------------

    def _enter(self, ref: str, path: Path, facts: Facts, state: State,
               trace: list[TraceEntry], positions: dict[str, int]) -> Decision:
        route, via, menus, reason, owner = path.route, path.via, path.menus, path.reason, path.owner
        for _ in range(MAX_HOPS):
            if len(via) >= MAX_PATH:
                break
            kind, _sep, ident = ref.partition(":")
            via = via + (ref,)
            path = Path(route, via, menus, 0, reason, owner)
            result = self._handlers[kind](ident, path, facts, state, trace, positions)
            if type(result) is _Go:
                ref, reason, owner = result.ref, result.reason, result.owner
                continue
            return Decision(result, tuple(trace), Updates(positions))
        trace.append(TraceEntry("hangup", "the call went round in circles; hanging up", {"reason": "loop"}))
        return Decision(Hangup(ref, "loop", path), tuple(trace), Updates(positions))

    # ---- what follows each kind of step ----------------------------------------------

    def _after_end(self, step: Voicemail | Hangup | Connected, outcome: Outcome, facts: Facts, state: State,
                   digits: str, answer: Any, by: str) -> Decision:
        dest = "" if isinstance(step, Connected) else step.dest
        return Decision(Hangup(dest, "call over", step.path))

    def _after_ringing(self, step: Ring | Forward, outcome: Outcome, facts: Facts, state: State,
                       digits: str, answer: Any, by: str) -> Decision:
        if outcome is Outcome.ANSWERED:
            return self._answered(step, facts, by)
        if outcome not in _FAIL_OUTCOMES:
            raise ValueError(f"a {type(step).__name__} step cannot end with {outcome.value}")
        reason = _FAIL_OUTCOMES[outcome]
        if step.path.owner:  # the extension or number a webhook chose: the webhook's exits
            exits = self.config.webhooks[split_ref(step.path.owner)[1]].exits
        else:
            exits = kinds.exits(self.config, step.dest)
        nxt = _exit(exits, reason)
        if nxt == kinds.OWN_BOX:
            nxt = f"voicemail:{split_ref(step.dest)[1]}"
        trace = [TraceEntry("outcome", f"{step.name}: {reason} → {self._d(nxt)}",
                            {"dest": step.dest, "outcome": reason, "to": nxt})]
        return self._enter(nxt, _with(step.path, reason=reason, owner=""), facts, state, trace, {})

    def _after_queue(self, step: Queue, outcome: Outcome, facts: Facts, state: State,
                     digits: str, answer: Any, by: str) -> Decision:
        if outcome is Outcome.ANSWERED:
            return self._answered(step, facts, by)
        q = self.config.queues[split_ref(step.dest)[1]]
        path = step.path
        trace: list[TraceEntry] = []
        if outcome is Outcome.DIGITS and q.exit_key and digits == q.exit_key and q.exit_to:
            trace.append(TraceEntry("queue", f"caller pressed {digits} to leave queue '{q.name}' → {self._d(q.exit_to)}",
                                    {"queue": q.id, "key": digits, "to": q.exit_to}))
            return self._enter(q.exit_to, _with(path, reason="exit"), facts, state, trace, {})
        if outcome is Outcome.CALLBACK or (outcome is Outcome.DIGITS and q.callback and digits == q.callback_key):
            trace.append(TraceEntry("queue", f"caller asked queue '{q.name}' to call back",
                                    {"queue": q.id, "callback": True}))
            return Decision(Hangup(step.dest, "call back requested", path, callback=True), tuple(trace))
        if outcome in (Outcome.NO_ANSWER, Outcome.TIMEOUT):
            nxt = q.exits.no_answer
            trace.append(TraceEntry("queue", f"queue '{q.name}': no agent answered within {q.max_wait} s → {self._d(nxt)}",
                                    {"queue": q.id, "outcome": "no answer", "to": nxt}))
            return self._enter(nxt, _with(path, reason="no answer"), facts, state, trace, {})
        reason = _FAIL_OUTCOMES.get(outcome, "failure")
        nxt = _exit(q.exits, reason)
        trace.append(TraceEntry("queue", f"queue '{q.name}': {reason} → {self._d(nxt)}",
                                {"queue": q.id, "outcome": reason, "to": nxt}))
        return self._enter(nxt, _with(path, reason=reason), facts, state, trace, {})

    def _after_play(self, step: Play, outcome: Outcome, facts: Facts, state: State,
                    digits: str, answer: Any, by: str) -> Decision:
        ann = self.config.announcements.get(split_ref(step.dest)[1])
        nxt = ann.then if ann is not None else "hangup"
        trace = [TraceEntry("play", f"after announcement '{step.name}' → {self._d(nxt)}", {"to": nxt})]
        return self._enter(nxt, _with(step.path, reason="", owner=""), facts, state, trace, {})

    def _answered(self, step: Ring | Forward | Queue, facts: Facts, by: str) -> Decision:
        who = by or (step.number if isinstance(step, Forward) else "")
        positions: dict[str, int] = {}
        hunt = kinds.item(self.config, step.dest)
        if isinstance(hunt, (Group, QueueConfig)) and hunt.strategy == "roundrobin":
            for i, m in enumerate(hunt.members):
                if m.target == who or (m.external and m.target == normalise(who)):
                    positions[step.dest] = i
                    break
        answered = None
        if who in self.known and facts.call.caller:
            answered = (facts.call.caller, who)
        entry = TraceEntry("answered", f"{who or 'someone'} answered", {"by": who, "dest": step.dest})
        return Decision(Connected(who, step.path), (entry,), Updates(positions, answered))

    def _candidates(self, members: tuple[Member, ...], group_avail, facts: Facts, state: State):
        ok: list[Candidate] = []
        skipped: list[tuple[str, str]] = []
        now = facts.now
        for pos, m in enumerate(members):
            if m.external:
                ok.append(Candidate(pos, m, IDLE))
                continue
            if m.branch:  # another shop's extension: rung while the link to that shop is up
                if state.links.get(m.branch, True):
                    ok.append(Candidate(pos, m, IDLE))
                else:
                    skipped.append((m.target, "unreachable"))
                continue
            p = state.presence.get(m.target, IDLE)
            why = "paused" if p.paused else unavailable_reason(p, resolve(m.availability, group_avail), now)
            if why is None:
                ok.append(Candidate(pos, m, p))
            else:
                skipped.append((m.target, why))
        return ok, skipped

    def _order(self, ref: str, strategy: str, candidates, count: int, facts: Facts,
               state: State, positions: dict[str, int]) -> list[Candidate]:
        start = state.positions.get(ref, -1) + 1
        ordered = order(strategy, candidates, Context(start, count, facts.rng))
        if strategy == "roundrobin" and ordered:
            # Remember where this call started, so the next one starts after it
            # even if nobody answers; an answer moves the mark to who answered.
            positions[ref] = ordered[0].position
        return ordered

    # ---- one handler per kind of destination --------------------------------------------

    def _extension(self, ident: str, path: Path, facts: Facts, state: State, trace, positions):
        opts = self.config.extension(ident)
        ring_time = opts.ring_time
        if path.owner:
            ring_time = self.config.webhooks[split_ref(path.owner)[1]].ring_time
        name = f"extension {ident}" + (f" ({self.known[ident]})" if self.known.get(ident) else "")
        why = unavailable_reason(state.presence.get(ident, IDLE), opts.availability, facts.now)
        if why is not None:
            reason = "busy" if why == "busy" else "unavailable"
            exits = self.config.webhooks[split_ref(path.owner)[1]].exits if path.owner else opts.exits
            nxt = _exit(exits, reason)
            if nxt == "voicemail:*":
                nxt = f"voicemail:{ident}"
            trace.append(TraceEntry("skip", f"{name} is {why} → {self._d(nxt)}",
                                    {"extension": ident, "why": why, "to": nxt}))
            return _Go(nxt, reason)
        trace.append(TraceEntry("ring", f"ring {name} for {ring_time} s",
                                {"extension": ident, "seconds": ring_time}))
        return Ring(f"ext:{ident}", name, (Leg(ident, 0, ring_time),), ring_time, path)

    def _group(self, ident: str, path: Path, facts: Facts, state: State, trace, positions):
        g = self.config.groups[ident]
        ref = f"group:{ident}"
        ordered, skipped = self._candidates(g.members, g.availability, facts, state)
        if not ordered:
            reason = "busy" if any(w == "busy" for _, w in skipped) else "unavailable"
            nxt = _exit(g.exits, reason)
            trace.append(TraceEntry("group", f"group '{g.name}': nobody to ring ({_skipped_text(skipped)}) → {self._d(nxt)}",
                                    {"group": ident, "skipped": dict(skipped), "outcome": reason, "to": nxt}))
            return _Go(nxt, reason)
        ordered = self._order(ref, g.strategy, ordered, len(g.members), facts, state, positions)
        legs, total = plan(g.strategy, ordered, ring_time=g.ring_time, rounds=g.rounds,
                           widen_after=g.widen_after, confirm=g.confirm)
        text = f"group '{g.name}' ({DESCRIPTIONS[g.strategy]}) rings {_legs_text(legs)}"
        if skipped:
            text += f"; skipped {_skipped_text(skipped)}"
        trace.append(TraceEntry("group", text, {
            "group": ident, "strategy": g.strategy, "seconds": total,
            "legs": [_leg_dict(l) for l in legs], "skipped": dict(skipped)}))
        return Ring(ref, f"group '{g.name}'", legs, total, path, announce=g.announce)

    def _queue(self, ident: str, path: Path, facts: Facts, state: State, trace, positions):
        q = self.config.queues[ident]
        ordered, skipped = self._candidates(q.members, q.availability, facts, state)
        logged_in = ordered or any(w in ("busy", "wrap-up", "paused") for _, w in skipped)
        if not logged_in:
            nxt = q.exits.unavailable
            trace.append(TraceEntry("queue", f"queue '{q.name}' has no agents ({_skipped_text(skipped)}) → {self._d(nxt)}",
                                    {"queue": ident, "skipped": dict(skipped), "to": nxt}))
            return _Go(nxt, "unavailable")
        contact = state.contacts.get(facts.call.caller)
        vip = bool(contact and contact.vip and q.vip_first)
        text = f"queue '{q.name}': wait up to {q.max_wait} s, {len(ordered)} agent(s) free"
        if vip:
            text += f"; VIP caller {contact.name or facts.call.caller} goes to the front"
        trace.append(TraceEntry("queue", text, {"queue": ident, "max_wait": q.max_wait,
                                                "agents_free": len(ordered), "vip": vip}))
        return Queue(f"queue:{ident}", f"queue '{q.name}'", q.max_wait, q.music, 1 if vip else 0,
                     q.announce_every, q.exit_key if q.exit_to else None,
                     q.callback_key if q.callback else None, q.greeting, q.ring_time, q.retry, path)

    def _menu(self, ident: str, path: Path, facts: Facts, state: State, trace, positions,
              extra: tuple[str, ...] = ()):
        m = self.config.menus[ident]
        ref = f"menu:{ident}"
        menus = path.menus
        if ref in menus:
            menus = menus[:menus.index(ref) + 1]
        else:
            menus = menus + (ref,)
            path = _with(path, tries=0)
        path = _with(path, menus=menus)
        options = ", ".join(f"{d} → {self._d(to)}" for d, to in m.options.items())
        dd = " and direct dial" if m.direct_dial else ""
        trace.append(TraceEntry("menu", f"menu '{m.name}' plays '{m.prompt}' ({options}{dd})",
                                {"menu": ident, "prompt": m.prompt, "options": dict(m.options),
                                 "direct_dial": bool(m.direct_dial), "try": path.tries}))
        return Menu(ref, f"menu '{m.name}'", extra + (m.prompt,), self._menu_entries[ident],
                    m.timeout, m.inter_digit, path)

    def _after_menu(self, step: Menu, outcome: Outcome, facts: Facts, state: State,
                    digits: str, answer: Any, by: str) -> Decision:
        trace: list[TraceEntry] = []
        ident = split_ref(step.dest)[1]
        m = self.config.menus[ident]
        path = step.path
        if outcome is Outcome.DIGITS and digits in m.options:
            nxt = m.options[digits]
            if nxt == "parent":
                parent = path.menus[-2] if len(path.menus) >= 2 else step.dest
                trace.append(TraceEntry("menu", f"caller pressed {digits}: back to {self._d(parent)}",
                                        {"menu": ident, "digits": digits, "to": parent}))
                return self._enter(parent, _with(path, menus=path.menus[:-1], tries=0), facts, state, trace, {})
            if nxt == "repeat":
                trace.append(TraceEntry("menu", f"caller pressed {digits}: menu again",
                                        {"menu": ident, "digits": digits, "to": step.dest}))
                return self._enter(step.dest, _with(path, tries=0), facts, state, trace, {})
            trace.append(TraceEntry("menu", f"caller pressed {digits} → {self._d(nxt)}",
                                    {"menu": ident, "digits": digits, "to": nxt}))
            return self._enter(nxt, _with(path, tries=0, reason=""), facts, state, trace, {})
        if outcome is Outcome.DIGITS and digits in step.entries:
            nxt = f"ext:{digits}"
            trace.append(TraceEntry("menu", f"caller dialled extension {digits} directly",
                                    {"menu": ident, "digits": digits, "to": nxt}))
            return self._enter(nxt, _with(path, tries=0, reason=""), facts, state, trace, {})
        if outcome is Outcome.DIGITS:
            what, exhausted, prompt = "invalid entry", m.on_invalid, m.invalid_prompt
        elif outcome is Outcome.TIMEOUT:
            what, exhausted, prompt = "no entry", m.on_timeout, m.timeout_prompt
        else:  # the prompt could not be played: do not keep the caller in a silent menu
            trace.append(TraceEntry("menu", f"menu '{m.name}' failed → {self._d(m.on_timeout)}",
                                    {"menu": ident, "to": m.on_timeout}))
            return self._enter(m.on_timeout, _with(path, tries=0), facts, state, trace, {})
        tries = path.tries + 1
        shown = f" {digits}" if digits else ""
        if tries > m.retries:
            trace.append(TraceEntry("menu", f"{what}{shown} in menu '{m.name}' after {m.retries} retries → {self._d(exhausted)}",
                                    {"menu": ident, "digits": digits, "tries": tries, "to": exhausted}))
            return self._enter(exhausted, _with(path, tries=0), facts, state, trace, {})
        trace.append(TraceEntry("menu", f"{what}{shown} in menu '{m.name}': try {tries} of {m.retries}",
                                {"menu": ident, "digits": digits, "tries": tries}))
        retry_path = _with(path, tries=tries, via=path.via + (step.dest,))
        return Decision(self._menu(ident, retry_path, facts, state, trace, {},
                                   (prompt,) if prompt else ()), tuple(trace))

    def _schedule(self, ident: str, path: Path, facts: Facts, state: State, trace, positions):
        s = self.config.schedules[ident]
        clock = self.clocks[ident]
        override = state.overrides.get(ident)
        is_open, why = clock.is_open(facts.now, override)
        nxt = (s.open if is_open else s.closed) or "hangup"
        label = local_label(facts.now, s.timezone)
        if why == "hours":
            text = f"{label} is {'inside' if is_open else 'outside'} '{s.name}'"
        else:
            text = f"'{s.name}' is held {'open' if is_open else 'closed'} by a {why} ({label})"
        trace.append(TraceEntry("schedule", f"{text} → {'open' if is_open else 'closed'} → {self._d(nxt)}",
                                {"schedule": ident, "open": is_open, "why": why, "local": label, "to": nxt}))
        return _Go(nxt)

    def _night(self, ident: str, path: Path, facts: Facts, state: State, trace, positions):
        n = self.config.night[ident]
        clock = self.clocks.get(n.schedule) if n.schedule else None
        override = state.night_override(ident)
        night, why = False, "default"
        label = local_label(facts.now, self.config.timezone)
        if clock is not None:
            sname = self.config.schedules[n.schedule].name
            night = not clock.natural(facts.now)
            why = f"{label} is {'outside' if night else 'inside'} '{sname}'"
        if override is not None:
            if override.permanent:
                night, why = override.state == "night", "switched by hand"
            else:
                boundary = clock.next_boundary(override.since) if (clock and override.since) else None
                if boundary is None or facts.now < boundary:
                    until = f" until {local_label(boundary, self.config.timezone)}" if boundary else ""
                    night, why = override.state == "night", f"switched by hand{until}"
        nxt = n.night if night else n.day
        mode = "night" if night else "day"
        trace.append(TraceEntry("night", f"{why}: night switch '{n.name}' is {mode} → {self._d(nxt)}",
                                {"switch": ident, "night": night, "why": why, "to": nxt}))
        return _Go(nxt)

    def _announcement(self, ident: str, path: Path, facts: Facts, state: State, trace, positions):
        a = self.config.announcements[ident]
        trace.append(TraceEntry("play", f"play announcement '{a.name}' ({a.prompt})",
                                {"announcement": ident, "prompt": a.prompt}))
        return Play(f"announcement:{ident}", a.name, a.prompt, path)

    def _voicemail(self, ident: str, path: Path, facts: Facts, state: State, trace, positions):
        box = self.config.voicemail.get(ident)
        name = box.name if box else (self.known.get(ident) or f"extension {ident}")
        greeting = "busy" if path.reason == "busy" else "unavailable"
        trace.append(TraceEntry("voicemail", f"voicemail box '{name}' ({greeting} greeting)",
                                {"box": ident, "greeting": greeting}))
        return Voicemail(f"voicemail:{ident}", name, ident, greeting, path, box.greeting if box else None)

    def _external(self, ident: str, path: Path, facts: Facts, state: State, trace, positions):
        e = self.config.externals[ident]
        confirm = ", confirm with a key" if e.confirm else ""
        trace.append(TraceEntry("forward", f"call {e.name} on {e.number} for {e.ring_time} s{confirm}",
                                {"external": ident, "number": e.number, "seconds": e.ring_time,
                                 "confirm": e.confirm}))
        return Forward(f"external:{ident}", e.name, e.number, e.ring_time, e.confirm, path)

    def _number(self, ident: str, path: Path, facts: Facts, state: State, trace, positions):
        # Only a webhook's answer leads here; its settings apply.
        w = self.config.webhooks[split_ref(path.owner)[1]] if path.owner else None
        ring_time = w.ring_time if w else 30
        trace.append(TraceEntry("forward", f"call {ident} for {ring_time} s, confirm with a key",
                                {"number": ident, "seconds": ring_time, "confirm": True}))
        return Forward(f"number:{ident}", ident, ident, ring_time, True, path)

    def _webhook(self, ident: str, path: Path, facts: Facts, state: State, trace, positions):
        w = self.config.webhooks[ident]
        contact = state.contacts.get(facts.call.caller)
        req = webhook_mod.request(facts.call, facts.now, contact, path.route)
        trace.append(TraceEntry("webhook", f"ask webhook '{w.name}' ({w.url}), wait {w.timeout:g} s",
                                {"webhook": ident, "url": w.url, "timeout": w.timeout, "request": req}))
        return AskWebhook(f"webhook:{ident}", w.name, w.url, w.timeout, req, path)

    def _after_webhook(self, step: AskWebhook, outcome: Outcome, facts: Facts, state: State,
                       digits: str, answer: Any, by: str) -> Decision:
        trace: list[TraceEntry] = []
        ident = split_ref(step.dest)[1]
        w = self.config.webhooks[ident]
        if outcome is Outcome.WEBHOOK_ANSWER:
            ref, why = webhook_mod.read_answer(answer, is_extension=self.known.__contains__,
                                               exists=self._exists, allow_numbers=w.allow_numbers)
        elif outcome is Outcome.TIMEOUT:
            ref, why = None, f"no answer within {w.timeout:g} s"
        else:
            ref, why = None, "the request failed"
        if ref is None:
            trace.append(TraceEntry("webhook", f"webhook '{w.name}': {why} → {self._d(w.fallback)}",
                                    {"webhook": ident, "ok": False, "why": why, "to": w.fallback}))
            return self._enter(w.fallback, _with(step.path, reason="failure"), facts, state, trace, {})
        trace.append(TraceEntry("webhook", f"webhook '{w.name}' chose {why}",
                                {"webhook": ident, "ok": True, "to": ref}))
        owner = step.dest if split_ref(ref)[0] in ("ext", "number") else ""
        return self._enter(ref, _with(step.path, reason="", owner=owner), facts, state, trace, {})

    def _manager(self, ident: str, path: Path, facts: Facts, state: State, trace, positions):
        pm = self.config.managers[ident]
        caller = facts.call.caller
        contact = state.contacts.get(caller)
        ext, source = None, ""
        if contact is not None and contact.manager:
            ext, source = contact.manager, "contacts"
        elif pm.learn and caller in state.learned:
            ext, source = state.learned[caller], "last answered call"
        who = (contact.name if contact and contact.name else caller) or "a withheld number"
        if ext is None:
            trace.append(TraceEntry("manager", f"{who} has no personal manager → {self._d(pm.next)}",
                                    {"manager": None, "to": pm.next}))
            return _Go(pm.next)
        if ext not in self.known:
            trace.append(TraceEntry("manager", f"manager {ext} of {who} is not an extension → {self._d(pm.next)}",
                                    {"manager": ext, "to": pm.next}))
            return _Go(pm.next)
        why = unavailable_reason(state.presence.get(ext, IDLE), pm.availability, facts.now)
        name = f"extension {ext}" + (f" ({self.known[ext]})" if self.known.get(ext) else "")
        if why is not None:
            trace.append(TraceEntry("manager", f"personal manager of {who} is {name}, {why} → {self._d(pm.next)}",
                                    {"manager": ext, "source": source, "why": why, "to": pm.next}))
            return _Go(pm.next, "busy" if why == "busy" else "unavailable")
        trace.append(TraceEntry("manager", f"personal manager of {who} is {name} (from {source}): "
                                f"ring for {pm.ring_time} s",
                                {"manager": ext, "source": source, "seconds": pm.ring_time}))
        return Ring(f"manager:{ident}", f"personal manager {name}", (Leg(ext, 0, pm.ring_time),),
                    pm.ring_time, path)

    def _duty(self, ident: str, path: Path, facts: Facts, state: State, trace, positions):
        r = self.config.duty[ident]
        day, number = on_duty(r, facts.now)
        iso = day.isoformat()
        if number is None:
            trace.append(TraceEntry("duty", f"nobody is on duty in '{r.name}' for {iso} → {self._d(r.nobody)}",
                                    {"roster": ident, "day": iso, "number": None, "to": r.nobody}))
            return _Go(r.nobody)
        confirm = ", confirm with a key" if r.confirm else ""
        trace.append(TraceEntry("duty", f"duty mobile {number} ('{r.name}', {iso}) for {r.ring_time} s{confirm}",
                                {"roster": ident, "day": iso, "number": number, "seconds": r.ring_time}))
        return Forward(f"duty:{ident}", f"duty mobile {number}", number, r.ring_time, r.confirm, path)

    def _branch(self, ident: str, path: Path, facts: Facts, state: State, trace, positions):
        base, ext = split_target(ident)
        b = self.config.branches[base]
        name = self._d(f"branch:{ident}")
        if not state.links.get(base, True):
            nxt = b.exits.unavailable
            trace.append(TraceEntry("skip", f"{name} is unreachable (the link to it is down) → {self._d(nxt)}",
                                    {"branch": base, "ext": ext, "why": "unreachable", "to": nxt}))
            return _Go(nxt, "unavailable")
        what = f"ring {name}" if ext else f"hand the call to {name}'s own routing"
        trace.append(TraceEntry("ring", f"{what} for {b.ring_time} s",
                                {"branch": base, "ext": ext, "seconds": b.ring_time}))
        target = f"{base}/{ext}" if ext else base
        return Ring(f"branch:{ident}", name, (Leg(target, 0, b.ring_time, branch=base),), b.ring_time, path)

    def _hangup(self, ident: str, path: Path, facts: Facts, state: State, trace, positions):
        trace.append(TraceEntry("hangup", "hang up", {"reason": ident or "configured"}))
        return Hangup("hangup", ident or "configured", path)


def _skipped_text(skipped) -> str:
    return ", ".join(f"{t} {w}" for t, w in skipped) or "no members"


def _legs_text(legs: tuple[Leg, ...]) -> str:
    parts = []
    for l in legs:
        parts.append(f"{l.target} {l.start}–{l.stop} s")
    return ", ".join(parts) if parts else "nobody"


def _leg_dict(l: Leg) -> dict[str, Any]:
    return {"target": l.target, "start": l.start, "stop": l.stop,
            "external": l.external, "confirm": l.confirm}


def on_duty(roster: DutyRoster, when: datetime) -> tuple[date, str | None]:
    """The roster's day at `when` (before the changeover time the previous day's duty holds) and
    the mobile on duty then: a date entry first, else a weekday entry, else None."""
    local = when.astimezone(zone(roster.timezone))
    day = local.date()
    if local.hour * 60 + local.minute < roster.changeover:
        day -= timedelta(days=1)
    iso = day.isoformat()
    for e in roster.entries:
        if iso in e.dates:
            return day, e.number
    for e in roster.entries:
        if day.weekday() in e.weekdays:
            return day, e.number
    return day, None
