"""A supervisor on an agent's call, with real phones: listening in, whispering, barging in.

A customer (the provider) talks with agent 102; supervisor 103 joins by feature code (`*31102`) or
is rung by the engine (`monitor.supervise`, the runner's "supervise").  Each side plays its own
tone and records what it hears, only after the engine said the supervisor's leg is wired
(SupervisorJoined, SupervisorModeChanged): the customer 600 Hz, the agent 1400 Hz.

The supervisor's tone has a new frequency after every change of mode, started once the engine said
the change is made.  A party's own playout (the jitter buffer, packets on their way) still holds
what the bridge sent before the change for a few hundred ms; a frequency that did not exist before
the change can only have come through the bridge as it is now, so what is measured is the mode,
not how long the old audio takes to drain.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from appliance.routing.desk import desk_call
from appliance.routing.model import RoutingConfig, Route
from appliance.routing.steps import Feature, Refuse
from tests.engine import harness, routes
from tests.engine.conftest import make_office

pytestmark = pytest.mark.sip

CUSTOMER, AGENT = 600, 1400
SUPERVISOR = {"listen": 1000, "whisper": 1800, "barge": 2200, "listen again": 1150}


def to_102(store):
    """The customer's calls ring agent 102."""
    return routes._router(store, RoutingConfig(routes=(Route("sales", "ext:102", numbers=(routes.SALES_NUMBER,)),)))


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    o = make_office(tmp_path_factory.mktemp("supervise"))
    with o.store() as store:
        store.db["extensions"].update("103", {"supervise": 1})
    o.engine.send(cmd="router", factory="tests.engine.test_supervise:to_102")
    o.engine.expect(kind="done", cmd="router")
    yield o
    for p in (o.engine, *o.phones.values(), o.provider, o.mobile):
        p.stop()
    o.registrar.stop()


@pytest.fixture
def world(office):
    office.reset()
    yield office
    office.reset()


def test_a_code_followed_by_an_extension_is_that_feature_for_it():
    args = dict(extensions={"101", "102"}, features={"*28"}, is_office_number=lambda n: False,
                extension_codes={"*31", "*32"})
    assert desk_call("101", "*31102", **args) == Feature("*31102")
    assert isinstance(desk_call("101", "*31109", **args), Refuse)   # no such extension
    assert desk_call("101", "*28", **args) == Feature("*28")


def talking(world) -> tuple[int, int, str]:
    """The customer calls, agent 102 answers: (the provider's call, the agent's, the engine's call id)."""
    pid = world.ip_call()
    started = world.engine.expect(kind="CallStarted", direction="inbound")
    inc = world.phones["102"].expect(ev="incoming")
    world.phones["102"].send(cmd="answer", id=inc["id"])
    world.provider.expect(ev="state", id=pid, state="confirmed")
    world.engine.expect(kind="CallBridged", call_id=started["call_id"])
    world.provider.send(cmd="tone", id=pid, freq=CUSTOMER)
    world.phones["102"].send(cmd="tone", id=inc["id"], freq=AGENT)
    return pid, inc["id"], started["call_id"]


def heard(world, legs: dict, folder: Path, name: str) -> dict[str, Path]:
    """Each of the three records what its call receives for a while; the files by who heard."""
    files = {who: folder / f"{name}-{who}.wav" for who in legs}
    for who, (proc, cid) in legs.items():
        proc.send(cmd="record", id=cid, path=str(files[who]))
    time.sleep(2.0)  # the length of the recording, not a wait for a state
    for proc, _ in legs.values():
        proc.send(cmd="stoprecord")
    for proc, _ in legs.values():
        proc.expect(ev="ok", cmd="stoprecord")
    return {who: harness.finished_recording(path) for who, path in files.items()}


def power(path: Path, freq: int) -> float:
    return harness.goertzel(path, freq)


def check(files: dict[str, Path], mode: str, tone: int) -> None:
    sup, cust, agent = files["supervisor"], files["customer"], files["agent"]
    # The supervisor hears both parties in every mode, and they hear each other.
    assert power(sup, CUSTOMER) > 0.2 and power(sup, AGENT) > 0.2, f"{mode}: the supervisor does not hear both"
    assert power(cust, AGENT) > 0.2 and power(agent, CUSTOMER) > 0.2, f"{mode}: the parties lost each other"
    agent_hears = power(agent, tone)
    customer_hears = power(cust, tone)
    if mode == "listen":
        assert agent_hears < 0.02 and customer_hears < 0.02, \
            f"listening: a party hears the supervisor (agent {agent_hears:.3f}, customer {customer_hears:.3f})"
    elif mode == "whisper":
        assert agent_hears > 0.2, "whisper: the agent does not hear the supervisor"
        assert customer_hears < 0.02, "whisper: the customer hears the supervisor"
    else:
        assert agent_hears > 0.2 and customer_hears > 0.2, "barge: a party does not hear the supervisor"


