"""Queues on real legs: music, position and wait announcements, agents rung in turn, VIP first,
max wait, the exit key and the call-back key.

The provider calls in over the IP trunk; extension 103 is the queue's agent
unless a test says otherwise.  Prompts are tones (see tests/engine/listen.py),
so "position 2" is heard as the tone of `digits/2`.
"""

from __future__ import annotations

import shutil
import time
import wave

import pytest

from appliance.engine import media
from appliance.engine.queues import Queues
from tests.engine import listen, routes

CALLER = "+380501234567"
OTHER = "+380507654321"
VIP = "+380503333333"
HEARD = {"music": listen.MUSIC, "position": 1600.0, "one": 1700.0, "two": 1900.0, "wait": 2500.0,
         "callback": 2300.0}


@pytest.fixture(scope="module", autouse=True)
def prompts(office):
    d = office.data / "prompts"
    listen.tone_wav(d / "queue-position.wav", 1600, 0.4)
    listen.tone_wav(d / "digits" / "1.wav", 1700, 0.4)
    listen.tone_wav(d / "digits" / "2.wav", 1900, 0.4)
    listen.tone_wav(d / "queue-wait.wav", 2500, 0.4)
    listen.tone_wav(d / "minutes.wav", 2700, 0.3)
    listen.tone_wav(d / "callback-confirm.wav", 2300, 0.5)


@pytest.fixture
def queue(world):
    """Route to queue `support` with these settings (tests/engine/ivr_routes.py:queue)."""
    def configure(**opts):
        with world.store() as st:
            st.set_setting("test_queue", opts)
        world.engine.send(cmd="router", factory="tests.engine.ivr_routes:queue")
        world.engine.expect(kind="done", cmd="router")
    yield configure
    with world.store() as st:
        st.set_setting("test_queue", {})


def call(world, caller: str = CALLER, wav=None) -> tuple[int, dict]:
    """The provider calls the sales number; (its call id, the engine's QueueJoined event)."""
    extra = {"record": str(wav)} if wav else {}
    world.provider.send(cmd="call", uri=f"sip:{routes.SALES_NUMBER}@127.0.0.1:{world.trunk_port}",
                        **extra, **{"from": f'"Customer" <sip:{caller}@127.0.0.1:{world.provider_port}>'})
    pid = world.provider.expect(ev="calling")["id"]
    return pid, world.engine.expect(kind="QueueJoined", caller=caller)


def stop_recording(world, pid: int, wav) -> None:
    world.provider.send(cmd="stoprecord", id=pid)
    world.provider.expect(ev="ok", cmd="stoprecord")
    listen.wait_for(lambda: listen.complete(wav), what=f"a complete {wav}")


def ringing_for(world, ext: str, caller: str, timeout: float = 8.0) -> dict:
    """The next time `ext` rings with `caller` shown."""
    deadline = time.monotonic() + timeout
    while True:
        for inc in world.phones[ext].all(ev="incoming"):
            if caller in inc["remote"]:
                world.phones[ext].seen.remove(inc)
                return inc
        if time.monotonic() > deadline:
            raise AssertionError(f"{ext} did not ring for {caller}")
        time.sleep(0.05)


@pytest.mark.sip
def test_caller_hears_music_and_position_then_an_agent_answers(world, queue, tmp_path):
    queue()
    world.phones["103"].mode(mode="answer", delay=4.0)
    wav = tmp_path / "first.wav"
    pid, joined = call(world, wav=wav)
    cid = joined["call_id"]
    assert (joined["position"], joined["vip"]) == (1, False)
    ringing_for(world, "103", CALLER)
    told = world.engine.expect(kind="QueuePosition", call_id=cid, announced=True, timeout=4)
    assert told["position"] == 1 and told["estimated_wait"] is None  # no answered call yet
    answered = world.engine.expect(kind="CallAnswered", call_id=cid, timeout=6)
    assert answered["by"] == "103"
    left = world.engine.expect(kind="QueueLeft", call_id=cid)
    assert left["reason"] == "answered"
    world.engine.expect(kind="CallBridged", call_id=cid)
    stop_recording(world, pid, wav)
    world.provider.send(cmd="hangup", id=pid)
    assert world.engine.expect(kind="CallEnded", call_id=cid)["outcome"] == "answered"
    assert listen.heard(wav, HEARD)[:4] == ["music", "position", "one", "music"]

    # The next caller is told the wait too, estimated from the answered call.
    world.reset()
    wav = tmp_path / "second.wav"
    pid, joined = call(world, wav=wav)
    cid = joined["call_id"]
    told = world.engine.expect(kind="QueuePosition", call_id=cid, announced=True, timeout=4)
    assert told["estimated_wait"] is not None
    # The next announcement (announce_every after the music came back) says this one was played whole:
    # its five prompts take 1.9 s, and a fixed wait of 1.8 s left a loaded machine 0.2 s to spare.
    world.engine.expect(kind="QueuePosition", call_id=cid, announced=True, timeout=10)
    stop_recording(world, pid, wav)
    world.provider.send(cmd="hangup", id=pid)
    world.engine.expect(kind="QueueLeft", call_id=cid, reason="hangup")
    world.engine.expect(kind="CallEnded", call_id=cid)
    assert listen.heard(wav, HEARD)[:5] == ["music", "position", "one", "wait", "one"]


