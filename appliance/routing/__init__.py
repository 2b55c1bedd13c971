"""Routing: the call flow as data, and the decisions (no I/O, no clock, no global random).

The engine drives a call with two calls and reports outcomes back:

    from appliance.routing import Router, Facts, State, Call, Outcome, parse

    router = Router(parse(store.routing_document(), extensions))   # once per configuration
    facts = Facts(Call(caller, dialled, trunk), now=aware_datetime, rng=random.Random())
    decision = router.first_step(facts, state)
    while not decision.terminal:
        outcome, extra = engine.execute(decision.step)         # ring, play, collect digits...
        decision = router.next_step(decision.step, outcome, facts_now, state_now, **extra)
        store(decision.updates)                                # round robin, learned manager

`Decision` holds `step` (what to do), `trace` (why, one `TraceEntry` per
destination passed through: keep them for the call record's path) and
`updates` (`positions`: round-robin marks to save; `answered`: (caller,
extension) for the personal manager's "last answered" memory).

Steps (frozen dataclasses in `steps`), and the outcomes each may end with:

    Ring(legs, for_seconds, announce, priority)
        Each `Leg(target, start, stop, external, confirm)` is rung from `start`
        to `stop` seconds after the step began; the first answer wins.
        -> ANSWERED (by=extension or number), NO_ANSWER, BUSY, UNAVAILABLE, FAILED
    Forward(number, for_seconds, confirm)       a trunk call; with confirm the
        callee must press a key before the call counts as answered.
        -> ANSWERED, NO_ANSWER, BUSY, UNAVAILABLE, FAILED
    Play(prompt)                                -> PLAYED (or FAILED)
    Menu(prompts, entries, timeout, inter_digit)
        Play prompts, collect digits.  After each digit call `step.entry(digits)`:
        COMPLETE/INVALID -> report now; MORE -> wait inter_digit seconds for the
        next digit, then report what there is.
        -> DIGITS (digits=...), TIMEOUT (nothing entered), FAILED
    Queue(max_wait, music, priority, announce_every, exit_key, callback_key, ring_time, retry)
        Hold the caller (priority 1 = VIP, ahead of 0; then by time joined).  When the
        caller is at the head, `router.queue_ring(step, facts, state)` gives the Ring
        for the agents free now (no legs: try again after `retry` s).  Every
        `announce_every` s, `router.queue_status(step, position, facts, state)` gives
        position and estimated wait to announce.
        -> ANSWERED, NO_ANSWER/TIMEOUT (max wait), DIGITS (a key), CALLBACK, FAILED
    AskWebhook(url, timeout, request)           POST `request` as JSON.
        -> WEBHOOK_ANSWER (answer=parsed JSON or text), TIMEOUT, FAILED
    Voicemail(box, greeting), Hangup(reason, callback), Connected(by)   terminal.

Every step carries `path` (route, destinations passed, menu stack, retries):
routing keeps no per-call memory, so the engine must hand the same step back.

`Facts`: the call, `now` (aware datetime) and `rng` (a random.Random).
`State`: `presence` (extension -> Presence(registered, dnd, calls,
last_call_end, calls_today)), `night` (switch id, or "" for all -> Override),
`overrides` (schedule id -> Override), `contacts` (normalised number ->
Contact(name, manager, vip)), `learned` (normalised number -> extension),
`positions` (ref such as "group:support" -> member index), `answer_times`
(queue id -> recent seconds to answer).  An `Override(state, permanent,
since)` is temporary unless permanent: it lasts until the schedule's next
boundary after `since`, as FreePBX time conditions do.

`config.parse(data, extensions, timezone=None)` / `config.dump(config)` /
`config.validate(config)`; `kinds.KINDS`, the table of destination kinds the
validator and the router read; `trace.follow(router, call, at, scenario)` for
previews; `numbers.normalise` for comparing phone numbers.  docs/routing.md
documents the configuration keys and how this package is laid out.

Nothing here reads a file, the database or the clock: `pbx trace` and
`pbx bench routing` (appliance/tracecmd.py), the configuration file
(appliance/configfile.py) and the engine read those and pass plain data in.
"""

from .config import dump, parse, validate
from .facts import Call, Contact, Facts, Override, Presence, State, contacts_by_number
from .numbers import normalise
from .router import Router
from .steps import (
    AskWebhook, Connected, Decision, Entry, Forward, Hangup, Leg, Menu, Outcome, Path, Play, Queue, Ring,
    TraceEntry, Updates, Voicemail,
)

__all__ = [
    "AskWebhook", "Call", "Connected", "Contact", "Decision", "Entry", "Facts", "Forward", "Hangup", "Leg",
    "Menu", "Outcome", "Override", "Path", "Play", "Presence", "Queue", "Ring", "Router", "State",
    "TraceEntry", "Updates", "Voicemail", "contacts_by_number", "dump", "normalise", "parse", "validate",
]
