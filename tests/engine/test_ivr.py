"""Steps that talk to the caller, on real legs: announcements, IVR menus, voicemail, ringback.

The provider calls in over the IP trunk and records what it hears; every
prompt is a tone of its own, so the order of what the caller heard is read
back from the recording (tests/engine/listen.py).  Keys are RFC 2833 events
sent with pjsua2's dialDtmf.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.engine import listen, routes

pytestmark = pytest.mark.sip

CALLER = "+380501234567"
HEARD = {"main": 700.0, "sub": 1100.0, "invalid": 1300.0, "info": 500.0, "greeting": 900.0,
         "beep": 1000.0, "ring": listen.RINGING, "music": listen.MUSIC}


@pytest.fixture(scope="module", autouse=True)
def prompts(office):
    d = office.data / "prompts"
    listen.tone_wav(d / "t-main.wav", 700, 0.8)
    listen.tone_wav(d / "t-sub.wav", 1100, 0.8)
    listen.tone_wav(d / "t-invalid.wav", 1300, 0.5)
    listen.tone_wav(d / "t-info.wav", 500, 0.8)
    listen.tone_wav(d / "vm-sales-unavailable.wav", 900, 0.6)


@pytest.fixture
def settings(world):
    """Engine settings for one test (the office's own come back afterwards)."""
    with world.store() as st:
        saved = st.get_setting("engine", {})

    def put(**kw):
        with world.store() as st:
            st.set_setting("engine", {**saved, **kw})
    yield put
    with world.store() as st:
        st.set_setting("engine", saved)
    world.engine.send(cmd="reload")
    world.engine.expect(kind="done", cmd="reload")


def route(world, name: str) -> None:
    world.engine.send(cmd="router", factory=f"tests.engine.ivr_routes:{name}")
    world.engine.expect(kind="done", cmd="router")


def call(world, wav=None, caller: str = CALLER) -> int:
    """The provider calls the sales number (recording what it hears from the first media on)."""
    extra = {"record": str(wav)} if wav else {}
    world.provider.send(cmd="call", uri=f"sip:{routes.SALES_NUMBER}@127.0.0.1:{world.trunk_port}",
                        **extra, **{"from": f'"Customer" <sip:{caller}@127.0.0.1:{world.provider_port}>'})
    return world.provider.expect(ev="calling")["id"]


def stop_recording(world, pid: int, wav) -> None:
    """Stop the caller's recorder and wait until its file is complete."""
    world.provider.send(cmd="stoprecord", id=pid)
    world.provider.expect(ev="ok", cmd="stoprecord")
    listen.wait_for(lambda: listen.complete(wav), what=f"a complete {wav}")


def press(world, pid: int, digits: str) -> None:
    world.provider.send(cmd="dtmf", id=pid, digits=digits)
    world.provider.expect(ev="dtmf_sent", id=pid, digits=digits)


def answer(world, ext: str, pid: int) -> None:
    """`ext` rings and answers; the caller is bridged to it."""
    inc = world.phones[ext].expect(ev="incoming", timeout=8)
    world.phones[ext].send(cmd="answer", id=inc["id"])
    assert world.engine.expect(kind="CallAnswered")["by"] == ext
    world.engine.expect(kind="CallBridged")


def hang_up(world, pid: int) -> dict:
    world.provider.send(cmd="hangup", id=pid)
    return world.engine.expect(kind="CallEnded")


def heard_menu(world):
    """Wait until the caller heard the main menu's prompt through."""
    world.engine.expect(kind="StepStarted", step="menu")
    time.sleep(1.1)


def record_of(world, call_id: str) -> dict:
    def row():
        world.flush()
        with world.store() as st:
            return next((c for c in st.recent_calls(50) if c["id"] == call_id and c["outcome"] != "in progress"), None)
    return listen.wait_for(row, what=f"call record {call_id}")


def test_announcement_is_heard_then_the_next_step_runs(world, tmp_path):
    route(world, "announcement")
    wav = tmp_path / "caller.wav"
    pid = call(world, wav)
    world.provider.expect(ev="state", id=pid, state="confirmed")  # answered to play the prompt
    world.engine.expect(kind="StepStarted", step="play")
    world.engine.expect(kind="StepStarted", step="ring", timeout=3)
    time.sleep(0.8)  # the caller hears ringing while 102 rings
    answer(world, "102", pid)
    stop_recording(world, pid, wav)
    hang_up(world, pid)
    assert listen.heard(wav, HEARD)[:2] == ["info", "ring"]


def test_menu_key_2_goes_to_option_2(world, tmp_path):
    route(world, "menu")
    wav = tmp_path / "caller.wav"
    pid = call(world, wav)
    heard_menu(world)
    press(world, pid, "2")
    answer(world, "102", pid)
    assert not world.phones["101"].all(ev="incoming") and not world.phones["103"].all(ev="incoming")
    stop_recording(world, pid, wav)
    hang_up(world, pid)
    assert listen.heard(wav, HEARD)[:1] == ["main"]


def test_menu_direct_dial_waits_for_the_longer_entry(world):
    route(world, "menu")
    pid = call(world)
    heard_menu(world)
    press(world, pid, "103")  # "1" alone is option 1, but "103" is an extension
    answer(world, "103", pid)
    assert not world.phones["101"].all(ev="incoming")
    hang_up(world, pid)


def test_menu_single_key_is_taken_after_the_inter_digit_wait(world):
    route(world, "menu")
    pid = call(world)
    heard_menu(world)
    press(world, pid, "1")
    world.engine.expect(kind="StepStarted", step="ring", dest="ext:101", timeout=3)
    answer(world, "101", pid)
    assert not world.phones["103"].all(ev="incoming")
    ended = hang_up(world, pid)
    row = record_of(world, ended["call_id"])
    outcome = [p for p in row["path"] if p["kind"] == "outcome" and p["step"] == "menu"]
    assert outcome[0]["digits"] == "1"


def test_menu_timeout_plays_again_then_goes_to_on_timeout(world, tmp_path):
    route(world, "menu")
    wav = tmp_path / "caller.wav"
    pid = call(world, wav)
    # prompt, 2 s wait, prompt again (one retry), 2 s wait, then extension 103.
    inc = world.phones["103"].expect(ev="incoming", timeout=10)
    assert len(world.engine.all(kind="StepStarted", step="menu")) == 2
    world.phones["103"].send(cmd="answer", id=inc["id"])
    world.provider.expect(ev="state", id=pid, state="confirmed")
    stop_recording(world, pid, wav)
    hang_up(world, pid)
    assert listen.heard(wav, HEARD)[:2] == ["main", "main"]


def test_menu_invalid_entry_plays_the_invalid_prompt_and_retries(world, tmp_path):
    route(world, "menu")
    wav = tmp_path / "caller.wav"
    pid = call(world, wav)
    heard_menu(world)
    press(world, pid, "7")
    world.engine.expect(kind="StepStarted", step="menu")
    time.sleep(1.6)  # invalid prompt, then the menu again
    press(world, pid, "2")
    answer(world, "102", pid)
    stop_recording(world, pid, wav)
    hang_up(world, pid)
    assert listen.heard(wav, HEARD)[:3] == ["main", "invalid", "main"]


def test_nested_menu_and_back_to_the_parent(world, tmp_path):
    route(world, "menu")
    wav = tmp_path / "caller.wav"
    pid = call(world, wav)
    heard_menu(world)
    press(world, pid, "3")
    world.engine.expect(kind="StepStarted", step="menu", dest="menu:sub")
    time.sleep(1.1)
    press(world, pid, "0")  # parent
    world.engine.expect(kind="StepStarted", step="menu", dest="menu:main")
    time.sleep(1.1)
    press(world, pid, "2")
    answer(world, "102", pid)
    stop_recording(world, pid, wav)
    hang_up(world, pid)
    assert listen.heard(wav, HEARD)[:3] == ["main", "sub", "main"]


def test_voicemail_records_the_caller_until_they_hang_up(world, tmp_path):
    route(world, "voicemail")
    wav = tmp_path / "caller.wav"
    pid = call(world, wav)
    started = world.engine.expect(kind="VoicemailStarted", timeout=5)
    world.provider.send(cmd="tone", id=pid, freq=600)
    time.sleep(1.5)
    stop_recording(world, pid, wav)
    ended = hang_up(world, pid)
    assert ended["outcome"] == "voicemail"
    assert started["box"] == "sales"
    message = world.data / "voicemail" / "sales" / started["file"].rsplit("/", 1)[1]
    listen.wait_for(lambda: listen.complete(message), what="message file")
    assert listen.heard(message, {"caller": 600.0}) == ["caller"]
    assert listen.heard(wav, HEARD)[:2] == ["greeting", "beep"]
    about = json.loads(listen.wait_for(lambda: message.with_suffix(".json").exists() and
                                       message.with_suffix(".json").read_text(), what="message details"))
    assert about["caller"] == CALLER and about["box"] == "sales"
    row = record_of(world, ended["call_id"])
    assert row["outcome"] == "voicemail"
    with world.store() as st:
        assert [m["call_id"] for m in st.open_missed() if m["call_id"] == ended["call_id"]]


def test_voicemail_stops_at_the_longest_message(world, settings):
    settings(voicemail_max=2)
    route(world, "voicemail")
    pid = call(world)
    started = world.engine.expect(kind="VoicemailStarted", timeout=5)
    world.provider.send(cmd="tone", id=pid, freq=600)
    world.provider.expect(ev="state", id=pid, state="disconnected", timeout=5)  # the engine hung up
    ended = world.engine.expect(kind="CallEnded")
    assert ended["outcome"] == "voicemail" and ended["reason"] == "longest message reached"
    message = world.data / "voicemail" / "sales" / started["file"].rsplit("/", 1)[1]
    listen.wait_for(lambda: listen.complete(message), what="message file")
    seconds = listen.seconds_of(message)
    assert 1.0 < seconds < 3.0


@pytest.mark.parametrize("mode", ["180", "tone", "music"])
def test_ringback_as_the_group_says(world, settings, tmp_path, mode):
    settings(ringback={"default": "180", "group:sales": mode})
    world.route("ringall")
    wav = tmp_path / "caller.wav"
    pid = call(world, None if mode == "180" else wav)
    early = world.provider.expect(ev="state", id=pid, state="early")
    assert early["code"] == (180 if mode == "180" else 183)
    world.phones["101"].expect(ev="incoming")
    time.sleep(2.0)
    if mode == "180":
        assert not world.provider.all(ev="media", id=pid), "early media with a plain 180"
        hang_up(world, pid)
        return
    stop_recording(world, pid, wav)
    hang_up(world, pid)
    assert listen.heard(wav, HEARD) == {"tone": ["ring"], "music": ["music"]}[mode]