def test_listen_then_whisper_then_barge_by_feature_code_and_keys(world, tmp_path):
    pid, aid, call_id = talking(world)
    sid = world.phone_call("103", "*31102")
    world.phones["103"].expect(ev="state", id=sid, state="confirmed")
    joined = world.engine.expect(kind="SupervisorJoined")
    assert (joined["call_id"], joined["ext"], joined["agent"], joined["mode"]) == (call_id, "103", "102", "listen")
    world.phones["103"].send(cmd="tone", id=sid, freq=SUPERVISOR["listen"])
    legs = {"customer": (world.provider, pid), "agent": (world.phones["102"], aid),
            "supervisor": (world.phones["103"], sid)}
    check(heard(world, legs, tmp_path, "listen"), "listen", SUPERVISOR["listen"])

    for key, mode, phase in (("2", "whisper", "whisper"), ("3", "barge", "barge"), ("1", "listen", "listen again")):
        world.phones["103"].send(cmd="dtmf", id=sid, digits=key)
        changed = world.engine.expect(kind="SupervisorModeChanged")
        assert (changed["call_id"], changed["mode"]) == (call_id, mode)
        world.phones["103"].send(cmd="tone", id=sid, freq=SUPERVISOR[phase])
        check(heard(world, legs, tmp_path, phase), mode, SUPERVISOR[phase])

    # The call ends: the supervisor's leg ends with it.
    world.provider.send(cmd="hangup", id=pid)
    world.phones["103"].expect(ev="state", id=sid, state="disconnected")
    left = world.engine.expect(kind="SupervisorLeft")
    assert (left["call_id"], left["reason"]) == (call_id, "the call ended")
    # The supervisor's own dialling is recorded as a feature call; the customer's call as answered by 102.
    assert world.engine.expect(kind="CallEnded", call_id=call_id)["answered_by"] == "102"
    own = world.engine.expect(kind="CallEnded", outcome="feature")
    assert own["reason"] == f"listen on call {call_id} of extension 102"


def test_the_engine_rings_the_supervisor_into_a_call_in_whisper(world, tmp_path):
    pid, aid, call_id = talking(world)
    world.engine.send(cmd="supervise", call_id=call_id, ext="103", mode="whisper")
    world.engine.expect(kind="supervising")
    inc = world.phones["103"].expect(ev="incoming")
    assert inc["remote"].startswith('"whisper 102"')
    world.phones["103"].send(cmd="answer", id=inc["id"])
    joined = world.engine.expect(kind="SupervisorJoined")
    assert (joined["call_id"], joined["mode"]) == (call_id, "whisper")
    world.phones["103"].send(cmd="tone", id=inc["id"], freq=SUPERVISOR["whisper"])
    legs = {"customer": (world.provider, pid), "agent": (world.phones["102"], aid),
            "supervisor": (world.phones["103"], inc["id"])}
    check(heard(world, legs, tmp_path, "whisper"), "whisper", SUPERVISOR["whisper"])
    # Asked again with another mode: the same leg changes mode.
    world.engine.send(cmd="supervise", call_id=call_id, ext="103", mode="barge")
    world.engine.expect(kind="supervising")
    assert world.engine.expect(kind="SupervisorModeChanged")["mode"] == "barge"
    world.phones["103"].send(cmd="tone", id=inc["id"], freq=SUPERVISOR["barge"])
    check(heard(world, legs, tmp_path, "barge"), "barge", SUPERVISOR["barge"])
    # The supervisor hangs up: the call goes on.
    world.phones["103"].send(cmd="hangup", id=inc["id"])
    assert world.engine.expect(kind="SupervisorLeft")["reason"] == "the supervisor hung up"
    files = heard(world, {k: v for k, v in legs.items() if k != "supervisor"}, tmp_path, "after")
    assert power(files["customer"], AGENT) > 0.5 and power(files["agent"], CUSTOMER) > 0.5
    world.phones["102"].send(cmd="hangup", id=aid)
    world.provider.expect(ev="state", id=pid, state="disconnected")


def test_who_may_listen_and_to_what(world):
    # 101 has no permission.
    cid = world.phone_call("101", "*31102")
    st = world.phones["101"].expect(ev="state", id=cid, state="disconnected")
    assert (st["code"], st["reason"]) == (403, "Extension 101 may not listen to calls")
    # 102 is in no call.
    cid = world.phone_call("103", "*32102")
    st = world.phones["103"].expect(ev="state", id=cid, state="disconnected")
    assert (st["code"], st["reason"]) == (404, "Extension 102 is not in a call")
    # The engine refuses what the panel might ask wrongly.
    world.engine.send(cmd="supervise", call_id="nope", ext="103", mode="listen")
    assert world.engine.expect(kind="refused")["error"] == "call nope has ended"
    pid, aid, call_id = talking(world)
    for ext, mode, error in (("101", "listen", "extension 101 may not listen to calls"),
                             ("103", "shout", "mode is one of listen, whisper, barge, not 'shout'")):
        world.engine.send(cmd="supervise", call_id=call_id, ext=ext, mode=mode)
        assert world.engine.expect(kind="refused")["error"] == error
    world.provider.send(cmd="hangup", id=pid)
    world.engine.expect(kind="CallEnded", call_id=call_id)
