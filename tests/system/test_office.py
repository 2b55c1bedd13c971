"""A whole office through `pbx run`: desk phones register with the edge, a provider calls in.

Everything is real and on loopback: the appliance as its own process (edge,
engine, control socket), three pjsua2 desk phones that register with digest
auth and send everything through the edge, and a pjsua2 provider on an IP
trunk.  Nothing here talks to the engine directly.
"""

from __future__ import annotations

import array
import subprocess
import sys
import textwrap
import time
import wave

import pytest

from appliance.configfile import import_config
from appliance.store import Store
from tests.conftest import free_port
from tests.engine import harness
from tests.system.running import Running

SHOP = "0441234567"
PASSWORDS = {"101": "desk-101-pass", "102": "desk-102-pass", "103": "desk-103-pass"}
COMPLETED_ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'


def office_config(provider_port: int) -> str:
    exts = "".join(f"  - number: {n}\n    name: Desk {n}\n    password: {p}\n" for n, p in PASSWORDS.items())
    return "version: 1\ntimezone: Europe/Kyiv\nextensions:\n" + exts + textwrap.dedent(f"""\
        trunks:
          - name: provider
            kind: ip
            host: 127.0.0.1
            port: {provider_port}
            addresses: [127.0.0.1]
            numbers: ["{SHOP}"]
        routing:
          groups:
            sales:
              name: Sales
              strategy: ringall
              members: [101, 102, 103]
              ring_time: 20
              on_fail: hangup
          routes:
            - name: Shop
              numbers: ["{SHOP}"]
              to: group:sales
          unmatched: hangup
        """)


def wait_for_bindings(data, extensions: set[str], timeout: float = 5.0) -> None:
    """Until the store holds the phones' bindings (the engine reads them there), and a moment more."""
    deadline = time.monotonic() + timeout
    with Store(data) as store:
        while {b["extension"] for b in store.bindings()} != extensions:
            assert time.monotonic() < deadline, "the edge did not store the bindings"
            time.sleep(0.05)
    time.sleep(0.2)  # the engine re-reads them within about 50 ms


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    data = tmp_path_factory.mktemp("office") / "data"
    provider_port = free_port()
    with Store(data) as store:
        import_config(store, office_config(provider_port))
    app = Running(data)
    procs = []
    try:
        edge = f"127.0.0.1:{app.sip}"
        phones = {}
        for ext, pw in PASSWORDS.items():
            phones[ext] = harness.Proc([sys.executable, str(harness.AGENT), "--port", str(free_port()), "--name", ext,
                                        "--register", edge, "--password", pw], ext)
            procs.append(phones[ext])
        provider = harness.agent(provider_port, "provider")
        procs.append(provider)
        for ext, phone in phones.items():
            phone.expect(timeout=15, ev="ready")
            phone.expect(timeout=15, ev="reg", code=200)
        wait_for_bindings(data, set(PASSWORDS))
        provider.port = provider_port
        yield app, data, phones, provider
    finally:
        for p in procs:
            p.stop()
        app.stop()



def loudness(path, skip: float = 0.0) -> float:
    """RMS of a 16-bit mono recording: the hold music is loud, silence is not."""
    with wave.open(str(path)) as w:
        samples = array.array("h", w.readframes(w.getnframes()))[int(skip * w.getframerate()):]
    return (sum(x * x for x in samples) / max(1, len(samples))) ** 0.5


def pbx(data, *args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "appliance", *args, "--data", str(data)],
                         capture_output=True, text=True, timeout=20)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.mark.sip
def customer_calls(app, provider, number: str, name: str = "") -> int:
    """The provider brings a customer's call to the shop's number; the provider's call id."""
    display = f'"{name}" ' if name else ""
    provider.send(cmd="call", uri=f"sip:{SHOP}@127.0.0.1:{app.trunk}",
                  **{"from": f"{display}<sip:{number}@127.0.0.1:{provider.port}>"})
    return provider.expect(ev="calling")["id"]


def test_registered_phones_are_listed(office):
    app, data, phones, provider = office
    # The configuration came from a file, so only the panel password is new.
    banner = "\n".join(app.banner)
    assert "panel password for the first login: " in banner and "extension 101" not in banner
    deadline = time.monotonic() + 5  # bindings reach SQLite about once a second
    while True:
        listing = pbx(data, "phones")
        rows = [line.split()[0] for line in listing.splitlines()[1:]]
        if sorted(rows) == ["101", "102", "103"] or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert sorted(rows) == ["101", "102", "103"], listing


