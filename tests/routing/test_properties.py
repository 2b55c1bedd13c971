"""Property: every valid configuration ends every call (answered, voicemail or hang up),
for any caller, dialled number, time, presence and outcome of each step."""

import random
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings, strategies as st

from appliance.routing import config
from appliance.routing.facts import Call, Contact, Facts, Override, Presence, State
from appliance.routing.model import STRATEGIES
from appliance.routing.router import Router
from appliance.routing.steps import (
    TERMINAL, AskWebhook, Entry, Forward, Menu, Outcome, Play, Queue, Ring,
)

EXTS = {str(n): f"Desk {n}" for n in range(101, 109)}
NUMBERS = ["0441000001", "0441000002", "0441000003"]
CALLERS = ["0671234567", "+380501112233", "", "101", "380931112233"]
KINDS = ["group", "queue", "menu", "schedule", "night", "announcement", "external", "webhook", "manager",
         "duty", "ext"]
RANGES = ["09:00-18:00", "22:00-06:00", "00:00-24:00", "10:00-10:30", "13:00-02:00"]


@st.composite
def configurations(draw):
    """A routing section whose forced exits only point forward (so it is valid), while
    menu options may point anywhere, including back."""
    n = draw(st.integers(1, 8))
    kinds = [draw(st.sampled_from(KINDS)) for _ in range(n)]
    refs = [f"{k}:d{i}" if k != "ext" else f"ext:{draw(st.sampled_from(sorted(EXTS)))}" for i, k in enumerate(kinds)]
    terminals = ["hangup", "voicemail:box", "voicemail:101"]

    def later(i):
        return draw(st.sampled_from(refs[i + 1:] + terminals))

    def anywhere():
        return draw(st.sampled_from(refs + terminals))

    def members():
        exts = draw(st.lists(st.sampled_from(sorted(EXTS)), min_size=1, max_size=4, unique=True))
        out = [{"ext": int(e), "tier": draw(st.integers(1, 3))} for e in exts]
        if draw(st.booleans()):
            out.append({"number": "+380501110000", "tier": 2})
        return out

    sec = {k: {} for k in ("groups", "queues", "menus", "schedules", "night", "announcements", "externals",
                           "webhooks", "managers", "duty")}
    sec["voicemail"] = {"box": {"name": "Box"}}
    ext_exit = {}
    for i, (kind, ref) in enumerate(zip(kinds, refs)):
        ident = f"d{i}"
        exits = {"on_no_answer": later(i), "on_busy": later(i), "on_unavailable": later(i), "on_failure": later(i)}
        if kind == "group":
            sec["groups"][ident] = {"strategy": draw(st.sampled_from(STRATEGIES)), "members": members(),
                                    "rounds": draw(st.integers(1, 3)), **exits}
        elif kind == "queue":
            sec["queues"][ident] = {"strategy": draw(st.sampled_from(STRATEGIES)), "members": members(),
                                    "exit_key": 0, "exit_to": anywhere(), "callback": draw(st.booleans()), **exits}
        elif kind == "menu":
            opts = {str(d): draw(st.sampled_from(refs + terminals + ["parent", "repeat"]))
                    for d in draw(st.lists(st.integers(1, 9), max_size=3, unique=True))}
            sec["menus"][ident] = {"prompt": "p", "options": opts, "direct_dial": True,
                                   "on_timeout": later(i), "on_invalid": later(i), "retries": draw(st.integers(0, 2))}
        elif kind == "schedule":
            hours = {day: draw(st.sampled_from(RANGES)) for day in draw(st.lists(
                st.sampled_from(["mon", "tue", "fri", "sat", "sun", "mon-fri"]), max_size=3, unique=True))}
            sec["schedules"][ident] = {"hours": hours, "holidays": ["01-01", "2025-03-30"],
                                       "open": later(i), "closed": later(i)}
        elif kind == "night":
            sched = [k for k, kk in zip(refs, kinds) if kk == "schedule"]
            sec["night"][ident] = {"day": later(i), "night": later(i),
                                   **({"schedule": sched[0].split(":")[1]} if sched and draw(st.booleans()) else {})}
        elif kind == "announcement":
            sec["announcements"][ident] = {"prompt": "a", "then": later(i)}
        elif kind == "external":
            sec["externals"][ident] = {"number": "0671110000", **exits}
        elif kind == "webhook":
            sec["webhooks"][ident] = {"url": "http://x/", "fallback": later(i), "allow_numbers": True, **exits}
        elif kind == "manager":
            sec["managers"][ident] = {"next": later(i), "learn": draw(st.booleans())}
        elif kind == "duty":
            sec["duty"][ident] = {"roster": [{"weekdays": "mon-wed", "number": "0671110001"},
                                             {"dates": ["2025-03-30"], "number": "0671110002"}],
                                  "nobody": later(i), **exits}
        elif kind == "ext":
            number = ref.split(":")[1]
            ext_exit[number] = {"on_fail": later(i)}
    sec["extensions"] = ext_exit
    routes = [{"name": f"R{j}", "numbers": [num], "to": draw(st.sampled_from(refs))}
              for j, num in enumerate(draw(st.lists(st.sampled_from(NUMBERS), max_size=3, unique=True)))]
    sec["routes"] = routes
    sec["unmatched"] = draw(st.sampled_from(refs + terminals))
    return sec


instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31),
                        timezones=st.just(timezone.utc))


def walk(router: Router, facts: Facts, state: State, rng: random.Random) -> list:
    """Drive the call as the engine would, with random outcomes; a caller stops pressing keys after a while."""
    d = router.first_step(facts, state)
    seen = [d]
    presses = 0
    for _ in range(300):
        step = d.step
        assert d.trace, "every decision explains itself"
        if isinstance(step, TERMINAL):
            return seen
        kw = {}
        if isinstance(step, Ring):
            for leg in step.legs:
                assert 0 <= leg.start < leg.stop <= step.for_seconds
            outcome = rng.choice([Outcome.NO_ANSWER, Outcome.BUSY, Outcome.UNAVAILABLE, Outcome.FAILED,
                                  Outcome.ANSWERED])
            if outcome is Outcome.ANSWERED:
                kw["by"] = step.legs[0].target if step.legs else ""
        elif isinstance(step, Forward):
            outcome = rng.choice([Outcome.NO_ANSWER, Outcome.BUSY, Outcome.FAILED, Outcome.ANSWERED])
        elif isinstance(step, Queue):
            ring = router.queue_ring(step, facts, state)
            assert isinstance(ring.step, Ring)
            outcome = rng.choice([Outcome.NO_ANSWER, Outcome.TIMEOUT, Outcome.DIGITS, Outcome.CALLBACK,
                                  Outcome.UNAVAILABLE])
            kw["digits"] = "0"
        elif isinstance(step, Menu):
            presses += 1
            if presses < 8 and rng.random() < 0.7:
                digits = rng.choice(sorted(step.entries) + ["7", "55"])
                assert step.entry(digits) in (Entry.COMPLETE, Entry.MORE, Entry.INVALID)
                outcome, kw["digits"] = Outcome.DIGITS, digits
            else:
                outcome = rng.choice([Outcome.TIMEOUT, Outcome.FAILED])
        elif isinstance(step, AskWebhook):
            outcome = rng.choice([Outcome.TIMEOUT, Outcome.FAILED, Outcome.WEBHOOK_ANSWER])
            kw["answer"] = rng.choice([{"extension": "101"}, "102", {"number": "0671234567"}, "junk",
                                       {"destination": "hangup"}])
        elif isinstance(step, Play):
            outcome = Outcome.PLAYED
        else:
            raise AssertionError(step)
        d = router.next_step(step, outcome, facts, state, **kw)
        seen.append(d)
    raise AssertionError(f"no terminal step after 300 decisions: {[type(x.step).__name__ for x in seen[-10:]]}")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(section=configurations(), caller=st.sampled_from(CALLERS), dialled=st.sampled_from(NUMBERS + ["5555"]),
       when=instants, seed=st.integers(0, 2**32 - 1), night=st.sampled_from([None, "day", "night"]))
def test_every_valid_configuration_ends_every_call(section, caller, dialled, when, seed, night):
    cfg = config.parse(section, EXTS)   # valid by construction: parse must accept it
    router = Router(cfg)
    rng = random.Random(seed)
    presence = {e: Presence(registered=rng.random() > 0.3, dnd=rng.random() < 0.2, calls=rng.randrange(2),
                            calls_today=rng.randrange(9),
                            last_call_end=when - timedelta(seconds=rng.randrange(600)) if rng.random() < 0.5 else None)
                for e in EXTS}
    overrides = {}
    if night:
        overrides = {"": Override(night, permanent=rng.random() < 0.5, since=when - timedelta(hours=rng.randrange(48)))}
    state = State(presence=presence, night=overrides,
                  contacts={"+380671234567": Contact("C", manager=rng.choice(sorted(EXTS)), vip=True)},
                  learned={"+380501112233": "102"})
    facts = Facts(Call(caller, dialled), when, random.Random(seed))
    decisions = walk(router, facts, state, rng)
    assert isinstance(decisions[-1].step, TERMINAL)


@settings(max_examples=60, deadline=None)
@given(section=configurations())
def test_dump_then_parse_gives_the_same_configuration(section):
    c = config.parse(section, EXTS)
    assert config.parse(config.dump(c), EXTS) == c
