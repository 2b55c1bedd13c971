"""Every kind of routing step carried out on real legs: strategies, forwards, webhooks."""

from __future__ import annotations

import array
import json
import math
import threading
import time
import wave
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.conftest import free_port
from tests.engine import harness, routes

pytestmark = pytest.mark.sip


def ring_order(world, count: int, timeout: float = 10.0) -> list[tuple[str, float, float | None]]:
    """(extension, when it started ringing, when it stopped) for the first `count` rings."""
    seen: list[tuple[str, float, float | None]] = []
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        for ext, p in world.phones.items():
            for inc in p.all(ev="incoming"):
                if not any(s[0] == ext and s[1] == inc["t"] for s in seen):
                    seen.append((ext, inc["t"], None))
        time.sleep(0.05)
    seen.sort(key=lambda s: s[1])
    out = []
    for ext, t, _ in seen[:count]:
        ends = [e["t"] for e in world.phones[ext].all(ev="state", state="disconnected") if e["t"] > t]
        out.append((ext, t, min(ends) if ends else None))
    return out


def test_linear_rings_one_phone_at_a_time_in_order(world):
    world.route("linear")
    pid = world.ip_call()
    order = ring_order(world, 3, timeout=12)
    assert [o[0] for o in order] == ["101", "102", "103"]
    # One at a time: each stopped before (or as) the next began, about 2 s apart.
    for (_, t0, end0), (_, t1, _) in zip(order, order[1:]):
        assert end0 is not None and end0 <= t1 + 0.05
        assert 1.5 < t1 - t0 < 3.0
    world.provider.send(cmd="hangup", id=pid)
    assert world.engine.expect(kind="CallEnded")["outcome"] == "missed"


def test_memory_hunt_keeps_earlier_phones_ringing(world):
    world.route("memory")
    pid = world.ip_call()
    order = ring_order(world, 3, timeout=12)
    assert [o[0] for o in order] == ["101", "102", "103"]
    t_103 = order[2][1]
    # 101 and 102 still ring when 103 joins.
    assert order[0][2] is None or order[0][2] > t_103
    assert order[1][2] is None or order[1][2] > t_103
    world.phones["101"].send(cmd="answer", id=world.phones["101"].all(ev="incoming")[-1]["id"])
    world.provider.expect(ev="state", id=pid, state="confirmed")
    assert world.engine.expect(kind="CallAnswered")["by"] == "101"
    world.provider.send(cmd="hangup", id=pid)
    world.engine.expect(kind="CallEnded")


def test_round_robin_starts_after_the_last_one(world):
    world.route("roundrobin")
    firsts = []
    for _ in range(2):
        pid = world.ip_call()
        first = ring_order(world, 1)[0][0]
        firsts.append(first)
        world.provider.send(cmd="hangup", id=pid)
        world.engine.expect(kind="CallEnded")
        world.reset()
    exts = ["101", "102", "103"]
    assert firsts[1] == exts[(exts.index(firsts[0]) + 1) % 3]


def test_fewest_calls_rings_the_least_busy_first(world):
    # Give 101 and 102 answered calls today; 103 has the fewest afterwards
    # (counted from what the engine stored, not assumed).
    world.route("ringall")
    for ext in ("101", "102"):
        pid = world.ip_call()
        inc = world.phones[ext].expect(ev="incoming")
        world.phones[ext].send(cmd="answer", id=inc["id"])
        world.provider.expect(ev="state", id=pid, state="confirmed")
        world.provider.send(cmd="hangup", id=pid)
        world.engine.expect(kind="CallEnded")
        world.reset()
    world.flush()
    with world.store() as st:
        presence = st.routing_state("presence", {})
    counts = {ext: presence.get(ext, {}).get("calls_today", 0) for ext in ("101", "102", "103")}
    expected = sorted(counts, key=lambda e: (counts[e], e))
    world.route("fewest_calls")
    pid = world.ip_call()
    order = ring_order(world, 2, timeout=8)
    assert [o[0] for o in order] == expected[:2]
    world.provider.send(cmd="hangup", id=pid)
    world.engine.expect(kind="CallEnded")


