"""Calls the appliance places itself, with real pjsua2 peers: click-to-call, and a queue caller's
call-back that keeps their place.

The engine rings the extension's desk phone first; once it answers, the
customer's number goes out over the IP trunk, whose far end is the `mobile`
agent (the provider's network delivering the call to the customer).  The
two sides then exchange tones.
"""

from __future__ import annotations

import pytest

from appliance.store.callbacks import CallbackPlaces
from tests.engine import harness
from tests.engine.test_inbound import wait_call
from tests.engine.test_queue import call, ringing_for

pytestmark = pytest.mark.sip

CUSTOMER = "+380501234567"
LATER = "+380507654321"


def originate(world, ext: str, number: str, whisper: bool | str = False) -> dict:
    """Click-to-call through the runner: {"kind": "originated", "call_id"} or {"kind": "refused", "error"}."""
    world.engine.send(cmd="originate", ext=ext, number=number, whisper=whisper)
    return world.engine.expect(cmd="originate")


def bridged_both_ways(world, agent: harness.Proc, agent_call: int, customer_call: int, tmp_path) -> None:
    heard_by_agent, heard_by_customer = harness.exchange_tones(agent, agent_call, world.mobile, customer_call,
                                                               tmp_path)
    assert harness.goertzel(heard_by_agent, 1400) > 0.5, "the agent does not hear the customer"
    assert harness.goertzel(heard_by_customer, 600) > 0.5, "the customer does not hear the agent"


def test_click_to_call_rings_the_desk_phone_then_the_customer_and_bridges_them(world, tmp_path):
    reply = originate(world, "101", "0501234567")
    assert reply["kind"] == "originated", reply
    cid = reply["call_id"]
    started = world.engine.expect(kind="CallOriginated", call_id=cid)
    assert (started["extension"], started["number"], started["origin"]) == ("101", CUSTOMER, "click")

    desk = world.phones["101"].expect(ev="incoming")
    assert CUSTOMER in desk["remote"], "the desk phone should show whom it is calling"
    assert not world.mobile.all(ev="incoming"), "the customer rang before the agent answered"
    world.phones["101"].send(cmd="answer", id=desk["id"])
    world.engine.expect(kind="AgentAnswered", call_id=cid)

    inc = world.mobile.expect(ev="incoming")
    assert inc["local"].startswith("<sip:0501234567@"), "the customer's number in national form, over the trunk"
    assert "+380441234567" in inc["remote"], "the trunk's caller id"
    world.mobile.send(cmd="answer", id=inc["id"])
    assert world.engine.expect(kind="CallAnswered", call_id=cid)["by"] == CUSTOMER
    world.engine.expect(kind="CallBridged", call_id=cid)
    bridged_both_ways(world, world.phones["101"], desk["id"], inc["id"], tmp_path)

    world.mobile.send(cmd="hangup", id=inc["id"])
    world.phones["101"].expect(ev="state", id=desk["id"], state="disconnected")
    row = wait_call(world, cid)
    assert (row["direction"], row["extension"], row["caller"], row["dialled"]) == ("outbound", "101", "101", CUSTOMER)
    assert row["outcome"] == "answered" and row["answered_by"] == CUSTOMER


def test_a_number_the_dial_rules_forbid_is_refused_and_nothing_rings(world):
    reply = originate(world, "102", "+442071234567")  # 102 may call local and mobile numbers only
    assert reply == {"kind": "refused", "cmd": "originate",
                     "error": "International calls are not allowed from extension 102"}
    world.flush()
    assert not world.phones["102"].all(ev="incoming") and not world.mobile.all(ev="incoming")
    assert not world.engine.all(kind="CallOriginated")


def test_a_busy_customer_is_a_clear_failure(world):
    world.mobile.mode(mode="busy")
    cid = originate(world, "101", "0501234567")["call_id"]
    desk = world.phones["101"].expect(ev="incoming")
    world.phones["101"].send(cmd="answer", id=desk["id"])
    world.mobile.expect(ev="incoming")
    failed = world.engine.expect(kind="OriginationFailed", call_id=cid)
    assert (failed["side"], failed["reason"]) == ("customer", "the customer was busy")
    world.phones["101"].expect(ev="state", id=desk["id"], state="disconnected")
    row = wait_call(world, cid)
    assert row["outcome"] == "failed" and row["path"][-1]["reason"] == "the customer was busy"


def test_queue_callback_keeps_the_callers_place_and_the_agent_hears_the_whisper_first(world, tmp_path):
    with world.store() as st:
        st.set_setting("test_queue", {"callback": True, "callback_key": "5"})
    world.engine.send(cmd="router", factory="tests.engine.ivr_routes:queue")
    world.engine.expect(kind="done", cmd="router")
    try:
        run_queue_callback(world, tmp_path)
    finally:
        with world.store() as st:
            st.set_setting("test_queue", {})


