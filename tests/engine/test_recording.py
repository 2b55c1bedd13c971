"""Call recording on real calls: a provider's call over the IP trunk, answered by a desk phone.

The recording is decoded back to WAV with sox and both parties' tones are looked for in it
(Goertzel).  Spans begin and end at the engine's events (RecordingStarted, RecordingPaused), and
each tone is switched only after the event, so what is in a file is known without timing guesses;
the first 0.3 s of a file are not measured (a tone switched after the event may still be in flight).
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from appliance.store.recordings import Recordings
from tests.engine import harness, routes

pytestmark = pytest.mark.sip

CUSTOMER, DESK = 600, 1400


def recording(world, **section) -> None:
    with world.store() as store:
        store.set_setting("recording", section)
    world.engine.send(cmd="reload")
    world.engine.expect(kind="done", cmd="reload")


@pytest.fixture
def rec_world(world):
    yield world
    recording(world)  # no policies: nothing recorded for the next module's calls


def answered_call(world) -> tuple[int, int, str]:
    """The provider calls the sales number; 102 answers.  (provider's id, 102's id, the call's id)."""
    cid = world.ip_call()
    started = world.engine.expect(kind="CallStarted")
    inc = world.phones["102"].expect(ev="incoming")
    world.phones["102"].send(cmd="answer", id=inc["id"])
    world.provider.expect(ev="state", id=cid, state="confirmed")
    world.engine.expect(kind="CallBridged", call_id=started["call_id"])
    return cid, inc["id"], started["call_id"]


def hang_up(world, cid: int, call_id: str) -> None:
    world.provider.send(cmd="hangup", id=cid)
    world.engine.expect(kind="CallEnded", call_id=call_id)


def decoded(world, saved: dict, tmp_path: Path) -> Path:
    mp3 = world.data / "recordings" / saved["file"]
    wav = tmp_path / (mp3.stem + ".wav")
    subprocess.run(["sox", str(mp3), "-r", "8000", "-c", "1", "-b", "16", str(wav)], check=True)
    return wav


def play_for(seconds: float) -> None:
    time.sleep(seconds)  # audio accumulating in the recording, not a wait for a state


def test_always_records_both_parties_into_a_compressed_file(rec_world, tmp_path):
    world = rec_world
    recording(world, policies={"trunk:ipprov": "always"})
    cid, desk_id, call_id = answered_call(world)
    started = world.engine.expect(kind="RecordingStarted", call_id=call_id)
    assert (started["policy"], started["by"]) == ("always", "trunk:ipprov")
    world.provider.send(cmd="tone", id=cid, freq=CUSTOMER)
    world.phones["102"].send(cmd="tone", id=desk_id, freq=DESK)
    play_for(2.0)
    hang_up(world, cid, call_id)
    saved = world.engine.expect(timeout=20, kind="RecordingSaved", call_id=call_id)
    day = saved["file"].split("/")
    assert len(day) == 4 and day[0].isdigit() and len(day[0]) == 4
    assert day[3].endswith(f"-{call_id}.mp3")
    mp3 = world.data / "recordings" / saved["file"]
    head = mp3.read_bytes()[:3]
    assert head == b"ID3" or (head[0] == 0xFF and head[1] & 0xE0 == 0xE0), "not an MP3 file"  # ID3 tag or frame sync
    assert not list(mp3.parent.glob("*.wav")), "the WAV spans are deleted once compressed"
    wav = decoded(world, saved, tmp_path)
    assert harness.goertzel(wav, CUSTOMER) > 0.2, "the customer is not in the recording"
    assert harness.goertzel(wav, DESK) > 0.2, "the desk phone is not in the recording"
    world.flush()
    with world.store() as store:
        assert Recordings(store).file_of(call_id) == saved["file"]
    print(f"recorded {saved['seconds']} s: {saved['bytes']} bytes, compressed in {saved['encode_s']} s")


def test_never_leaves_no_file(rec_world):
    world = rec_world
    recording(world, policies={"trunk:ipprov": "never", "ext:102": "never"})
    cid, desk_id, call_id = answered_call(world)
    world.provider.send(cmd="tone", id=cid, freq=CUSTOMER)
    play_for(0.5)
    hang_up(world, cid, call_id)
    world.flush()  # every event of the call is written and printed by now
    assert not [e for e in world.engine.all() if str(e.get("kind", "")).startswith("Recording")
                and e.get("call_id") == call_id]
    assert not list((world.data / "recordings").rglob(f"*{call_id}*"))
    with world.store() as store:
        assert Recordings(store).file_of(call_id) is None


def test_on_demand_covers_only_the_marked_span(rec_world, tmp_path):
    world = rec_world
    recording(world, policies={"group:sales": "on_demand"})
    cid, desk_id, call_id = answered_call(world)
    before, during, after = 600, 1400, 1000
    world.provider.send(cmd="tone", id=cid, freq=before)
    play_for(1.0)
    world.phones["102"].send(cmd="dtmf", id=desk_id, digits="*1")
    started = world.engine.expect(kind="RecordingStarted", call_id=call_id)
    assert (started["policy"], started["by"]) == ("on_demand", "group:sales")
    world.provider.send(cmd="tone", id=cid, freq=during)
    play_for(1.5)
    world.phones["102"].send(cmd="dtmf", id=desk_id, digits="*1")
    assert world.engine.expect(kind="RecordingPaused", call_id=call_id)["reason"] == "key"
    world.provider.send(cmd="tone", id=cid, freq=after)
    play_for(1.0)
    hang_up(world, cid, call_id)
    saved = world.engine.expect(timeout=20, kind="RecordingSaved", call_id=call_id)
    assert 1.0 < saved["seconds"] < 3.0, saved
    wav = decoded(world, saved, tmp_path)
    assert harness.goertzel(wav, during) > 0.5, "the marked span is not in the recording"
    assert harness.goertzel(wav, before) < 0.05, "what came before the key is in the recording"
    assert harness.goertzel(wav, after) < 0.05, "what came after the second press is in the recording"


def test_a_full_disk_stops_recording_and_the_call_goes_on(rec_world, tmp_path):
    world = rec_world
    recording(world, policies={"trunk:ipprov": "always"}, min_free_mb=0, min_free_percent=0)
    cid, desk_id, call_id = answered_call(world)
    world.engine.expect(kind="RecordingStarted", call_id=call_id)
    # A threshold no card meets: the guard finds the disk "full" at the reload.
    recording(world, policies={"trunk:ipprov": "always"}, min_free_mb=10_000_000)
    stopped = world.engine.expect(kind="RecordingStopped")
    assert stopped["reason"] == "disk" and stopped["threshold_mb"] == 10_000_000
    assert world.engine.expect(kind="RecordingPaused", call_id=call_id)["reason"] == "disk"
    heard_by_customer, heard_by_desk = harness.exchange_tones(world.provider, cid, world.phones["102"], desk_id,
                                                              tmp_path, CUSTOMER, DESK)
    assert harness.goertzel(heard_by_customer, DESK) > 0.5, "the call did not go on"
    assert harness.goertzel(heard_by_desk, CUSTOMER) > 0.5, "the call did not go on"
    # Space is back: the call is recorded again, in a second span.
    recording(world, policies={"trunk:ipprov": "always"}, min_free_mb=0, min_free_percent=0)
    world.engine.expect(kind="RecordingResumed")
    assert world.engine.expect(kind="RecordingStarted", call_id=call_id)["part"] == 2
    play_for(0.5)
    hang_up(world, cid, call_id)
    saved = world.engine.expect(timeout=20, kind="RecordingSaved", call_id=call_id)
    assert (world.data / "recordings" / saved["file"]).exists()


def test_the_announcement_is_heard_before_the_two_sides_are_joined(rec_world, tmp_path):
    world = rec_world
    recording(world, policies={"group:sales": {"policy": "always", "announce": True}})
    heard = tmp_path / "customer-heard.wav"
    world.provider.send(cmd="call", uri=f"sip:{routes.SALES_NUMBER}@127.0.0.1:{world.trunk_port}", record=str(heard),
                        **{"from": f'"Customer" <sip:+380501234567@127.0.0.1:{world.provider_port}>'})
    cid = world.provider.expect(ev="calling")["id"]
    call_id = world.engine.expect(kind="CallStarted")["call_id"]
    inc = world.phones["102"].expect(ev="incoming")
    world.phones["102"].send(cmd="tone", id=inc["id"], freq=DESK)  # from its first media on
    world.phones["102"].send(cmd="answer", id=inc["id"])
    answered = world.engine.expect(kind="CallAnswered", call_id=call_id)
    bridged = world.engine.expect(kind="CallBridged", call_id=call_id)
    world.engine.expect(kind="RecordingStarted", call_id=call_id)
    world.provider.do(cmd="stoprecord", id=cid)
    play_for(0.5)  # the call's recording holds some audio (a call hung up at once can leave it empty)
    hang_up(world, cid, call_id)
    world.engine.expect(timeout=20, kind="RecordingSaved", call_id=call_id)
    # The stand-in for the missing prompt (800 Hz, then 600 Hz) came first; the desk phone only after it.
    joined_after = (datetime.fromisoformat(bridged["at"]) - datetime.fromisoformat(answered["at"])).total_seconds()
    assert joined_after >= 0.9, joined_after
    assert harness.goertzel(heard, 800, skip=0.0) > 0.05, "the customer did not hear the announcement"
    world.flush()
    with world.store() as store:
        path = [p for p in json.loads(store.db["calls"].get(call_id)["path"]) if p["kind"] == "recording"]
    assert [p["what"] for p in path][:3] == ["policy", "announced", "started"]
