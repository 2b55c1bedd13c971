"""Blind and attended transfer (REFER, Replaces) carried out by the B2BUA, with real pjsua2 peers."""

from __future__ import annotations

import time

import pytest

from tests.engine import harness, routes
from tests.engine.test_inbound import wait_call

pytestmark = pytest.mark.sip

CUSTOMER = "+380501234567"


def answered_by(world, ext: str) -> tuple[int, dict, str]:
    """A customer calls the sales number (all phones ring) and `ext` answers.

    Returns the provider's call id, the desk phone's incoming event, the engine's call id."""
    world.route("ringall")
    pid = world.ip_call()
    started = world.engine.expect(kind="CallStarted")
    rings = {e: p.expect(ev="incoming") for e, p in world.phones.items()}
    world.phones[ext].send(cmd="answer", id=rings[ext]["id"])
    world.provider.expect(ev="state", id=pid, state="confirmed")
    for e in world.phones:
        if e != ext:
            world.phones[e].expect(ev="state", id=rings[e]["id"], state="disconnected")
    world.engine.expect(kind="CallBridged")
    return pid, rings[ext], started["call_id"]


def consulting(world, number: str, rings: harness.Proc) -> tuple[int, dict, str, int, dict]:
    """102 answers a customer, holds them and calls `number`, which rings `rings`.

    Returns the provider's call id, 102's incoming event for the customer, the engine's call id,
    102's id for the second call, and the ringing agent's incoming event."""
    pid, desk, call_id = answered_by(world, "102")
    world.phones["102"].do(cmd="hold", id=desk["id"])
    world.engine.expect(kind="CallHeld")
    second = world.phone_call("102", number)
    return pid, desk, call_id, second, rings.expect(ev="incoming")


def hears(world, a: harness.Proc, a_id: int, b: harness.Proc, b_id: int, tmp_path) -> tuple[float, float]:
    """a plays 600 Hz and b 1400 Hz: how much of the other's tone each one records."""
    a_wav, b_wav = harness.exchange_tones(a, a_id, b, b_id, tmp_path)
    return harness.goertzel(a_wav, 1400), harness.goertzel(b_wav, 600)


def xfer_statuses(phone: harness.Proc, call_id: int) -> list[int]:
    """The sipfrag codes the transferor was told, until the final one."""
    codes = []
    while True:
        st = phone.expect(ev="xfer_status", id=call_id)
        codes.append(st["code"])
        if st["final"]:
            return codes


def kinds(row: dict) -> list[str]:
    return [p["kind"] for p in row["path"]]


def test_blind_transfer_to_an_extension_that_answers(world, tmp_path):
    pid, desk, call_id = answered_by(world, "101")
    # The customer hears ringback from the engine while 103 rings: recorded from
    # before the transfer, as the tone's one-second burst starts with it.
    ring_wav = tmp_path / "ringback.wav"
    world.provider.do(cmd="record", id=pid, path=str(ring_wav))
    world.phones["101"].send(cmd="xfer", id=desk["id"], uri=f"sip:103@127.0.0.1:{world.sip_port}")
    inc = world.phones["103"].expect(ev="incoming")
    assert CUSTOMER in inc["remote"], "the target should see who is being transferred to it"
    time.sleep(1.2)
    world.provider.send(cmd="stoprecord")
    harness.finished_recording(ring_wav)
    world.phones["103"].send(cmd="answer", id=inc["id"])
    codes = xfer_statuses(world.phones["101"], desk["id"])
    assert codes[0] == 100 and codes[-1] == 200 and 180 in codes
    world.phones["101"].expect(ev="state", id=desk["id"], state="disconnected")
    moved = world.engine.expect(kind="CallTransferred")
    assert (moved["call_id"], moved["how"], moved["by"], moved["to"]) == (call_id, "blind", "101", "103")
    assert harness.goertzel(ring_wav, 425, skip=0.2) > 0.3, "no ringback while the target rang"

    heard_by_customer, heard_by_target = hears(world, world.provider, pid, world.phones["103"], inc["id"], tmp_path)
    assert heard_by_customer > 0.5, "the customer does not hear the target"
    assert heard_by_target > 0.5, "the target does not hear the customer"
    assert world.provider.all(ev="state", id=pid, state="disconnected") == []

    world.provider.send(cmd="hangup", id=pid)
    world.phones["103"].expect(ev="state", id=inc["id"], state="disconnected")
    row = wait_call(world, call_id)
    assert row["outcome"] == "answered" and row["answered_by"] == "103"
    moves = [p for p in row["path"] if p["kind"] in ("transfer", "transferred")]
    assert moves == [
        {**moves[0], "kind": "transfer", "by": "101", "to": "103"},
        {**moves[1], "kind": "transferred", "by": "101", "to": "103"},
    ]