def run_queue_callback(world, tmp_path) -> None:
    # The queue's only agent, 103, is talking to 102: callers wait.
    world.phones["102"].mode(mode="answer")
    busy = world.phone_call("103", "102")
    world.phones["102"].expect(ev="incoming")
    world.phones["103"].expect(ev="state", id=busy, state="confirmed")

    first, joined = call(world, CUSTOMER)
    first_id = joined["call_id"]
    world.engine.expect(kind="QueuePosition", call_id=first_id, announced=True, timeout=6)  # keys offered
    world.provider.send(cmd="dtmf", id=first, digits="5")
    kept = world.engine.expect(kind="CallbackPlaceKept", call_id=first_id)
    assert (kept["queue"], kept["position"]) == ("support", 1)
    world.provider.expect(ev="state", id=first, state="disconnected", timeout=6)  # thanked, then hung up
    world.engine.expect(kind="CallEnded", call_id=first_id)

    later, joined = call(world, LATER)
    later_id = joined["call_id"]
    assert joined["position"] == 2, "the later caller waits behind the call-back's place"

    # 103 comes free: its phone rings first for the call-back, showing the customer.
    world.phones["103"].send(cmd="hangup", id=busy)
    world.phones["102"].mode(mode="ring")
    desk = ringing_for(world, "103", CUSTOMER, timeout=10)
    started = world.engine.expect(kind="CallOriginated", place=first_id)
    assert (started["extension"], started["number"], started["origin"]) == ("103", CUSTOMER, "queue")
    cid = started["call_id"]
    assert not world.phones["103"].all(ev="incoming"), "103 rang for the later caller too"
    world.phones["103"].send(cmd="answer", id=desk["id"])
    whisper = world.engine.expect(kind="CallbackWhispered", call_id=cid)
    assert "0 5 0 1 2 3 4 5 6 7" in whisper["text"], whisper  # the number, digit by digit, in calls.language

    inc = world.mobile.expect(ev="incoming", timeout=15)  # after the whisper
    assert inc["local"].startswith("<sip:0501234567@")
    world.mobile.send(cmd="answer", id=inc["id"])
    world.engine.expect(kind="CallBridged", call_id=cid)
    bridged_both_ways(world, world.phones["103"], desk["id"], inc["id"], tmp_path)
    assert not world.engine.all(kind="QueueLeft", call_id=later_id), "the later caller still waits"

    # The call-back is over: its place leaves, and the later caller is served.
    world.mobile.send(cmd="hangup", id=inc["id"])
    world.phones["103"].expect(ev="state", id=desk["id"], state="disconnected")
    left = world.engine.expect(kind="CallbackPlaceLeft", call_id=first_id)
    assert (left["status"], left["by"], left["call"]) == ("handled", "103", cid)
    nxt = ringing_for(world, "103", LATER, timeout=10)
    world.phones["103"].send(cmd="answer", id=nxt["id"])
    assert world.engine.expect(kind="CallAnswered", call_id=later_id)["by"] == "103"
    world.provider.send(cmd="hangup", id=later)
    world.engine.expect(kind="CallEnded", call_id=later_id)

    world.flush()
    with world.store() as st:
        row = CallbackPlaces(st).place(first_id)
    assert (row["status"], row["handled_by"], row["callback_call"]) == ("handled", "103", cid)
    record = wait_call(world, cid)
    assert (record["direction"], record["extension"], record["dialled"], record["answered_by"]) == (
        "outbound", "103", CUSTOMER, CUSTOMER)
    kinds = [p["kind"] for p in record["path"]]
    assert kinds.index("agent_answered") < kinds.index("whisper") < kinds.index("step"), (
        "the agent answers, hears the whisper, and only then is the customer dialled")


def test_places_come_back_in_their_queues_after_a_restart(tmp_path):
    """The engine starts: open places are back in line (VIP first, then by joining); old requests stay for a person."""
    from types import SimpleNamespace

    from appliance.engine.callback import Callbacks
    from appliance.engine.queues import Queues
    from appliance.store import Store
    from tests.engine import ivr_routes

    with Store(tmp_path) as st:
        st.set_setting("test_queue", {"callback": True})
        base = {"queue": "support", "caller_name": "", "dialled": "0441234567", "requested_at": "2025-03-03T09:00:00"}
        st.add_callback({**base, "call_id": "late", "caller": "+380500000002", "priority": 0,
                         "joined_at": "2025-03-03T09:05:00.000+00:00", "attempts": 1})
        st.add_callback({**base, "call_id": "early", "caller": "+380500000001", "priority": 0,
                         "joined_at": "2025-03-03T09:01:00.000+00:00", "attempts": 0})
        st.add_callback({**base, "call_id": "vip", "caller": "+380500000003", "priority": 1,
                         "joined_at": "2025-03-03T09:09:00.000+00:00", "attempts": 0})
        st.add_callback({**base, "call_id": "before", "caller": "+380500000004"})  # from before places existed
        router = ivr_routes.queue(st)
        timers = []
        b2bua = SimpleNamespace(store=st, router=router, add_timer=timers.append,
                                queues=SimpleNamespace(waiting=Queues()))
        callbacks = Callbacks(b2bua)
        callbacks.start()
    assert [w.call_id for w in b2bua.queues.waiting.line("support")] == ["cb-vip", "cb-early", "cb-late"]
    assert callbacks.places["cb-late"].attempts == 1 and callbacks.places["cb-vip"].step.dest == "queue:support"
    assert len(timers) == 1, "one look for a free agent every few seconds while places wait"


def test_calls_originate_answers_a_call_id_or_the_refusal():
    from types import SimpleNamespace

    from appliance.control import ControlError
    from appliance.engine.callback import Refused, originate_command

    def call(fn, ext, number, whisper):
        if number == "+442071234567":
            raise Refused("International calls are not allowed from extension 102")
        return f"{ext}>{number}>{whisper}"
    handler = originate_command(SimpleNamespace(call=call), SimpleNamespace(callbacks=SimpleNamespace(originate=None)))
    assert handler({"ext": "101", "number": " 0501234567 ", "whisper": True}) == {"call_id": "101>0501234567>True"}
    with pytest.raises(ControlError, match="International calls are not allowed from extension 102"):
        handler({"ext": "102", "number": "+442071234567"})
    with pytest.raises(ControlError, match="which extension calls which number"):
        handler({"ext": "101"})