def test_forward_to_mobile_that_presses_1_is_bridged(world):
    world.route("forward_mobile")
    world.mobile.mode(mode="answer", delay=0.3, digits="1", digits_after=0.7)
    pid = world.ip_call()
    inc = world.mobile.expect(ev="incoming")
    assert inc["local"].startswith("<sip:0671112233@")  # national format on the trunk
    assert "+380501234567" in inc["remote"]  # the customer's number, the trunk allows it
    world.engine.expect(kind="LegConfirming")
    world.mobile.expect(ev="dtmf_sent", digits="1")
    world.provider.expect(ev="state", id=pid, state="confirmed", timeout=5)
    answered = world.engine.expect(kind="CallAnswered")
    assert answered["by"] == routes.MOBILE
    world.engine.expect(kind="CallBridged")
    assert not [p for p in world.phones.values() if p.all(ev="incoming")]
    world.provider.send(cmd="hangup", id=pid)
    assert world.engine.expect(kind="CallEnded")["outcome"] == "answered"


def test_a_mobile_hears_whose_line_it_is_presses_1_and_talks_both_ways(world, tmp_path):
    world.route("forward_mobile")
    # Answers, listens to the whisper for 2.5 s (the test office gives a mobile 3 s), then presses 1.
    world.mobile.mode(mode="answer", delay=0.3, digits="1", digits_after=2.5)
    pid = world.ip_call()
    inc = world.mobile.expect(ev="incoming")
    heard = tmp_path / "whisper.wav"
    world.engine.expect(kind="LegConfirming")
    world.mobile.send(cmd="record", id=inc["id"], path=str(heard))
    world.mobile.expect(ev="dtmf_sent", digits="1", timeout=8)
    world.mobile.send(cmd="stoprecord", id=inc["id"])
    world.provider.expect(ev="state", id=pid, state="confirmed", timeout=5)
    world.engine.expect(kind="CallBridged")
    # The whisper was spoken (a prompt of its own, "Call for sales..."), and heard.
    spoken = list((world.data / "prompts" / "said").glob("whisper-*.wav"))
    assert spoken, "no whisper was spoken"
    assert loudness(harness.finished_recording(heard)) > 300, "the mobile heard nothing before it pressed 1"
    # Two-way audio once bridged.
    p_wav, m_wav = harness.exchange_tones(world.provider, pid, world.mobile, inc["id"], tmp_path)
    assert harness.goertzel(p_wav, 1400) > 0.5, "the customer does not hear the mobile"
    assert harness.goertzel(m_wav, 600) > 0.5, "the mobile does not hear the customer"
    world.provider.send(cmd="hangup", id=pid)
    assert world.engine.expect(kind="CallEnded")["answered_by"] == routes.MOBILE


@pytest.fixture
def after_hours(world):
    with world.store() as st:
        st.set_routing_state("night", {"state": "night", "permanent": True})
    world.route("after_hours_duty")
    time.sleep(0.2)  # the engine's lookups see the night state within 50 ms
    yield world
    with world.store() as st:
        st.set_routing_state("night", None)


def test_after_hours_the_duty_mobile_that_presses_1_takes_the_call(after_hours):
    world = after_hours
    world.mobile.mode(mode="answer", delay=0.3, digits="1", digits_after=1.5)
    pid = world.ip_call()
    assert world.engine.expect(kind="StepStarted", step="forward")["dest"] == "duty:nights"
    inc = world.mobile.expect(ev="incoming")
    assert "+380501234567" in inc["remote"]  # the customer's number, where the trunk allows it
    world.engine.expect(kind="LegConfirming")
    world.provider.expect(ev="state", id=pid, state="confirmed", timeout=6)
    assert world.engine.expect(kind="CallAnswered")["by"] == routes.MOBILE
    world.provider.send(cmd="hangup", id=pid)
    assert world.engine.expect(kind="CallEnded")["outcome"] == "answered"


def test_after_hours_a_duty_mobile_that_does_not_press_lets_the_call_go_to_voicemail(after_hours):
    world = after_hours
    world.mobile.mode(mode="answer", delay=0.3)  # its own voicemail answers; nobody presses
    pid = world.ip_call()
    world.mobile.expect(ev="incoming")
    world.engine.expect(kind="LegNotConfirmed", timeout=6)
    assert world.engine.expect(kind="StepStarted", step="voicemail", timeout=5)["dest"] == "voicemail:shop"
    world.provider.expect(ev="state", id=pid, state="confirmed", timeout=5)  # the appliance's voicemail
    world.engine.expect(kind="VoicemailStarted", timeout=10)
    world.provider.send(cmd="hangup", id=pid)
    ended = world.engine.expect(kind="CallEnded")
    assert ended["outcome"] == "voicemail"
    world.engine.expect(kind="CallMissed")  # a message left after hours still needs a call back


