"""Each kind of destination, through Router.first_step / next_step."""

from datetime import timedelta

import pytest

from appliance.routing.facts import Contact, Override, Presence, State
from appliance.routing.steps import (
    AskWebhook, Connected, Entry, Forward, Hangup, Menu, Outcome, Play, Queue, Ring, Voicemail,
)

from .helpers import EXTS, MONDAY_NOON, at, facts, router, simple

VM = {"voicemail": {"common": {"name": "Common"}}}


# ---- routes ----------------------------------------------------------------------------------

def test_routes_by_number_caller_and_trunk():
    r = router({
        "routes": [
            {"name": "VIP line", "numbers": ["0441234567"], "callers": ["050*"], "to": 101},
            {"name": "Shop 1", "numbers": ["0441234567", "380441234568"], "to": 102},
            {"name": "Analog", "trunks": ["fxo"], "to": 103},
        ],
        "unmatched": "hangup",
    })
    assert r.first_step(facts("0501112233", "+380441234567"), State()).trace[0].details["route"] == "VIP line"
    assert r.first_step(facts("0671112233", "0441234567"), State()).trace[0].details["route"] == "Shop 1"
    assert r.first_step(facts("0671112233", "0441234568"), State()).trace[0].details["route"] == "Shop 1"
    assert r.first_step(facts("0671112233", "5555", trunk="fxo"), State()).trace[0].details["route"] == "Analog"
    d = r.first_step(facts("0671112233", "0449999999"), State())
    assert isinstance(d.step, Hangup) and d.trace[0].details["route"] is None


# ---- extension ------------------------------------------------------------------------------

def test_extension_rings_then_own_voicemail():
    r = router(simple(101, extension_defaults={"ring_time": 20, "on_fail": "voicemail"}))
    d = r.first_step(facts(), State())
    assert isinstance(d.step, Ring) and [(l.target, l.stop) for l in d.step.legs] == [("101", 20)]
    nxt = r.next_step(d.step, Outcome.NO_ANSWER, facts(), State())
    assert isinstance(nxt.step, Voicemail) and nxt.step.box == "101" and nxt.step.greeting == "unavailable"


def test_extension_busy_goes_to_its_busy_exit_with_busy_greeting():
    r = router(simple(101, extensions={101: {"ring_time": 15, "skip_busy": True, "max_calls": 1,
                                             "on_fail": "voicemail", "on_busy": "ext:102"}}))
    d = r.first_step(facts(), State(presence={"101": Presence(calls=1)}))
    assert isinstance(d.step, Ring) and d.step.legs[0].target == "102"
    d = r.next_step(d.step, Outcome.BUSY, facts(), State())
    assert isinstance(d.step, Voicemail) and d.step.box == "102" and d.step.greeting == "busy"


def test_extension_unregistered_or_dnd_skips_ringing():
    r = router(simple(101))
    for p in (Presence(registered=False), Presence(dnd=True)):
        d = r.first_step(facts(), State(presence={"101": p}))
        assert isinstance(d.step, Voicemail) and d.step.box == "101"


def test_answer_records_the_extension_for_learning():
    r = router(simple(101))
    d = r.first_step(facts(), State())
    done = r.next_step(d.step, Outcome.ANSWERED, facts(), State(), by="101")
    assert isinstance(done.step, Connected) and done.terminal
    assert done.updates.answered == ("+380671234567", "101")


# ---- hunt group -----------------------------------------------------------------------------

def group_section(**g):
    return simple("group:sales", groups={"sales": {"name": "Sales", "members": [101, 102], **g}}, **VM)


def test_group_exits_per_way_of_failing():
    r = router(group_section(on_no_answer="voicemail:common", on_busy=103, on_unavailable=104,
                             on_failure="hangup"))
    d = r.first_step(facts(), State())
    assert r.next_step(d.step, Outcome.NO_ANSWER, facts(), State()).step.box == "common"
    assert r.next_step(d.step, Outcome.BUSY, facts(), State()).step.legs[0].target == "103"
    assert r.next_step(d.step, Outcome.UNAVAILABLE, facts(), State()).step.legs[0].target == "104"
    assert isinstance(r.next_step(d.step, Outcome.FAILED, facts(), State()).step, Hangup)


