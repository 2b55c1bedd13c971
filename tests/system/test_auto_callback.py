"""Missed calls called back automatically by a running `pbx run`, with real pjsua2 phones and a provider.

A customer calls, nobody answers: a case for the personal manager (102).
With `auto_callback` on and the working-hours schedule open (open all week,
so the test runs at any hour), 102's desk phone rings, answers, hears the
whisper; the customer's number goes out over the trunk, the provider's user
agent answers, and tones pass both ways.  The case closes once, as
`callback` by 102, with the attempt recorded.  A second customer is busy:
the failed attempt is recorded on their case, and after the spacing (6 s,
from the configuration) 102 is rung again and this time the customer
answers.  The test waits on the appliance's events (its control socket),
never on a sleep.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from datetime import datetime

import pytest
from click.testing import CliRunner

from appliance.cli import cli
from appliance.control import ControlClient, socket_path
from tests.conftest import free_port
from tests.engine import harness
from tests.system.running import Running, desk_phones_and_provider
from tests.system.test_missed_calls import cases, customer_calls

pytestmark = pytest.mark.sip

PASSWORDS = {"101": "desk-101-pass", "102": "desk-102-pass"}
SHOP = "0441234567"
FIRST, SECOND = "+380501110001", "+380501110002"
SPACING_S = 6.0


def office_yaml(provider_port: int) -> str:
    exts = "".join(f"  - {{number: \"{n}\", name: Desk {n}, password: {p}}}\n" for n, p in PASSWORDS.items())
    return (
        "version: 1\ntimezone: Europe/Kyiv\nextensions:\n" + exts +
        f"trunks:\n  - {{name: provider, kind: ip, host: 127.0.0.1, port: {provider_port}, "
        f"addresses: [127.0.0.1], numbers: [\"{SHOP}\"]}}\n"
        f"contacts:\n  - {{number: \"{FIRST}\", name: Hardware store, manager: \"102\"}}\n"
        f"  - {{number: \"{SECOND}\", name: Bakery, manager: \"102\"}}\n"
        "missed:\n  working_hours: schedule:office\n  auto_callback: true\n  callback_attempts: 3\n"
        f"  callback_spacing_minutes: {SPACING_S / 60}\n  callback_anyone: false\n"
        "routing:\n"
        f"  routes:\n    - {{name: Shop, numbers: [\"{SHOP}\"], to: \"group:sales\"}}\n"
        "  groups:\n    sales: {name: Sales, strategy: ringall, members: [\"101\", \"102\"], ring_time: 4, "
        "on_fail: hangup}\n"
        "  schedules:\n    office: {name: Always open, hours: {mon-sun: \"00:00-24:00\"}, open: hangup}\n"
        "  unmatched: hangup\n")


class Events:
    """The appliance's events from its control socket, read by a thread into a queue."""

    def __init__(self, data) -> None:
        self.client = ControlClient(socket_path(data))
        self.stream = self.client.subscribe()
        self.q: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for event in self.stream:
                self.q.put(event)
        except (OSError, ValueError):
            pass

    def expect(self, timeout: float = 20.0, **match) -> dict:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.q.get(timeout=left)
            except queue.Empty:
                break
            if all(event.get(k) == v for k, v in match.items()):
                return event
        raise AssertionError(f"no event {match} within {timeout} s")

    def close(self) -> None:
        self.client.shutdown()


def tones_pass_both_ways(phone, phone_call: int, provider, provider_call: int, folder) -> None:
    heard_by_agent, heard_by_customer = harness.exchange_tones(phone, phone_call, provider, provider_call, folder)
    assert harness.goertzel(heard_by_agent, 1400) > 0.5, "the agent does not hear the customer"
    assert harness.goertzel(heard_by_customer, 600) > 0.5, "the customer does not hear the agent"


def missed_and_rung_back(app, provider, phone, events, number: str) -> tuple[dict, dict]:
    """The customer calls, the group rings out; the case opens and the manager's phone rings for the callback."""
    pid = customer_calls(app, provider, number)
    ring = phone.expect(timeout=10, ev="incoming")   # the group's ringing of the customer's call
    provider.expect(timeout=10, ev="state", id=pid, state="disconnected")
    opened = events.expect(kind="MissedCaseOpened")
    assert opened["case"]["caller"] == number and opened["case"]["assigned_to"] == "102"
    callback = phone.expect(timeout=15, ev="incoming")
    assert callback["id"] != ring["id"] and number in callback["remote"], callback
    return opened["case"], callback