def test_the_target_of_a_transfer_sees_who_it_will_talk_with_not_who_placed_the_call(world, tmp_path):
    """102 called 101 and sends 101 on to 103: 103's display shows 101, not 102."""
    world.phones["101"].send(cmd="mode", mode="answer")
    call = world.phone_call("102", "101")
    world.phones["102"].expect(ev="state", id=call, state="confirmed")
    call_id = world.engine.expect(kind="CallBridged")["call_id"]
    talking = world.phones["101"].expect(ev="incoming")
    world.phones["102"].send(cmd="xfer", id=call, uri=f"sip:103@127.0.0.1:{world.sip_port}")
    inc = world.phones["103"].expect(ev="incoming")
    assert '"Desk 101" <sip:101@' in inc["remote"], inc["remote"]
    world.phones["103"].send(cmd="answer", id=inc["id"])
    assert xfer_statuses(world.phones["102"], call)[-1] == 200
    heard_by_101, heard_by_103 = hears(world, world.phones["101"], talking["id"], world.phones["103"], inc["id"],
                                       tmp_path)
    assert heard_by_101 > 0.5 and heard_by_103 > 0.5, "101 and 103 do not hear each other"
    world.phones["103"].send(cmd="hangup", id=inc["id"])
    world.phones["101"].expect(ev="state", id=talking["id"], state="disconnected")
    row = wait_call(world, call_id)
    assert (row["caller"], row["answered_by"]) == ("102", "103")  # the record still says who called


def test_blind_transfer_to_a_busy_extension_returns_to_the_transferor(world, tmp_path):
    pid, desk, call_id = answered_by(world, "101")
    world.phones["103"].mode(mode="busy")
    world.phones["101"].send(cmd="xfer", id=desk["id"], uri=f"sip:103@127.0.0.1:{world.sip_port}")
    world.phones["103"].expect(ev="incoming")
    codes = xfer_statuses(world.phones["101"], desk["id"])
    assert codes[-1] == 486
    failed = world.engine.expect(kind="TransferFailed")
    assert (failed["call_id"], failed["to"], failed["outcome"]) == (call_id, "103", "busy")

    heard_by_customer, heard_by_desk = hears(world, world.provider, pid, world.phones["101"], desk["id"], tmp_path)
    assert heard_by_customer > 0.5 and heard_by_desk > 0.5, "the customer is not back with the transferor"
    assert not world.phones["101"].all(ev="state", id=desk["id"], state="disconnected")

    world.provider.send(cmd="hangup", id=pid)
    world.phones["101"].expect(ev="state", id=desk["id"], state="disconnected")
    row = wait_call(world, call_id)
    assert row["answered_by"] == "101"
    assert {"transfer", "transfer_failed", "returned"} <= set(kinds(row))


def test_unanswered_transfer_after_the_transferor_left_goes_back_to_routing(world):
    with world.store() as st:
        st.set_setting("engine", {"confirm_seconds": 3, "transfer_ring_seconds": 2})
    world.engine.send(cmd="reload")
    world.engine.expect(kind="done", cmd="reload")
    try:
        pid, desk, call_id = answered_by(world, "101")
        world.phones["101"].send(cmd="xfer", id=desk["id"], uri=f"sip:102@127.0.0.1:{world.sip_port}")
        world.phones["102"].expect(ev="incoming")
        world.phones["101"].expect(ev="xfer_status", id=desk["id"], code=180)
        world.phones["101"].send(cmd="hangup", id=desk["id"])  # a blind transferor often leaves at once
        failed = world.engine.expect(kind="TransferFailed")
        assert (failed["to"], failed["outcome"]) == ("102", "no_answer")
        # The call goes back to its route: the sales group rings again.
        again = world.phones["103"].expect(ev="incoming")
        assert CUSTOMER in again["remote"]
        world.phones["103"].send(cmd="answer", id=again["id"])
        world.engine.expect(kind="CallAnswered", by="103")
        assert world.provider.all(ev="state", id=pid, state="disconnected") == []
        world.provider.send(cmd="hangup", id=pid)
        row = wait_call(world, call_id)
        assert row["answered_by"] == "103"
        assert {"transfer", "transfer_failed", "fallback"} <= set(kinds(row))
    finally:
        with world.store() as st:
            st.set_setting("engine", {"confirm_seconds": 3})
        world.engine.send(cmd="reload")
        world.engine.expect(kind="done", cmd="reload")