def test_group_with_everyone_away_goes_straight_on():
    r = router(group_section(on_fail="voicemail:common", on_busy=103))
    away = State(presence={"101": Presence(registered=False), "102": Presence(dnd=True)})
    d = r.first_step(facts(), away)
    assert isinstance(d.step, Voicemail)
    busy = State(presence={"101": Presence(calls=1), "102": Presence(registered=False)})
    assert r.first_step(facts(), busy).step.legs[0].target == "103"


def test_ring_step_rejects_menu_outcomes():
    r = router(group_section(on_fail="hangup"))
    d = r.first_step(facts(), State())
    with pytest.raises(ValueError, match="Ring"):
        r.next_step(d.step, Outcome.DIGITS, facts(), State(), digits="1")


# ---- queue ----------------------------------------------------------------------------------

def queue_section(**q):
    return simple("queue:support", queues={"support": {
        "name": "Support", "strategy": "roundrobin", "members": [201, 202], "max_wait": 120,
        "exit_key": 0, "exit_to": "voicemail:common", "callback": True, "on_fail": "hangup", **q}}, **VM)


def test_queue_vip_first_and_ring_plan():
    r = router(queue_section())
    contacts = {"+380671234567": Contact("Big client", vip=True)}
    d = r.first_step(facts(), State(contacts=contacts))
    assert isinstance(d.step, Queue) and d.step.priority == 1 and d.step.max_wait == 120
    assert r.first_step(facts("0501111111"), State(contacts=contacts)).step.priority == 0
    ring = r.queue_ring(d.step, facts(), State())
    assert [l.target for l in ring.step.legs] == ["201", "202"]
    ring2 = r.queue_ring(d.step, facts(), State(positions=ring.updates.positions))
    assert [l.target for l in ring2.step.legs] == ["202", "201"]
    none_free = r.queue_ring(d.step, facts(), State(presence={"201": Presence(calls=1), "202": Presence(calls=1)}))
    assert none_free.step.legs == ()


def test_queue_keys_callback_and_max_wait():
    r = router(queue_section())
    q = r.first_step(facts(), State()).step
    assert isinstance(r.next_step(q, Outcome.DIGITS, facts(), State(), digits="0").step, Voicemail)
    cb = r.next_step(q, Outcome.DIGITS, facts(), State(), digits="1").step
    assert isinstance(cb, Hangup) and cb.callback
    assert isinstance(r.next_step(q, Outcome.NO_ANSWER, facts(), State()).step, Hangup)


def test_queue_without_agents_is_unavailable():
    r = router(queue_section(on_unavailable="voicemail:common"))
    d = r.first_step(facts(), State(presence={"201": Presence(registered=False), "202": Presence(dnd=True)}))
    assert isinstance(d.step, Voicemail)


def test_queue_position_and_estimated_wait():
    r = router(queue_section())
    q = r.first_step(facts(), State()).step
    s = r.queue_status(q, 3, facts(), State(answer_times={"support": (30.0, 50.0)}))
    # Two agents free: the 3rd caller waits two "turns" of 40 s on average.
    assert s["position"] == 3 and s["agents"] == 2 and s["estimated_wait"] == 80 and s["minutes"] == 2
    one = r.queue_status(q, 3, facts(), State(presence={"202": Presence(calls=1)},
                                              answer_times={"support": (30.0, 50.0)}))
    assert one["estimated_wait"] == 120
    assert r.queue_status(q, 1, facts(), State())["estimated_wait"] is None


# ---- menu -----------------------------------------------------------------------------------

def menu_section(**mn):
    return simple("menu:main", menus={
        "main": {"name": "Main", "prompt": "main", "options": {1: 101, 2: "menu:sub", 9: "repeat"},
                 "direct_dial": True, "retries": 1, "invalid_prompt": "bad", "timeout_prompt": "hello?",
                 "on_fail": "voicemail:common", **mn},
        "sub": {"name": "Sub", "prompt": "sub", "options": {1: 102, 0: "parent"}, "on_fail": "hangup"},
    }, **VM)