@pytest.mark.sip
def test_customer_call_rings_every_phone_through_the_edge_and_the_second_answers(office, tmp_path):
    app, data, phones, provider = office
    cid = customer_calls(app, provider, "+380501234567", "Customer")
    incoming = {ext: p.expect(timeout=10, ev="incoming") for ext, p in phones.items()}
    assert all("380501234567" in inc["remote"] for inc in incoming.values())
    # Whatever came from outside, no X-PBX header reaches a phone.
    provider.expect(timeout=10, ev="state", id=cid, state="early")

    phones["102"].send(cmd="answer", id=incoming["102"]["id"])
    provider.expect(timeout=10, ev="state", id=cid, state="confirmed")
    for ext in ("101", "103"):
        cancel = phones[ext].expect(timeout=10, ev="cancel")
        assert cancel["reason"] == COMPLETED_ELSEWHERE
        phones[ext].expect(timeout=10, ev="state", state="disconnected")

    # Audio both ways: each end sends its own tone and hears the other's.
    answered = incoming["102"]["id"]
    provider.send(cmd="tone", id=cid, freq=600)
    phones["102"].send(cmd="tone", id=answered, freq=1400)
    at_customer, at_desk = tmp_path / "customer.wav", tmp_path / "desk.wav"
    provider.send(cmd="record", id=cid, path=str(at_customer))
    phones["102"].send(cmd="record", id=answered, path=str(at_desk))
    time.sleep(1.5)
    provider.send(cmd="stoprecord")
    phones["102"].send(cmd="stoprecord")
    provider.send(cmd="hangup", id=cid)
    phones["102"].expect(timeout=10, ev="state", id=answered, state="disconnected")
    assert harness.goertzel(harness.finished_recording(at_customer), 1400) > 0.3 > harness.goertzel(harness.finished_recording(at_customer), 600)
    assert harness.goertzel(harness.finished_recording(at_desk), 600) > 0.3 > harness.goertzel(harness.finished_recording(at_desk), 1400)

    time.sleep(1.2)  # the call record is written behind the call
    calls = pbx(data, "calls")
    line = calls.splitlines()[1]
    assert "inbound" in line and "answered" in line and "102" in line, calls


@pytest.mark.sip
def test_one_desk_phone_calls_another_through_the_edge(office):
    app, data, phones, provider = office
    for p in phones.values():
        p.clear()
    phones["101"].send(cmd="call", uri=f"sip:103@127.0.0.1:{app.sip}")
    cid = phones["101"].expect(ev="calling")["id"]
    inc = phones["103"].expect(timeout=10, ev="incoming")
    assert "101" in inc["remote"]
    phones["103"].send(cmd="answer", id=inc["id"])
    phones["101"].expect(timeout=10, ev="state", id=cid, state="confirmed")
    phones["101"].send(cmd="hangup", id=cid)
    phones["103"].expect(timeout=10, ev="state", id=inc["id"], state="disconnected")


@pytest.mark.sip
def test_a_desk_phone_calls_a_mobile_over_the_trunk_and_may_not_call_abroad(office):
    app, data, phones, provider = office
    for p in (*phones.values(), provider):
        p.clear()
    phones["101"].send(cmd="call", uri=f"sip:0671234567@127.0.0.1:{app.sip}")
    cid = phones["101"].expect(ev="calling")["id"]
    inc = provider.expect(timeout=10, ev="incoming")
    assert "0671234567" in inc["local"] or "380671234567" in inc["local"]
    provider.send(cmd="answer", id=inc["id"])
    phones["101"].expect(timeout=10, ev="state", id=cid, state="confirmed")
    phones["101"].send(cmd="hangup", id=cid)
    provider.expect(timeout=10, ev="state", id=inc["id"], state="disconnected")

    # Default dial rules: local and mobile numbers only.
    phones["102"].send(cmd="call", uri=f"sip:+48221234567@127.0.0.1:{app.sip}")
    cid = phones["102"].expect(ev="calling")["id"]
    ended = phones["102"].expect(timeout=10, ev="state", id=cid, state="disconnected")
    assert ended["code"] == 403 and "International" in ended["reason"]
    assert provider.all(ev="incoming") == []