@pytest.mark.sip
def test_second_caller_hears_position_2_and_moves_up(world, queue, tmp_path):
    queue()  # 103 rings for the first caller and never answers
    first, joined = call(world, OTHER)
    first_id = joined["call_id"]
    ringing_for(world, "103", OTHER)
    wav = tmp_path / "second.wav"
    second, joined = call(world, CALLER, wav)
    second_id = joined["call_id"]
    assert joined["position"] == 2
    told = world.engine.expect(kind="QueuePosition", call_id=second_id, announced=True, timeout=4)
    assert told["position"] == 2
    # Announced again: the first announcement was played whole (not a fixed wait of about its length).
    assert world.engine.expect(kind="QueuePosition", call_id=second_id, announced=True, timeout=10)["position"] == 2
    world.provider.send(cmd="hangup", id=first)
    world.engine.expect(kind="QueueLeft", call_id=first_id, reason="hangup")
    assert world.engine.expect(kind="QueuePosition", call_id=second_id)["position"] == 1
    stop_recording(world, second, wav)
    world.provider.send(cmd="hangup", id=second)
    world.engine.expect(kind="CallEnded", call_id=second_id)
    heard = listen.heard(wav, HEARD)
    assert heard[:3] == ["music", "position", "two"]
    # Every position it was told was 2 (the wait, told after it once an answer time is known, may be "one").
    assert {heard[i + 1] for i, word in enumerate(heard[:-1]) if word == "position"} == {"two"}, heard


@pytest.mark.sip
def test_vip_caller_goes_ahead_and_is_answered_first(world, queue):
    with world.store() as st:
        st.put_contact({"number": VIP, "name": "Big Client", "vip": 1})
    queue(ring_time=2)
    first, joined = call(world, CALLER)
    first_id = joined["call_id"]
    ringing_for(world, "103", CALLER)
    vip, joined = call(world, VIP)
    vip_id = joined["call_id"]
    assert (joined["position"], joined["vip"]) == (1, True)
    assert world.engine.expect(kind="QueuePosition", call_id=first_id)["position"] == 2
    inc = ringing_for(world, "103", VIP)  # the first caller's round ended: the VIP's turn
    world.phones["103"].send(cmd="answer", id=inc["id"])
    assert world.engine.expect(kind="CallAnswered", call_id=vip_id)["by"] == "103"
    world.provider.expect(ev="state", id=vip, state="confirmed")
    for pid in (first, vip):
        world.provider.send(cmd="hangup", id=pid)
    world.engine.expect(kind="CallEnded", call_id=first_id)
    world.engine.expect(kind="CallEnded", call_id=vip_id)


@pytest.mark.sip
def test_max_wait_goes_to_on_no_answer(world, queue):
    queue(max_wait=3)
    world.phones["103"].mode(mode="busy")
    pid, joined = call(world)
    cid = joined["call_id"]
    world.phones["103"].expect(ev="incoming")
    left = world.engine.expect(kind="QueueLeft", call_id=cid, timeout=6)
    assert left["reason"] == "timeout"
    inc = world.phones["102"].expect(ev="incoming", timeout=5)  # the queue's on_no_answer
    world.phones["102"].send(cmd="answer", id=inc["id"])
    assert world.engine.expect(kind="CallAnswered", call_id=cid)["by"] == "102"
    world.provider.send(cmd="hangup", id=pid)
    world.engine.expect(kind="CallEnded", call_id=cid)