def test_menu_direct_dial_waits_for_longer_entries():
    r = router(menu_section())
    m = r.first_step(facts(), State()).step
    assert isinstance(m, Menu) and m.prompts == ("main",)
    assert m.entry("1") is Entry.MORE          # 101, 102 ... start with 1
    assert m.entry("10") is Entry.MORE
    assert m.entry("101") is Entry.COMPLETE
    assert m.entry("2") is Entry.MORE          # 201, 202
    assert m.entry("9") is Entry.COMPLETE
    assert m.entry("7") is Entry.INVALID
    assert r.next_step(m, Outcome.DIGITS, facts(), State(), digits="1").step.legs[0].target == "101"
    assert r.next_step(m, Outcome.DIGITS, facts(), State(), digits="103").step.legs[0].target == "103"


def test_menu_invalid_and_timeout_retries_with_their_prompts():
    r = router(menu_section())
    m = r.first_step(facts(), State()).step
    again = r.next_step(m, Outcome.DIGITS, facts(), State(), digits="7").step
    assert isinstance(again, Menu) and again.prompts == ("bad", "main") and again.path.tries == 1
    out = r.next_step(again, Outcome.TIMEOUT, facts(), State()).step
    assert isinstance(out, Voicemail)
    again = r.next_step(m, Outcome.TIMEOUT, facts(), State()).step
    assert again.prompts == ("hello?", "main")


def test_nested_menu_and_back_to_parent():
    r = router(menu_section())
    m = r.first_step(facts(), State()).step
    sub = r.next_step(m, Outcome.DIGITS, facts(), State(), digits="2").step
    assert isinstance(sub, Menu) and sub.dest == "menu:sub" and sub.path.menus == ("menu:main", "menu:sub")
    back = r.next_step(sub, Outcome.DIGITS, facts(), State(), digits="0").step
    assert back.dest == "menu:main" and back.path.menus == ("menu:main",)
    rep = r.next_step(back, Outcome.DIGITS, facts(), State(), digits="9").step
    assert rep.dest == "menu:main" and rep.path.tries == 0


# ---- schedule, night switch, announcement ---------------------------------------------------------

SCHED = {"hours": {"name": "Office hours", "hours": {"mon-fri": "09:00-18:00", "sat": "22:00-02:00"},
                   "holidays": ["01-01", "2025-03-12"], "open": 101, "closed": "voicemail:common"}}


def dest(r, when, state=None):
    return r.first_step(facts(when=when), state or State()).step


def test_schedule_hours_holidays_and_midnight():
    r = router(simple("schedule:hours", schedules=SCHED, **VM))
    assert isinstance(dest(r, at(2025, 3, 10, 9, 0)), Ring)
    assert isinstance(dest(r, at(2025, 3, 10, 8, 59)), Voicemail)
    assert isinstance(dest(r, at(2025, 3, 10, 18, 0)), Voicemail)
    assert isinstance(dest(r, at(2025, 3, 12, 12)), Voicemail)        # one-off holiday
    assert isinstance(dest(r, at(2026, 1, 1, 12)), Voicemail)         # yearly holiday (a Thursday)
    assert isinstance(dest(r, at(2025, 3, 15, 23)), Ring)             # Saturday night range
    assert isinstance(dest(r, at(2025, 3, 16, 1, 30)), Ring)          # ... into Sunday
    assert isinstance(dest(r, at(2025, 3, 16, 2, 0)), Voicemail)
    text = r.first_step(facts(when=at(2025, 3, 10, 20, 15)), State()).trace[1].text
    assert text.startswith("Mon 20:15 Europe/Kyiv is outside 'Office hours'")


def test_schedule_overrides_temporary_until_next_boundary_and_permanent():
    r = router(simple("schedule:hours", schedules=SCHED, **VM))
    set_at = at(2025, 3, 10, 12)                          # open; forced closed at noon
    closed = State(overrides={"hours": Override("closed", since=set_at)})
    assert isinstance(dest(r, at(2025, 3, 10, 17, 59), closed), Voicemail)
    # 18:00 is the boundary: the override is over, and the schedule is closed anyway...
    assert isinstance(dest(r, at(2025, 3, 11, 9, 30), closed), Ring)  # ...next morning it is open again
    perm = State(overrides={"hours": Override("closed", permanent=True)})
    assert isinstance(dest(r, at(2025, 3, 11, 9, 30), perm), Voicemail)
    opened = State(overrides={"hours": Override("open", since=at(2025, 3, 10, 19))})
    assert isinstance(dest(r, at(2025, 3, 10, 23), opened), Ring)     # held open tonight
    assert isinstance(dest(r, at(2025, 3, 11, 8, 59), opened), Ring)
    assert isinstance(dest(r, at(2025, 3, 11, 18, 30), opened), Voicemail)  # over at 09:00 boundary