@pytest.mark.sip
def test_delayed_offers_through_the_edge_refused_or_answered_leave_the_appliance_up(office):
    # A phone's INVITE without SDP, authenticated at the edge and refused by
    # the engine, once aborted the whole appliance.
    app, data, phones, provider = office
    for p in (*phones.values(), provider):
        p.clear()
    for number, code in (("+48221234567", 403), ("12a", 484), ("*99", 404)):
        phones["102"].send(cmd="call", uri=f"sip:{number}@127.0.0.1:{app.sip}", delayed=True)
        cid = phones["102"].expect(ev="calling")["id"]
        ended = phones["102"].expect(timeout=10, ev="state", id=cid, state="disconnected")
        assert ended["code"] == code, (number, ended)
        assert app.proc.poll() is None, "the appliance died"
    # ... and one that connects: the engine offers in its 200, the answer comes in the ACK.
    phones["102"].send(cmd="call", uri=f"sip:103@127.0.0.1:{app.sip}", delayed=True)
    cid = phones["102"].expect(ev="calling")["id"]
    inc = phones["103"].expect(timeout=10, ev="incoming")
    phones["103"].send(cmd="answer", id=inc["id"])
    phones["102"].expect(timeout=10, ev="state", id=cid, state="confirmed")
    phones["102"].send(cmd="hangup", id=cid)
    phones["103"].expect(timeout=10, ev="state", id=inc["id"], state="disconnected")
    assert app.proc.poll() is None
    assert not [line for line in app.output if "Traceback" in line or "Assertion" in line]


@pytest.mark.sip
def test_hold_through_the_edge_gives_the_customer_music(office, tmp_path):
    app, data, phones, provider = office
    for p in (*phones.values(), provider):
        p.clear()
    cid = customer_calls(app, provider, "+380507654321")
    inc = phones["103"].expect(timeout=10, ev="incoming")
    phones["103"].send(cmd="answer", id=inc["id"])
    provider.expect(timeout=10, ev="state", id=cid, state="confirmed")
    # A phone re-INVITEs only once its own side is confirmed (the engine's ACK came).
    phones["103"].expect(timeout=10, ev="state", id=inc["id"], state="confirmed")
    # The re-INVITE for hold follows the dialog's Record-Route through the edge.
    phones["103"].send(cmd="tone", id=inc["id"], freq=1400)
    phones["103"].do(cmd="hold", id=inc["id"])
    time.sleep(0.5)
    held = tmp_path / "held.wav"
    provider.send(cmd="record", id=cid, path=str(held))
    time.sleep(2.0)
    provider.send(cmd="stoprecord")
    provider.send(cmd="hangup", id=cid)
    phones["103"].expect(timeout=10, ev="state", id=inc["id"], state="disconnected")
    assert loudness(harness.finished_recording(held), skip=0.2) > 500, "the customer on hold hears silence, not music"
    assert harness.goertzel(harness.finished_recording(held), 1400, skip=0.2) < 0.05, "the customer still hears the desk"


@pytest.mark.sip
def test_blind_transfer_from_a_desk_phone_behind_the_edge(office, tmp_path):
    app, data, phones, provider = office
    for p in (*phones.values(), provider):
        p.clear()
    cid = customer_calls(app, provider, "+380509990000")
    incoming = {ext: p.expect(timeout=10, ev="incoming") for ext, p in phones.items()}
    phones["101"].send(cmd="answer", id=incoming["101"]["id"])
    provider.expect(timeout=10, ev="state", id=cid, state="confirmed")
    for ext in ("102", "103"):
        phones[ext].expect(timeout=10, ev="state", state="disconnected")
        phones[ext].clear()

    # 101 sends the customer on to 103, naming it as a phone does: EXT at the PBX.
    phones["101"].send(cmd="xfer", id=incoming["101"]["id"], uri=f"sip:103@127.0.0.1:{app.sip}")
    inc = phones["103"].expect(timeout=10, ev="incoming")
    phones["103"].send(cmd="answer", id=inc["id"])
    status = phones["101"].expect(timeout=10, ev="xfer_status", final=True)
    assert status["code"] == 200, status
    phones["101"].expect(timeout=10, ev="state", id=incoming["101"]["id"], state="disconnected")

    provider.send(cmd="tone", id=cid, freq=600)
    phones["103"].send(cmd="tone", id=inc["id"], freq=1400)
    at_customer = tmp_path / "customer.wav"
    provider.send(cmd="record", id=cid, path=str(at_customer))
    time.sleep(1.5)
    provider.send(cmd="stoprecord")
    provider.send(cmd="hangup", id=cid)
    phones["103"].expect(timeout=10, ev="state", id=inc["id"], state="disconnected")
    assert harness.goertzel(harness.finished_recording(at_customer), 1400) > 0.3, "the customer does not hear 103 after the transfer"