def test_attended_transfer_joins_the_two_remote_parties(world, tmp_path):
    pid, desk, call_id, second, inc = consulting(world, "103", world.phones["103"])
    world.phones["103"].send(cmd="answer", id=inc["id"])
    world.phones["102"].expect(ev="state", id=second, state="confirmed")
    consult = world.engine.expect(kind="CallStarted", extension="102")["call_id"]

    world.phones["102"].send(cmd="xferreplaces", id=desk["id"], other=second)
    codes = xfer_statuses(world.phones["102"], desk["id"])
    assert codes[-1] == 200
    world.phones["102"].expect(ev="state", id=desk["id"], state="disconnected")
    world.phones["102"].expect(ev="state", id=second, state="disconnected")
    moved = world.engine.expect(kind="CallTransferred")
    assert (moved["call_id"], moved["how"], moved["by"], moved["to"]) == (call_id, "attended", "102", "103")

    heard_by_customer, heard_by_target = hears(world, world.provider, pid, world.phones["103"], inc["id"], tmp_path)
    assert heard_by_customer > 0.5, "the customer does not hear the target"
    assert heard_by_target > 0.5, "the target does not hear the customer"
    assert not world.provider.all(ev="state", id=pid, state="disconnected")
    assert not world.phones["103"].all(ev="state", id=inc["id"], state="disconnected")

    world.phones["103"].send(cmd="hangup", id=inc["id"])
    world.provider.expect(ev="state", id=pid, state="disconnected")
    row = wait_call(world, call_id)
    assert row["answered_by"] == "103"
    assert [p for p in row["path"] if p["kind"] == "transferred"][0]["from_call"] == consult
    other = wait_call(world, consult)
    assert "transferred" in kinds(other)


def test_transfer_while_the_consultation_still_rings_gives_the_ringing_target_to_the_customer(world, tmp_path):
    """Semi-attended: the transferor presses transfer before the colleague it consults has answered."""
    pid, desk, call_id, second, first_ring = consulting(world, "103", world.phones["103"])
    world.phones["102"].expect(ev="state", id=second, state="early")
    consult = world.engine.expect(kind="CallStarted", extension="102")["call_id"]

    world.phones["102"].send(cmd="xferreplaces", id=desk["id"], other=second)
    # The consultation gives way: 103 stops ringing for 102 and rings for the customer.
    world.phones["103"].expect(ev="state", id=first_ring["id"], state="disconnected")
    world.phones["102"].expect(ev="state", id=second, state="disconnected")
    ring = world.phones["103"].expect(ev="incoming")
    assert CUSTOMER in ring["remote"], "the target should see who is being transferred to it"
    ringback = tmp_path / "ringback.wav"
    world.provider.send(cmd="record", id=pid, path=str(ringback))
    time.sleep(1.0)
    world.provider.do(cmd="stoprecord")
    assert harness.goertzel(ringback, 425, skip=0.2) > 0.3, "the customer heard no ringback while 103 rang"

    world.phones["103"].send(cmd="answer", id=ring["id"])
    codes = xfer_statuses(world.phones["102"], desk["id"])
    assert codes[0] == 100 and 180 in codes and codes[-1] == 200
    world.phones["102"].expect(ev="state", id=desk["id"], state="disconnected")
    moved = world.engine.expect(kind="CallTransferred")
    assert (moved["call_id"], moved["how"], moved["by"], moved["to"]) == (call_id, "semi-attended", "102", "103")
    heard_by_customer, heard_by_target = hears(world, world.provider, pid, world.phones["103"], ring["id"], tmp_path)
    assert heard_by_customer > 0.5, "the customer does not hear the target"
    assert heard_by_target > 0.5, "the target does not hear the customer"

    world.phones["103"].send(cmd="hangup", id=ring["id"])
    world.provider.expect(ev="state", id=pid, state="disconnected")
    row = wait_call(world, call_id)
    assert row["answered_by"] == "103"
    assert [p for p in row["path"] if p["kind"] == "transfer"][0]["how"] == "semi-attended"
    other = wait_call(world, consult)
    assert other["outcome"] == "transferred", "the consultation is not a call 103 missed"
    assert [p for p in other["path"] if p["kind"] == "transferred"][0]["to_call"] == call_id
    with world.store() as st:
        assert consult not in [m["call_id"] for m in st.open_missed()]