def night_section():
    return simple("night:office", schedules={"hours": {"name": "Office hours", "hours": {"mon-fri": "09:00-18:00"}}},
                  night={"office": {"name": "Office", "schedule": "hours", "day": 101, "night": "voicemail:common"}},
                  **VM)


def test_night_switch_follows_schedule_and_overrides():
    r = router(night_section())
    assert isinstance(dest(r, at(2025, 3, 10, 12)), Ring)
    assert isinstance(dest(r, at(2025, 3, 10, 20)), Voicemail)
    # Night pressed at 16:00: night until the schedule's next boundary (18:00), then automatic.
    pressed = State(night={"": Override("night", since=at(2025, 3, 10, 16))})
    assert isinstance(dest(r, at(2025, 3, 10, 17), pressed), Voicemail)
    assert isinstance(dest(r, at(2025, 3, 11, 10), pressed), Ring)
    # Day forced permanently on the switch itself.
    day = State(night={"office": Override("day", permanent=True), "": Override("night", permanent=True)})
    assert isinstance(dest(r, at(2025, 3, 10, 23), day), Ring)


def test_night_switch_without_schedule_is_day_until_switched():
    r = router(simple("night:n", night={"n": {"name": "N", "day": 101, "night": 102}}))
    assert dest(r, MONDAY_NOON).legs[0].target == "101"
    assert dest(r, MONDAY_NOON, State(night={"": Override("night", since=MONDAY_NOON)})).legs[0].target == "102"


def test_announcement_then_next():
    r = router(simple("announcement:a", announcements={"a": {"name": "Hello", "prompt": "hello", "then": 101}}))
    p = r.first_step(facts(), State()).step
    assert isinstance(p, Play) and p.prompt == "hello"
    assert r.next_step(p, Outcome.PLAYED, facts(), State()).step.legs[0].target == "101"


# ---- external number, duty roster ---------------------------------------------------------------

def test_external_number_with_confirmation():
    r = router(simple("external:boss", externals={"boss": {"name": "Director mobile", "number": "0501234567",
                                                            "ring_time": 25, "on_fail": "voicemail:common"}}, **VM))
    f = r.first_step(facts(), State()).step
    assert isinstance(f, Forward) and f.number == "+380501234567" and f.confirm and f.for_seconds == 25
    assert isinstance(r.next_step(f, Outcome.NO_ANSWER, facts(), State()).step, Voicemail)
    done = r.next_step(f, Outcome.ANSWERED, facts(), State())
    assert isinstance(done.step, Connected) and done.step.by == "+380501234567" and done.updates.answered is None


def duty_section():
    return simple("duty:d", duty={"d": {
        "name": "After hours", "changeover": "08:00", "nobody": "voicemail:common", "on_fail": "hangup",
        "roster": [{"weekdays": "mon-thu", "number": "0671110001"}, {"weekdays": "fri", "number": "0671110002"},
                   {"dates": ["2025-03-10"], "number": "0671110009"}]}}, **VM)


def test_duty_roster_by_date_weekday_and_changeover():
    r = router(duty_section())
    assert dest(r, at(2025, 3, 10, 20)).number == "+380671110009"      # the date beats Monday
    assert dest(r, at(2025, 3, 11, 7, 59)).number == "+380671110009"   # still Monday's duty
    assert dest(r, at(2025, 3, 11, 8, 0)).number == "+380671110001"
    assert dest(r, at(2025, 3, 14, 22)).number == "+380671110002"
    assert dest(r, at(2025, 3, 15, 9)).box == "common"                  # Saturday: nobody on duty


# ---- personal manager -------------------------------------------------------------------------

