"""Agents: each extension's state as the system sees it and its status as the person set it.

The state (phone registered, ringing, in a call) comes from the running
appliance's live monitor (`monitor.snapshot`) and the bindings; the status
(available, on a break, at lunch, after-call work) from the engine
(`agents.status`: with the automatic after-call work that follows a call),
or from the store when no appliance runs.  A status set here goes to the
engine (`agents.set`: groups and queues stop ringing a paused agent at once,
the event `AgentStatusChanged` goes out); when no appliance runs, it is
written to the store and the engine reads it when it starts.  Desk phones
set the same statuses with *45 (*451 break, *452 lunch, *453 after-call
work) and *46.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm

from appliance.control import ControlError
from appliance.store.agents import STATUSES, AgentStatuses
from web.db import ask, control, get_store

bp = Blueprint("agents", __name__, url_prefix="/agents")
NAV = (3, _l("Agents"))

STATUS_WORDS = {"available": _l("Available"), "break": _l("On a break"), "lunch": _l("At lunch"),
                "wrapup": _l("After-call work")}
STATE_WORDS = {"call": _l("In a call"), "ringing": _l("Ringing"), "idle": _l("Free"),
               "unregistered": _l("Phone not registered")}


class StatusForm(FlaskForm):
    """The status buttons: the extension and the pressed button's value come in the form."""


def states(snapshot: dict | None, registered: set[str]) -> dict[str, str]:
    """Extension -> what the system sees: in a call, ringing, free, or its phone not registered."""
    out = {ext: "idle" for ext in registered}
    for call in (snapshot or {}).get("calls", []):
        for ext in call.get("ringing") or []:
            out[ext] = "call" if out.get(ext) == "call" else "ringing"
        if call.get("stage") in ("talking", "held", "transferring"):
            for ext in (call.get("with"), call.get("extension")):
                if ext:
                    out[ext] = "call"
    return out


def statuses() -> tuple[dict[str, dict], str | None]:
    answer, down = ask("agents.status")
    if answer is not None:
        return answer["agents"], None
    saved = AgentStatuses(get_store()).all()
    return {ext: {"status": row["status"], "set": row["status"], "auto": False, "until": None, **row}
            for ext, row in saved.items()}, down


@bp.route("/")
def index():
    return page()


def page(error: str = "", code: int = 200):
    store = get_store()
    snap, _down = ask("monitor.snapshot")
    now = states(snap, {b["extension"] for b in store.bindings()})
    status, down = statuses()
    agents: list[dict[str, Any]] = []
    for e in store.extensions():
        ext = e["number"]
        st = status.get(ext) or {"status": "available", "set": "available", "auto": False, "until": None}
        agents.append({"ext": ext, "name": e.get("name") or "", "state": now.get(ext, "unregistered"), **st,
                       "since": st.get("since"), "by": st.get("by") or ""})
    return render_template("agents/index.html", agents=agents, down=down, form=StatusForm(), error=error,
                           statuses=STATUSES, status_words=STATUS_WORDS, state_words=STATE_WORDS), code


def set_status(ext: str, status: str) -> str | None:
    """Through the running appliance, else on the store; None when it is set, else why not."""
    client = control()
    try:
        client.connect()
    except ControlError:
        AgentStatuses(get_store()).set(ext, status, "panel")
        return None
    try:
        with client:
            client.request("agents.set", ext=ext, status=status, by="panel")
    except ControlError as e:
        return str(e)
    return None


@bp.route("/status", methods=("POST",))
def status():
    form = StatusForm()
    if not form.validate_on_submit():
        flash(_("The form expired or did not come from this panel; reload the page and try again."), "error")
        return redirect(url_for("agents.index"))
    ext, value = request.form.get("ext", ""), request.form.get("status", "")
    if get_store().extension(ext) is None:
        return page(_("There is no extension %(ext)s.", ext=ext), 400)
    if value not in STATUSES:
        return page(_("%(status)s is not a status.", status=value), 400)
    error = set_status(ext, value)
    if error:
        flash(_("The status was not changed: %(why)s", why=error), "error")
    else:
        flash(_("Extension %(ext)s: %(status)s.", ext=ext, status=STATUS_WORDS[value]), "ok")
    return redirect(url_for("agents.index"))
