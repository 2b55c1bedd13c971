"""`pbx missed` through CliRunner: on the store when no appliance runs, through the control socket when one does."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from click.testing import CliRunner

from appliance.cli import _register_parts, cli
from appliance.control import ControlServer, socket_path
from appliance.missed.service import MissedService
from appliance.store import Store
from tests.missed.test_service import CUSTOMER, T0, finish


@pytest.fixture
def office(tmp_path):
    with Store(tmp_path) as s:
        for number, name in (("101", "Olha"), ("102", "Petro"), ("103", "Iryna")):
            s.add_extension(number, name)
        s.put_contact({"number": CUSTOMER, "name": "Hardware store", "manager": "102"})
        finish(s, "c1")
        finish(s, "c2", caller="+380501112233")
        MissedService(s).catch_up()
    return tmp_path


def pbx(data, *args: str, code: int = 0) -> str:
    _register_parts()
    res = CliRunner().invoke(cli, ["missed", *args, "--data", str(data)] if args and args[0] in ("done", "assign")
                             else ["missed", "--data", str(data), *args])
    assert res.exit_code == code, res.output
    return res.output


def test_list_done_assign_on_the_store(office):
    lines = pbx(office).splitlines()
    assert len(lines) == 2 and CUSTOMER in lines[0] and "assigned to 102" in lines[0]
    assert "+380501112233" in lines[1] and "assigned to 102" in lines[1]     # the first extension rung
    cases = json.loads(pbx(office, "--json"))
    first, second = cases[0]["id"], cases[1]["id"]
    assert "assigned to 103" in pbx(office, "assign", str(second), "103")
    out = pbx(office, "done", str(first), "--note", "offer sent")
    assert "closed (done by command line" in out and "offer sent" in out
    assert len(json.loads(pbx(office, "--json"))) == 1
    every = json.loads(pbx(office, "--all", "--json"))
    assert [c["status"] for c in every] == ["open", "closed"]
    assert every[1]["note"] == "offer sent" and every[1]["calls"] == ["c1"]


def test_refusals_are_one_clear_line(office):
    assert "no missed-call case 99" in pbx(office, "done", "99", code=1)
    assert "no extension '555'" in pbx(office, "assign", "1", "555", code=1)
    pbx(office, "done", "1")
    assert "already closed" in pbx(office, "done", "1", code=1)


class RunningControl:
    """A control socket with the missed service's commands, on a loop of its own (what `pbx run` serves)."""

    def __init__(self, data) -> None:
        self.store = Store(data)
        self.events: list[dict] = []
        self.service = MissedService(self.store, self.events.append)
        self.server = ControlServer(socket_path(data))
        self.service.register(self.server)
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.server.start())
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()
        started.wait(5)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.store.close()


def test_commands_go_through_the_running_appliance(office):
    running = RunningControl(office)
    try:
        case_id = json.loads(pbx(office, "--json"))[0]["id"]
        pbx(office, "assign", str(case_id), "101")
        pbx(office, "done", str(case_id), "--note", "called back from a mobile")
        assert [e["kind"] for e in running.events] == ["MissedCaseAssigned", "MissedCaseClosed"]
        assert running.events[-1]["case"]["note"] == "called back from a mobile"
    finally:
        running.close()
    assert "called back from a mobile" in pbx(office, "--all")