def test_missed_calls_are_called_back_through_a_free_agent_and_retried_after_the_spacing(tmp_path):
    provider_port = free_port()
    (tmp_path / "office.yaml").write_text(office_yaml(provider_port))
    data = tmp_path / "data"
    res = CliRunner().invoke(cli, ["config", "import", str(tmp_path / "office.yaml"), "--data", str(data)])
    assert res.exit_code == 0, res.output
    app = Running(data)
    procs: list = []
    events = None
    try:
        phones, provider = desk_phones_and_provider(app, data, PASSWORDS, provider_port, procs)
        events = Events(data)
        phone = phones["102"]

        # 1. Nobody answers; the callback rings 102, then the customer, who answers.
        case, desk = missed_and_rung_back(app, provider, phone, events, FIRST)
        assert not provider.all(ev="incoming"), "the customer rang before the agent answered"
        phone.send(cmd="answer", id=desk["id"])
        whisper = events.expect(kind="CallbackWhispered")
        assert whisper["text"].startswith("Пропущений дзвінок: Hardware store, дзвонили")
        out = provider.expect(timeout=15, ev="incoming")
        assert out["local"].startswith("<sip:0501110001@"), "the customer's number over the trunk"
        provider.send(cmd="answer", id=out["id"])
        events.expect(kind="CallBridged", call_id=whisper["call_id"])
        tones_pass_both_ways(phone, desk["id"], provider, out["id"], tmp_path)
        provider.send(cmd="hangup", id=out["id"])
        phone.expect(timeout=10, ev="state", id=desk["id"], state="disconnected")
        closed = events.expect(kind="MissedCaseClosed")
        assert closed["case"]["id"] == case["id"]
        assert (closed["case"]["ended_how"], closed["case"]["closed_by"]) == ("callback", "102")
        assert closed["case"]["closed_call"] == whisper["call_id"]
        [row] = [c for c in cases(data, "--all") if c["id"] == case["id"]]
        assert [(a["ext"], a["call_id"], a["result"], a["ok"]) for a in row["attempts"]] == [
            ("102", whisper["call_id"], "the customer answered", True)]

        # 2. The second customer is busy: a failed attempt, then another after the spacing.
        provider.mode(mode="busy")
        case, desk = missed_and_rung_back(app, provider, phone, events, SECOND)
        phone.send(cmd="answer", id=desk["id"])
        failed = events.expect(kind="MissedCallbackFailed")
        assert failed["case"]["id"] == case["id"]
        [first] = failed["attempts"]
        assert (first["ext"], first["result"], first["ok"]) == ("102", "the customer was busy", False)
        phone.expect(timeout=10, ev="state", id=desk["id"], state="disconnected")
        provider.expect(ev="incoming")   # the busy one
        provider.mode(mode="ring")

        again = phone.expect(timeout=SPACING_S + 15, ev="incoming")
        assert SECOND in again["remote"]
        phone.send(cmd="answer", id=again["id"])
        out = provider.expect(timeout=15, ev="incoming")
        provider.send(cmd="answer", id=out["id"])
        phone.expect(timeout=10, ev="state", id=again["id"], state="confirmed")
        provider.send(cmd="hangup", id=out["id"])
        closed = events.expect(kind="MissedCaseClosed")
        assert (closed["case"]["id"], closed["case"]["ended_how"]) == (case["id"], "callback")
        [row] = [c for c in cases(data, "--all") if c["id"] == case["id"]]
        assert [(a["result"], a["ok"]) for a in row["attempts"]] == [("the customer was busy", False),
                                                                     ("the customer answered", True)]
        gap = (datetime.fromisoformat(row["attempts"][1]["at"])
               - datetime.fromisoformat(row["attempts"][0]["at"])).total_seconds()
        assert gap >= SPACING_S, f"the second attempt came {gap:.1f} s after the first"
        assert not cases(data), "no case is left open"
        print(json.dumps(row["attempts"], indent=1))
    finally:
        if events is not None:
            events.close()
        for p in procs:
            p.stop()
        app.stop()
        print("\n".join(app.output[-60:]))   # shown when the test fails