def manager_section(**pm):
    return simple("manager:pm", managers={"pm": {"name": "PM", "next": "voicemail:common", **pm}}, **VM)


@pytest.mark.parametrize("stored", ["0671234567", "380671234567", "+380671234567"])
def test_manager_from_contacts_in_any_number_form(stored):
    from appliance.routing.facts import contacts_by_number
    r = router(manager_section())
    contacts = contacts_by_number([(stored, Contact("Client", manager="102"))])
    for caller in ("0671234567", "380671234567", "+380671234567"):
        d = r.first_step(facts(caller), State(contacts=contacts))
        assert isinstance(d.step, Ring) and d.step.legs[0].target == "102"


def test_manager_unknown_unavailable_or_not_answering_goes_next():
    r = router(manager_section())
    contacts = {"+380671234567": Contact("Client", manager="102")}
    assert isinstance(r.first_step(facts("0500000000"), State(contacts=contacts)).step, Voicemail)
    away = State(contacts=contacts, presence={"102": Presence(dnd=True)})
    assert isinstance(r.first_step(facts(), away).step, Voicemail)
    ring = r.first_step(facts(), State(contacts=contacts)).step
    assert isinstance(r.next_step(ring, Outcome.NO_ANSWER, facts(), State()).step, Voicemail)


def test_manager_learned_from_last_answered_call_only_when_enabled():
    learned = State(learned={"+380671234567": "103"})
    assert isinstance(router(manager_section()).first_step(facts(), learned).step, Voicemail)
    d = router(manager_section(learn=True)).first_step(facts(), learned)
    assert d.step.legs[0].target == "103" and d.trace[-1].details["source"] == "last answered call"


# ---- webhook ---------------------------------------------------------------------------------

def webhook_section(**w):
    return simple("webhook:crm", webhooks={"crm": {"name": "CRM", "url": "https://crm.example/route",
                                                   "fallback": "voicemail:common", **w}},
                  groups={"sales": {"name": "Sales", "members": [101], "on_fail": "hangup"}}, **VM)


def test_webhook_request_and_answers():
    r = router(webhook_section(on_fail=104))
    contacts = {"+380671234567": Contact("Client", manager="102", vip=True)}
    ask = r.first_step(facts(), State(contacts=contacts)).step
    assert isinstance(ask, AskWebhook) and ask.timeout == 1.5
    assert ask.request["caller"] == "+380671234567" and ask.request["contact"]["manager"] == "102"
    assert ask.request["time"] == MONDAY_NOON.isoformat()

    def answer(a):
        return r.next_step(ask, Outcome.WEBHOOK_ANSWER, facts(), State(), answer=a).step

    assert answer({"extension": 101}).legs[0].target == "101"
    assert answer("102").legs[0].target == "102"
    assert answer({"destination": "group:sales"}).dest == "group:sales"
    for bad in ({"extension": "999"}, {"number": "+380501234567"}, "nonsense", {"x": 1}, ["101"],
                {"destination": "group:nope"}):
        assert isinstance(answer(bad), Voicemail), bad
    assert isinstance(r.next_step(ask, Outcome.TIMEOUT, facts(), State()).step, Voicemail)
    assert isinstance(r.next_step(ask, Outcome.FAILED, facts(), State()).step, Voicemail)
    # The extension the webhook chose does not answer: the webhook's on_fail.
    ring = answer({"extension": "101"})
    assert r.next_step(ring, Outcome.NO_ANSWER, facts(), State()).step.legs[0].target == "104"


def test_webhook_numbers_only_when_allowed():
    r = router(webhook_section(allow_numbers=True, timeout="2.5"))
    ask = r.first_step(facts(), State()).step
    assert ask.timeout == 2.5
    f = r.next_step(ask, Outcome.WEBHOOK_ANSWER, facts(), State(), answer={"number": "0501234567"}).step
    assert isinstance(f, Forward) and f.number == "+380501234567"
    assert isinstance(r.next_step(f, Outcome.NO_ANSWER, facts(), State()).step, Voicemail)


def test_hangup():
    d = router(simple("hangup")).first_step(facts(), State())
    assert isinstance(d.step, Hangup) and d.terminal
