"""The night switch's saved state routes live calls exactly as `pbx trace --data` says.

Both read the hand-set states from the store through one function
(routing.facts.saved_switches): for day, night by a permanent override, a
temporary override still in force and one whose schedule boundary has passed,
the trace's steps and the real call's path name the same destinations.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from appliance.tracecmd import trace
from tests.engine import routes

pytestmark = pytest.mark.sip

DOCUMENT = {
    "routes": [{"name": "Sales", "numbers": [routes.SALES_NUMBER], "to": "night:office"}],
    "night": {"office": {"name": "Office", "schedule": "hours", "day": "group:day", "night": "group:night"}},
    "schedules": {"hours": {"name": "Hours", "hours": {"mon-sun": "OPEN"}}},
    "groups": {
        "day": {"name": "Day", "strategy": "ringall", "members": ["101", "102"], "ring_time": 20, "on_fail": "hangup"},
        "night": {"name": "Night", "strategy": "ringall", "members": ["103"], "ring_time": 20, "on_fail": "hangup"},
    },
    "unmatched": "hangup",
}


@pytest.fixture
def office_routing(world):
    from appliance.routing.config import dump, parse

    with world.store() as st:
        known = {e["number"]: e["name"] for e in st.extensions()}
        # Open from two hours ago to two hours ahead, every day: day now, with
        # a boundary every day at which a temporary override ends.
        local = datetime.now(ZoneInfo(st.timezone))
        hours = f"{(local - timedelta(hours=2)):%H:%M}-{(local + timedelta(hours=2)):%H:%M}"
        doc = json.loads(json.dumps(DOCUMENT).replace('"OPEN"', json.dumps(hours)))
        st.set_routing_document(dump(parse(doc, known, timezone=st.timezone)))
    world.engine.send(cmd="router", factory="appliance.engine.b2bua:default_router")
    world.engine.expect(kind="done", cmd="router")
    yield world
    with world.store() as st:
        st.set_routing_state("night", None)
        st.set_routing_state("overrides", None)


def traced(world, caller: str) -> list[dict]:
    res = CliRunner().invoke(trace, ["--data", str(world.data), "--caller", caller, "--dialled", routes.SALES_NUMBER,
                                     "--trunk", "ipprov", "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)["steps"]


def live(world, caller: str) -> tuple[str, set[str]]:
    """A real call from the provider: the destination the engine rang, and the phones that rang."""
    pid = world.ip_call(caller=caller)
    step = world.engine.expect(kind="StepStarted", step="ring")
    want = {"101", "102"} if step["dest"] == "group:day" else {"103"}
    rang: set[str] = set()
    deadline = time.monotonic() + 3
    while rang != want and time.monotonic() < deadline:
        rang |= {ext for ext, p in world.phones.items() if p.all(ev="incoming")}
        time.sleep(0.05)
    world.provider.send(cmd="hangup", id=pid)
    world.engine.expect(kind="CallEnded")
    return step["dest"], rang


@pytest.mark.parametrize("saved, expected", [
    (None, "group:day"),                                                   # automatic: the schedule is open
    ({"state": "night", "permanent": True}, "group:night"),               # a permanent override
    ({"office": {"state": "night", "permanent": False, "since": "NOW"}}, "group:night"),  # temporary, in force
    ({"state": "night", "permanent": False, "since": "TWO_DAYS_AGO"}, "group:day"),     # temporary, ended at a boundary
])
def test_trace_and_a_real_call_take_the_same_path(office_routing, saved, expected):
    world = office_routing
    now = datetime.now(timezone.utc)
    text = json.dumps(saved).replace('"NOW"', json.dumps(now.isoformat())) \
        .replace('"TWO_DAYS_AGO"', json.dumps((now - timedelta(days=2)).isoformat()))
    with world.store() as st:
        st.set_routing_state("night", json.loads(text))
    time.sleep(0.3)  # the engine's lookups see the change within 50 ms
    steps = traced(world, "+380501230000")
    night_step = next(s for s in steps if s["kind"] == "night")
    assert night_step["to"] == expected, steps
    dest, rang = live(world, "+380501230000")
    assert dest == expected
    assert rang == ({"101", "102"} if expected == "group:day" else {"103"})
