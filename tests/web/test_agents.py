"""The agents page (each extension's state and the status its person set, the buttons that set it) and
the live calls page's supervisor buttons, against the appliance's real control socket and live monitor
(`tests.web.test_monitor_page.Appliance`), whose engine commands answer as the engine does."""

from __future__ import annotations

import pytest

from appliance.control import ControlError
from appliance.store import Store
from appliance.store.agents import AgentStatuses
from tests.web.conftest import post_form
from tests.web.test_monitor_page import CALL, TO_THE_QUEUE, Appliance, at

TALKING = [*TO_THE_QUEUE,
           {"kind": "LegStarted", "at": at(21), "call_id": CALL, "target": "104", "uri": "sip:104@x", "leg": 7},
           {"kind": "CallBridged", "at": at(24), "call_id": CALL, "by": "104"},
           {"kind": "CallAnswered", "at": at(24), "call_id": CALL, "by": "104", "wait_s": 24.0}]


@pytest.fixture
def office(panel_data):
    with Store(panel_data) as store:
        store.add_extension("104", "Olena", "pw-104-secret")
        store.add_extension("105", "Petro", "pw-105-secret")
        store.add_extension("110", "Head of sales", "pw-110-secret")
        store.db["extensions"].update("110", {"supervise": 1})
        store.db["bindings"].insert({"extension": "104", "contact": "sip:104@127.0.0.1:5062", "source_host": "127.0.0.1",
                                     "source_port": 5062, "transport": "udp", "q": 1.0, "expires_at": 4e9,
                                     "registered_at": 0.0})
    return panel_data


@pytest.fixture
def appliance(office):
    """The control socket and live monitor; the engine's agent and supervise commands keep what they were asked."""
    a = Appliance(office)
    a.asked: list[tuple[str, dict]] = []
    a.statuses = {"104": {"ext": "104", "status": "wrapup", "set": "available", "auto": True,
                          "until": "2026-03-02T09:01:10.000+00:00", "since": None, "by": ""}}

    def set_status(args: dict) -> dict:
        a.asked.append(("agents.set", args))
        view = {"ext": args["ext"], "status": args["status"], "set": args["status"], "auto": False, "until": None,
                "since": at(26), "by": args.get("by", "")}
        a.statuses[args["ext"]] = view
        return view

    def supervise(args: dict) -> dict:
        a.asked.append(("monitor.supervise", args))
        if args["ext"] != "110":
            raise ControlError(f"extension {args['ext']} may not listen to calls")
        return {"call_id": args["call_id"], "ext": args["ext"], "mode": args["mode"]}

    a.control.command("agents.status", lambda args: {"agents": a.statuses})
    a.control.command("agents.set", set_status)
    a.control.command("monitor.supervise", supervise)
    yield a
    a.stop()


def row(page: str, ext: str) -> str:
    return page.split(f'id="agent-{ext}"')[1].split("</tr>")[0]


# ---- the agents page -------------------------------------------------------------------------


def test_the_page_shows_state_and_status_from_the_running_appliance(owner, appliance):
    appliance.feed(TALKING)
    page = owner.get("/agents/").get_data(as_text=True)
    assert "Розмовляє" in row(page, "104")                            # in a call, from the live monitor
    assert "Робота після дзвінка" in row(page, "104") and "до 09:01:10" in row(page, "104")
    assert "Телефон не зареєстровано" in row(page, "105")
    assert "Доступний" in row(page, "105") and 'id="status-105-break"' in row(page, "105")
    assert 'id="appliance-down"' not in page


def test_a_status_set_on_the_page_goes_to_the_engine(owner, appliance):
    resp = post_form(owner, "/agents/status", {"ext": "105", "status": "lunch"}, page="/agents/")
    assert resp.status_code == 302
    assert appliance.asked == [("agents.set", {"ext": "105", "status": "lunch", "by": "panel"})]
    page = owner.get("/agents/").get_data(as_text=True)
    assert "Номер 105: На обіді." in page and "На обіді" in row(page, "105")


def test_without_the_appliance_the_status_is_kept_in_the_store(owner, office):
    page = owner.get("/agents/").get_data(as_text=True)
    assert 'id="appliance-down"' in page and "Вільний" in row(page, "104")   # registered, no monitor to say more
    resp = post_form(owner, "/agents/status", {"ext": "104", "status": "break"}, page="/agents/")
    assert resp.status_code == 302
    with Store(office) as store:
        assert AgentStatuses(store).get("104")["status"] == "break"
    assert "На перерві" in row(owner.get("/agents/").get_data(as_text=True), "104")


def test_wrong_extension_or_status_is_refused_with_400(owner, office):
    resp = post_form(owner, "/agents/status", {"ext": "999", "status": "break"}, page="/agents/")
    assert resp.status_code == 400 and "Немає внутрішнього номера 999." in resp.get_data(as_text=True)
    resp = post_form(owner, "/agents/status", {"ext": "104", "status": "asleep"}, page="/agents/")
    assert resp.status_code == 400 and 'id="agents-error"' in resp.get_data(as_text=True)
    with Store(office) as store:
        assert AgentStatuses(store).all() == {}


def test_a_status_without_the_form_token_changes_nothing(owner, appliance):
    resp = owner.post("/agents/status", data={"ext": "104", "status": "break"})
    assert resp.status_code == 400 and appliance.asked == []   # the panel's CSRF protection answers


# ---- the live calls page's supervisor buttons ---------------------------------------------------


def test_a_conversation_has_supervisor_buttons_for_supervisors_only(owner, appliance):
    appliance.feed(TO_THE_QUEUE)
    page = owner.get("/monitor/").get_data(as_text=True)
    assert 'action="/monitor/supervise"' not in page                 # waiting in a queue: nothing to listen to
    appliance.feed(TALKING[len(TO_THE_QUEUE):])
    page = owner.get("/monitor/").get_data(as_text=True)
    form = page.split('action="/monitor/supervise"')[1].split("</form>")[0]
    assert '<option value="110">110 Head of sales</option>' in form and 'value="104"' not in form
    assert all(f'id="supervise-{CALL}-{m}"' in form for m in ("listen", "whisper", "barge"))
    assert "Слухати" in form and "Підказати" in form and "Втрутитися" in form


def test_the_buttons_ring_the_supervisor_and_say_why_not(owner, appliance):
    appliance.feed(TALKING)
    resp = post_form(owner, "/monitor/supervise", {"call_id": CALL, "ext": "110", "mode": "whisper"}, page="/monitor/")
    assert resp.status_code == 302
    assert appliance.asked == [("monitor.supervise", {"call_id": CALL, "ext": "110", "mode": "whisper"})]
    assert "Номер 110 дзвонить керівникові (Підказати)." in owner.get("/monitor/").get_data(as_text=True)

    post_form(owner, "/monitor/supervise", {"call_id": CALL, "ext": "105", "mode": "listen"}, page="/monitor/")
    assert "Керівника не під&#39;єднано: extension 105 may not listen to calls" in owner.get("/monitor/").get_data(as_text=True)

    post_form(owner, "/monitor/supervise", {"call_id": CALL, "ext": "110", "mode": "shout"}, page="/monitor/")
    assert "shout — не спосіб стежити за дзвінком." in owner.get("/monitor/").get_data(as_text=True)
    assert len(appliance.asked) == 2

    resp = owner.post("/monitor/supervise", data={"call_id": CALL, "ext": "110", "mode": "barge"})  # no CSRF token
    assert resp.status_code == 400 and len(appliance.asked) == 2