@pytest.mark.sip
@pytest.mark.parametrize("when", ["answered", "ringing"])
def test_transfer_to_a_consulted_colleague_behind_the_edge(office, tmp_path, when):
    """101 holds a customer, calls 103 and transfers (REFER with Replaces) after or before 103 answers."""
    app, data, phones, provider = office
    for p in (*phones.values(), provider):
        p.clear()
    cid = customer_calls(app, provider, "+380509990001")
    incoming = {ext: p.expect(timeout=10, ev="incoming") for ext, p in phones.items()}
    desk = incoming["101"]["id"]
    phones["101"].send(cmd="answer", id=desk)
    provider.expect(timeout=10, ev="state", id=cid, state="confirmed")
    for ext in ("102", "103"):
        phones[ext].expect(timeout=10, ev="state", id=incoming[ext]["id"], state="disconnected")
    phones["101"].do(cmd="hold", id=desk)

    phones["101"].send(cmd="call", uri=f"sip:103@127.0.0.1:{app.sip}")
    second = phones["101"].expect(ev="calling")["id"]
    consult = phones["103"].expect(timeout=10, ev="incoming")
    if when == "answered":
        phones["103"].send(cmd="answer", id=consult["id"])
        phones["101"].expect(timeout=10, ev="state", id=second, state="confirmed")
        talking = consult["id"]
    else:
        phones["101"].expect(timeout=10, ev="state", id=second, state="early")

    phones["101"].send(cmd="xferreplaces", id=desk, other=second)
    if when == "ringing":  # 103 rings anew, for the customer this time
        phones["103"].expect(timeout=10, ev="state", id=consult["id"], state="disconnected")
        ring = phones["103"].expect(timeout=10, ev="incoming")
        assert "+380509990001" in ring["remote"]
        phones["103"].send(cmd="answer", id=ring["id"])
        talking = ring["id"]
    status = phones["101"].expect(timeout=10, ev="xfer_status", id=desk, final=True)
    assert status["code"] == 200, status
    phones["101"].expect(timeout=10, ev="state", id=desk, state="disconnected")
    phones["101"].expect(timeout=10, ev="state", id=second, state="disconnected")

    heard_by_customer, heard_by_103 = harness.exchange_tones(provider, cid, phones["103"], talking, tmp_path)
    assert harness.goertzel(heard_by_customer, 1400) > 0.3, "the customer does not hear 103"
    assert harness.goertzel(heard_by_103, 600) > 0.3, "103 does not hear the customer"
    provider.send(cmd="hangup", id=cid)
    phones["103"].expect(timeout=10, ev="state", id=talking, state="disconnected")


@pytest.mark.sip
def test_a_phone_watching_a_colleagues_presence_sees_ringing_and_on_the_phone(office):
    """pjsua2's presence client (a Buddy, as softphones built on it watch a colleague) through the edge."""
    app, data, phones, provider = office
    for p in phones.values():
        p.clear()

    def shown() -> tuple[str, str, str]:
        """The next state pjsua read from a NOTIFY (it also reports the subscription's own steps, as unknown)."""
        while True:
            b = phones["101"].expect(timeout=10, ev="buddy")
            if b["status"] != "unknown":
                return b["status"], b["activity"], b["note"]

    phones["101"].send(cmd="buddy", uri=f"sip:102@127.0.0.1:{app.sip}")
    assert shown() == ("online", "", "Available")
    phones["103"].send(cmd="call", uri=f"sip:102@127.0.0.1:{app.sip}")
    cid = phones["103"].expect(ev="calling")["id"]
    inc = phones["102"].expect(timeout=10, ev="incoming")
    assert shown() == ("online", "", "Ringing")
    phones["102"].send(cmd="answer", id=inc["id"])
    phones["103"].expect(timeout=10, ev="state", id=cid, state="confirmed")
    assert shown() == ("online", "busy", "On the phone")
    phones["103"].send(cmd="hangup", id=cid)
    phones["102"].expect(timeout=10, ev="state", id=inc["id"], state="disconnected")
    assert shown() == ("online", "", "Available")