def test_forward_to_mobile_that_does_not_press_is_no_answer(world):
    world.route("forward_mobile")
    world.mobile.mode(mode="answer", delay=0.3)  # its voicemail picks up, nobody presses
    pid = world.ip_call()
    world.mobile.expect(ev="incoming")
    world.engine.expect(kind="LegConfirming")
    # The caller is never connected to the mobile's voicemail ...
    world.engine.expect(kind="LegNotConfirmed", timeout=6)
    assert not world.provider.all(ev="state", id=pid, state="confirmed")
    # ... and the next step runs: extension 103.
    inc = world.phones["103"].expect(ev="incoming", timeout=5)
    world.phones["103"].send(cmd="answer", id=inc["id"])
    world.provider.expect(ev="state", id=pid, state="confirmed")
    assert world.engine.expect(kind="CallAnswered")["by"] == "103"
    world.provider.send(cmd="hangup", id=pid)
    world.engine.expect(kind="CallEnded")


def loudness(path) -> float:
    """RMS of a 16-bit mono recording."""
    with wave.open(str(path)) as w:
        samples = array.array("h", w.readframes(w.getnframes()))
    return (sum(x * x for x in samples) / max(1, len(samples))) ** 0.5


class _Hook(BaseHTTPRequestHandler):
    answer: object = None
    delay = 0.0
    requests: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        time.sleep(type(self).delay)
        data = json.dumps(type(self).answer).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook(world):
    port = free_port(__import__("socket").SOCK_STREAM)
    server = HTTPServer(("127.0.0.1", port), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with world.store() as st:
        st.set_setting("test_webhook_url", f"http://127.0.0.1:{port}/route")
    _Hook.requests = []
    world.route("webhook")
    yield _Hook
    server.shutdown()
    server.server_close()


def test_webhook_answer_is_handed_back_to_routing(world, webhook):
    webhook.answer, webhook.delay = {"extension": "102"}, 0.0
    pid = world.ip_call()
    inc = world.phones["102"].expect(ev="incoming")
    req = webhook.requests[0]
    assert (req["caller"], req["dialled"], req["trunk"]) == ("+380501234567", routes.SALES_NUMBER, "ipprov")
    assert not world.phones["101"].all(ev="incoming") and not world.phones["103"].all(ev="incoming")
    world.phones["102"].send(cmd="answer", id=inc["id"])
    world.provider.expect(ev="state", id=pid, state="confirmed")
    world.provider.send(cmd="hangup", id=pid)
    assert world.engine.expect(kind="CallEnded")["answered_by"] == "102"


def test_webhook_timeout_falls_back(world, webhook):
    webhook.answer, webhook.delay = {"extension": "102"}, 2.0  # the step waits 1 s
    pid = world.ip_call()
    inc = world.phones["103"].expect(ev="incoming", timeout=5)
    assert not world.phones["102"].all(ev="incoming")
    world.provider.send(cmd="hangup", id=pid)
    world.engine.expect(kind="CallEnded")
    assert inc["remote"].startswith('"Customer"')


def test_a_group_greets_the_caller_before_its_phones_ring(world, tmp_path):
    prompts = world.data / "prompts"
    prompts.mkdir(exist_ok=True)
    with wave.open(str(prompts / "sales-hello.wav"), "wb") as w:  # one second of 1000 Hz
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(array.array("h", (int(8000 * math.sin(2 * math.pi * 1000 * i / 8000))
                                        for i in range(8000))).tobytes())
    world.route("announced")
    heard = tmp_path / "caller.wav"
    world.provider.send(cmd="call", uri=f"sip:{routes.SALES_NUMBER}@127.0.0.1:{world.trunk_port}",
                        record=str(heard), **{"from": f'"Customer" <sip:+380501234567@127.0.0.1:{world.provider_port}>'})
    pid = world.provider.expect(ev="calling")["id"]
    answered = world.provider.expect(ev="state", id=pid, state="confirmed")  # answered to be greeted
    rings = {e: p.expect(ev="incoming") for e, p in world.phones.items()}
    first_ring = min(r["t"] for r in rings.values())
    assert first_ring - answered["t"] > 0.9, "the phones rang before the greeting was over"
    world.phones["102"].send(cmd="answer", id=rings["102"]["id"])
    world.engine.expect(kind="CallBridged")
    world.provider.send(cmd="stoprecord")
    assert harness.goertzel(harness.finished_recording(heard), 1000, skip=0.1) > 0.3, \
        "the caller did not hear the greeting"
    world.provider.send(cmd="hangup", id=pid)
    row = world.engine.expect(kind="CallEnded")
    assert row["outcome"] == "answered"