def test_a_consultation_still_ringing_a_mobile_is_given_to_the_customer_over_the_trunk(world):
    pid, desk, call_id, second, first_ring = consulting(world, "0671112233", world.mobile)
    world.phones["102"].expect(ev="state", id=second, state="early")
    consult = world.engine.expect(kind="CallStarted", extension="102")["call_id"]

    world.phones["102"].send(cmd="xferreplaces", id=desk["id"], other=second)
    world.mobile.expect(ev="state", id=first_ring["id"], state="disconnected")
    ring = world.mobile.expect(ev="incoming")
    assert ring["local"].startswith("<sip:0671112233@")
    world.mobile.send(cmd="answer", id=ring["id"])
    assert xfer_statuses(world.phones["102"], desk["id"])[-1] == 200
    moved = world.engine.expect(kind="CallTransferred")
    assert (moved["how"], moved["to"]) == ("semi-attended", "+380671112233")
    world.provider.send(cmd="hangup", id=pid)
    world.mobile.expect(ev="state", id=ring["id"], state="disconnected")
    assert wait_call(world, call_id)["answered_by"] == "+380671112233"
    assert wait_call(world, consult)["outcome"] == "transferred"


def test_a_consultation_still_ringing_a_group_is_not_transferred_until_answered(world):
    # An office number: routed, it rings the group.
    pid, desk, call_id, second, ringing = consulting(world, routes.SALES_NUMBER, world.phones["103"])
    world.phones["102"].expect(ev="state", id=second, state="early")

    world.phones["102"].send(cmd="xferreplaces", id=desk["id"], other=second)
    assert xfer_statuses(world.phones["102"], desk["id"]) == [403]
    failed = world.engine.expect(kind="TransferFailed", call_id=call_id)
    assert failed["reason"] == "A second call to a group or a menu can be transferred once it is answered"
    # Nothing was lost: the second call still rings, and the customer is still there on hold.
    world.phones["103"].send(cmd="answer", id=ringing["id"])
    world.phones["102"].expect(ev="state", id=second, state="confirmed")
    assert not world.provider.all(ev="state", id=pid, state="disconnected")
    world.phones["102"].send(cmd="hangup", id=second)
    world.phones["103"].expect(ev="state", id=ringing["id"], state="disconnected")


def test_transfer_to_a_forbidden_international_number_is_refused(world):
    pid, desk, call_id = answered_by(world, "102")  # 102 may call local and mobile numbers only
    world.phones["102"].send(cmd="xfer", id=desk["id"], uri=f"sip:00442071234567@127.0.0.1:{world.sip_port}")
    assert xfer_statuses(world.phones["102"], desk["id"]) == [403]
    failed = world.engine.expect(kind="TransferFailed")
    assert failed["reason"] == "International calls are not allowed from extension 102"
    assert not world.mobile.all(ev="incoming")
    assert not world.phones["102"].all(ev="state", id=desk["id"], state="disconnected")
    assert not world.provider.all(ev="state", id=pid, state="disconnected")

    # A mobile number is within 102's rules: the transfer goes out over the trunk.
    world.phones["102"].send(cmd="xfer", id=desk["id"], uri=f"sip:0671112233@127.0.0.1:{world.sip_port}")
    out = world.mobile.expect(ev="incoming")
    assert out["local"].startswith("<sip:0671112233@")
    world.mobile.send(cmd="answer", id=out["id"])
    assert xfer_statuses(world.phones["102"], desk["id"])[-1] == 200
    moved = world.engine.expect(kind="CallTransferred")
    assert moved["to"] == "+380671112233"
    world.provider.send(cmd="hangup", id=pid)
    world.mobile.expect(ev="state", id=out["id"], state="disconnected")
    row = wait_call(world, call_id)
    assert row["answered_by"] == "+380671112233"
    assert "transfer_refused" in kinds(row)


def test_transfer_to_another_host_is_refused(world):
    pid, desk, _ = answered_by(world, "101")
    world.phones["101"].send(cmd="xfer", id=desk["id"], uri=f"sip:0671112233@127.0.0.1:{world.mobile_port}")
    assert xfer_statuses(world.phones["101"], desk["id"]) == [403]
    assert not world.mobile.all(ev="incoming")
    world.provider.send(cmd="hangup", id=pid)
    world.phones["101"].expect(ev="state", id=desk["id"], state="disconnected")


def test_a_provider_cannot_transfer_a_call(world):
    """A REFER from the trunk side would let an outsider send the call anywhere: refused."""
    pid, desk, call_id = answered_by(world, "101")
    world.provider.send(cmd="xfer", id=pid, uri=f"sip:+380671112233@127.0.0.1:{world.trunk_port}")
    codes = xfer_statuses(world.provider, pid)
    assert codes[-1] == 403
    refused = world.engine.expect(kind="TransferFailed")
    assert refused["call_id"] == call_id and refused["status"] == 403
    assert world.mobile.all(ev="incoming") == []
    # The call goes on as it was.
    assert not world.phones["101"].all(ev="state", id=desk["id"], state="disconnected")
    world.provider.send(cmd="hangup", id=pid)
    world.phones["101"].expect(ev="state", id=desk["id"], state="disconnected")