@pytest.mark.sip
def test_exit_key_leaves_the_queue_to_exit_to(world, queue):
    queue(exit_key="0", exit_to="ext:101")
    pid, joined = call(world)
    cid = joined["call_id"]
    ringing_for(world, "103", CALLER)
    world.provider.send(cmd="dtmf", id=pid, digits="0")
    left = world.engine.expect(kind="QueueLeft", call_id=cid)
    assert left["reason"] == "exit"
    world.phones["103"].expect(ev="state", state="disconnected")  # its ringing stops
    inc = world.phones["101"].expect(ev="incoming", timeout=5)
    world.phones["101"].send(cmd="answer", id=inc["id"])
    assert world.engine.expect(kind="CallAnswered", call_id=cid)["by"] == "101"
    world.provider.send(cmd="hangup", id=pid)
    world.engine.expect(kind="CallEnded", call_id=cid)


@pytest.mark.sip
def test_callback_key_records_a_call_back_request(world, queue, tmp_path):
    queue(callback=True, callback_key="5")
    wav = tmp_path / "caller.wav"
    pid, joined = call(world, wav=wav)
    cid = joined["call_id"]
    ringing_for(world, "103", CALLER)
    world.provider.send(cmd="dtmf", id=pid, digits="5")
    asked = world.engine.expect(kind="CallbackRequested", call_id=cid)
    assert asked["caller"] == CALLER and asked["queue"] == "support"
    assert world.engine.expect(kind="QueueLeft", call_id=cid)["reason"] == "callback"
    world.provider.expect(ev="state", id=pid, state="disconnected", timeout=5)  # thanked, then hung up
    ended = world.engine.expect(kind="CallEnded", call_id=cid)
    assert ended["outcome"] == "missed"
    world.flush()
    with world.store() as st:
        rows = list(st.db["callbacks"].rows_where("call_id = ?", [cid]))
        assert [(r["caller"], r["queue"], r["status"]) for r in rows] == [(CALLER, "support", "open")]
        assert [m for m in st.open_missed() if m["call_id"] == cid]
    listen.wait_for(lambda: listen.complete(wav), what="the caller's recording")
    assert "callback" in listen.heard(wav, HEARD)


def test_queue_order_vip_first_with_events():
    events = []
    now = [100.0]
    q = Queues(lambda kind, call_id=None, **data: events.append((kind, call_id, data)), clock=lambda: now[0])
    q.join("support", "a", "+1")
    q.join("support", "b", "+2")
    q.join("support", "v", "+3", priority=1)
    assert [w.call_id for w in q.line("support")] == ["v", "a", "b"]
    assert [(k, c, d["position"]) for k, c, d in events if k != "QueueJoined"] == [
        ("QueuePosition", "a", 2), ("QueuePosition", "b", 3)]
    assert [(c, d["position"], d["vip"]) for k, c, d in events if k == "QueueJoined"] == [
        ("a", 1, False), ("b", 2, False), ("v", 1, True)]
    events.clear()
    now[0] = 130.0
    q.leave("v", "answered")
    assert q.position("a") == 1 and q.position("b") == 2 and q.position("v") == 0
    assert events[0] == ("QueueLeft", "v", {"queue": "support", "reason": "answered", "waited_s": 30.0,
                                            "waiting": 2})
    assert q.recent_answer_times() == {"support": (30.0,)}
    q.leave("a", "hangup")
    q.leave("b", "hangup")
    assert q.snapshot() == {} and q.recent_answer_times() == {"support": (30.0,)}


def test_spoken_prompts_are_generated_once_per_language_and_never_replace_the_owners(tmp_path):
    assert shutil.which("espeak-ng"), "espeak-ng is needed (scripts/setup --test installs it)"
    own = listen.tone_wav(tmp_path / "prompts" / "digits" / "3.wav", 1000, 0.2)
    before = own.read_bytes()
    written = media.speak_missing(tmp_path)
    assert written == sum(len(media.SPEECH[lang]) for lang in media.LANGUAGES)
    assert own.read_bytes() == before
    for lang in media.LANGUAGES:
        with wave.open(str(tmp_path / "prompts" / lang / "queue-position.wav")) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
            assert 0.5 < w.getnframes() / 8000 < 4
    assert media.prompt_path(tmp_path, "digits/3", "en") == own, "the owner's recording wins in every language"
    assert media.speak_missing(tmp_path) == 0
    assert media.number(tmp_path, 23) == ["digits/20", "digits/3"]
    assert media.number(tmp_path, 120) == ["digits/1", "digits/2", "digits/0"]
