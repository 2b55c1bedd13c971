"""Agents' statuses with real phones: *45 pauses an agent (a group call rings the others), *46 resumes,
*45N names the reason, after-call work follows an answered call for the group's wrap-up."""

from __future__ import annotations

from dataclasses import replace

import pytest

from appliance.routing.model import Availability, RoutingConfig, Route
from appliance.store.agents import AgentStatuses
from tests.engine import routes

pytestmark = pytest.mark.sip


def sales_with_wrapup(store):
    """The sales group rings 101-103 at once; an agent is left alone 1 s after a call."""
    group = replace(routes._group("ringall", 20), availability=Availability(True, True, True, 1, 1))
    return routes._router(store, RoutingConfig(
        routes=(Route("sales", "group:sales", numbers=(routes.SALES_NUMBER,)),), groups={"sales": group}))


def feature(world, ext: str, code: str) -> dict:
    """`ext` dials a feature code; the status change the engine announced.  The phone hears the
    confirmation, then the engine ends the call."""
    cid = world.phone_call(ext, code)
    changed = world.engine.expect(kind="AgentStatusChanged", ext=ext)
    world.phones[ext].expect(ev="state", id=cid, state="confirmed")
    world.phones[ext].expect(ev="state", id=cid, state="disconnected")
    ended = world.engine.expect(kind="CallEnded", outcome="feature")
    assert ended["reason"] == f"agent status set to {changed['set']} by feature code"
    return changed


def group_call(world) -> tuple[set[str], str]:
    """The customer calls the sales group; the extensions rung and the call's id (then it is hung up)."""
    pid = world.ip_call()
    started = world.engine.expect(kind="CallStarted", direction="inbound")
    world.engine.expect(kind="StepStarted", call_id=started["call_id"], step="ring")
    # Every leg of a ring-all step is placed as the step starts, before its first LegRinging.
    world.engine.expect(kind="LegRinging", call_id=started["call_id"])
    rung = {e["target"] for e in world.engine.all(kind="LegStarted", call_id=started["call_id"])}
    world.provider.send(cmd="hangup", id=pid)
    world.engine.expect(kind="CallEnded", call_id=started["call_id"])
    return rung, started["call_id"]


def test_a_paused_agent_is_skipped_by_a_group_and_rung_again_after_resuming(world):
    world.route("ringall")
    paused = feature(world, "102", "*45")
    assert (paused["status"], paused["set"], paused["auto"], paused["by"]) == ("break", "break", False, "extension 102")
    rung, call_id = group_call(world)
    assert rung == {"101", "103"}
    world.flush()
    with world.store() as store:
        assert AgentStatuses(store).get("102")["status"] == "break"
        path = store.db["calls"].get(call_id)["path"]
    assert "102 paused" in path  # routing's trace says why 102 was not rung

    assert feature(world, "102", "*452")["status"] == "lunch"
    assert feature(world, "102", "*46")["status"] == "available"
    rung, _ = group_call(world)
    assert rung == {"101", "102", "103"}
    world.flush()
    with world.store() as store:
        assert AgentStatuses(store).get("102")["status"] == "available"


def test_after_call_work_is_a_status_for_the_wrapup(world):
    world.engine.send(cmd="router", factory="tests.engine.test_agents:sales_with_wrapup")
    world.engine.expect(kind="done", cmd="router")
    pid = world.ip_call()
    inc = world.phones["101"].expect(ev="incoming")
    world.phones["101"].send(cmd="answer", id=inc["id"])
    world.provider.expect(ev="state", id=pid, state="confirmed")
    world.provider.send(cmd="hangup", id=pid)
    world.engine.expect(kind="CallEnded", answered_by="101")
    wrapup = world.engine.expect(kind="AgentStatusChanged", ext="101")
    assert (wrapup["status"], wrapup["set"], wrapup["auto"]) == ("wrapup", "available", True)
    assert wrapup["until"]
    over = world.engine.expect(kind="AgentStatusChanged", ext="101")
    assert (over["status"], over["auto"], over["until"]) == ("available", False, None)
