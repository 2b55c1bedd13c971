"""Calls from desk phones: extensions, groups by number, outside calls and their rules,
and what happens mid-call (hold with music, pickup)."""

from __future__ import annotations

import time

import pytest

from tests.engine import harness, routes

pytestmark = pytest.mark.sip


def test_extension_to_extension(world):
    cid = world.phone_call("101", "103")
    inc = world.phones["103"].expect(ev="incoming")
    assert inc["remote"].startswith('"Desk 101" <sip:101@')
    world.phones["101"].expect(ev="state", id=cid, state="early")
    world.phones["103"].send(cmd="answer", id=inc["id"])
    world.phones["101"].expect(ev="state", id=cid, state="confirmed")
    started = world.engine.expect(kind="CallStarted")
    assert (started["direction"], started["extension"], started["dialled"]) == ("internal", "101", "103")
    world.phones["103"].send(cmd="hangup", id=inc["id"])
    world.phones["101"].expect(ev="state", id=cid, state="disconnected")
    ended = world.engine.expect(kind="CallEnded")
    assert ended["outcome"] == "answered" and ended["answered_by"] == "103"


def test_hunt_group_by_its_number(world):
    world.route("ringall")
    cid = world.phone_call("102", "200")
    # 102 is the caller and in a call: the group skips it.
    for ext in ("101", "103"):
        world.phones[ext].expect(ev="incoming")
    time.sleep(0.3)
    assert not world.phones["102"].all(ev="incoming")
    world.phones["102"].send(cmd="hangup", id=cid)
    world.engine.expect(kind="CallEnded")


def test_outbound_call_over_the_trunk(world):
    cid = world.phone_call("101", "067 111-22-33".replace(" ", "").replace("-", ""))
    inc = world.mobile.expect(ev="incoming")
    assert inc["local"].startswith("<sip:0671112233@")
    assert "+380441234567" in inc["remote"]  # the trunk's caller ID, not the extension
    world.mobile.send(cmd="answer", id=inc["id"])
    world.phones["101"].expect(ev="state", id=cid, state="confirmed")
    started = world.engine.expect(kind="CallStarted")
    assert started["extension"] == "101"
    world.phones["101"].send(cmd="hangup", id=cid)
    ended = world.engine.expect(kind="CallEnded")
    assert ended["answered_by"] == routes.MOBILE


def test_international_without_permission_is_refused_with_a_reason(world):
    cid = world.phone_call("102", "00442071234567")
    st = world.phones["102"].expect(ev="state", id=cid, state="disconnected")
    assert st["code"] == 403
    assert st["reason"] == "International calls are not allowed from extension 102"
    assert not world.mobile.all(ev="incoming")
    refused = world.engine.expect(kind="CallRefused")
    assert refused["reason"] == st["reason"]
    # 101 may call abroad.
    cid = world.phone_call("101", "00442071234567")
    assert world.mobile.expect(ev="incoming")["local"].startswith("<sip:00442071234567@")
    world.phones["101"].send(cmd="hangup", id=cid)


def test_premium_and_bad_characters_are_refused(world):
    cid = world.phone_call("101", "0900123456")
    st = world.phones["101"].expect(ev="state", id=cid, state="disconnected")
    assert (st["code"], st["reason"]) == (403, "Premium-rate calls are not allowed from extension 101")
    cid = world.phone_call("101", "067a1112233")
    st = world.phones["101"].expect(ev="state", id=cid, state="disconnected")
    assert st["code"] == 484
    assert not world.mobile.all(ev="incoming")


def test_at_most_two_outside_calls_per_extension(world):
    ids = [world.phone_call("101", "0671112233") for _ in range(2)]
    for _ in ids:
        world.mobile.expect(ev="incoming")
    third = world.phone_call("101", "0671112234")
    st = world.phones["101"].expect(ev="state", id=third, state="disconnected")
    assert st["code"] == 403 and "limit 2" in st["reason"]
    # Another extension is not held back by 101's calls.
    other = world.phone_call("103", "0671112235")
    world.mobile.expect(ev="incoming")
    for i in (*ids, other):
        world.phones["101" if i in ids else "103"].send(cmd="hangup", id=i)


def test_unknown_feature_code(world):
    cid = world.phone_call("101", "*99")
    st = world.phones["101"].expect(ev="state", id=cid, state="disconnected")
    assert (st["code"], st["reason"]) == (404, "No feature code *99")


def test_hold_plays_music_to_the_other_side(world, tmp_path):
    cid = world.phone_call("101", "103")
    inc = world.phones["103"].expect(ev="incoming")
    world.phones["103"].send(cmd="answer", id=inc["id"])
    world.phones["101"].expect(ev="state", id=cid, state="confirmed")
    world.engine.expect(kind="CallBridged")
    world.phones["101"].send(cmd="tone", id=cid, freq=1400)
    world.phones["101"].do(cmd="hold", id=cid)
    world.engine.expect(kind="CallHeld")
    held = tmp_path / "held.wav"
    world.phones["103"].send(cmd="record", id=inc["id"], path=str(held))
    time.sleep(2.0)
    world.phones["103"].send(cmd="stoprecord")
    world.phones["101"].do(cmd="unhold", id=cid)
    world.engine.expect(kind="CallResumed")
    back = tmp_path / "back.wav"
    world.phones["103"].send(cmd="record", id=inc["id"], path=str(back))
    time.sleep(1.2)
    world.phones["103"].send(cmd="stoprecord")
    harness.finished_recording(held)
    harness.finished_recording(back)
    music = sum(harness.goertzel(held, f, skip=0.2) for f in (523.25, 659.25, 783.99, 1046.5))
    assert music > 0.1, "no music on hold"  # six notes in turn: each holds a share
    assert harness.goertzel(held, 1400, skip=0.2) < 0.05, "the held phone is still heard"
    assert harness.goertzel(back, 1400) > 0.5, "audio did not come back after resume"
    world.phones["101"].send(cmd="hangup", id=cid)
    world.engine.expect(kind="CallEnded")


@pytest.mark.parametrize("code", ["**102", "*8"])
def test_pickup_takes_a_ringing_call(world, code):
    world.route("ringall")
    pid = world.ip_call()
    for p in world.phones.values():
        p.expect(ev="incoming")
    started = world.engine.expect(kind="CallStarted")
    # 101 picks up: its call is answered and bridged with the caller.
    cid = world.phone_call("101", code)
    world.phones["101"].expect(ev="state", id=cid, state="confirmed")
    world.provider.expect(ev="state", id=pid, state="confirmed")
    for ext in ("102", "103"):
        world.phones[ext].expect(ev="cancel", reason='SIP;cause=200;text="Call completed elsewhere"')
    picked = world.engine.expect(kind="CallPickedUp")
    assert picked["call_id"] == started["call_id"] and picked["by"] == "101"
    world.provider.send(cmd="hangup", id=pid)
    world.phones["101"].expect(ev="state", id=cid, state="disconnected")
    ended = [e for e in [world.engine.expect(kind="CallEnded")] if e["call_id"] == started["call_id"]]
    assert ended and ended[0]["answered_by"] == "101"
