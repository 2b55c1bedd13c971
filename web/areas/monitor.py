"""Live calls: every call in progress, its stage and for how long, updated as it changes.

The page shows the running appliance's snapshot (`monitor.snapshot`), which
is all it needs without JavaScript.  `web/static/monitor.js` then opens
`/monitor/events`, a stream of server-sent events fed by one subscription to
the control socket (`appliance.monitor.Following`) for as long as the page is
open: the rows come rendered by the same template as the page's, so the
script only puts them in place and counts the seconds.  The stream ends when
the browser goes away (a write fails, at the latest at the next comment line
sent every `HEARTBEAT` seconds) or the appliance stops (it closes the socket).

A waiting or ringing call can be taken to a chosen extension (`monitor.take`).  A caller in a
queue can be moved to another extension, group, queue or any destination (`monitor.move`), put at
another place in the line (`monitor.place`) or made a VIP for the call (`monitor.vip`).  A supervisor's
phone can be rung into a conversation to listen in, whisper to the agent or barge in
(`monitor.supervise`; the extensions offered are those with the `supervise` permission), and
asked again with another mode to change it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Iterator

from flask import (Blueprint, Response, current_app, flash, redirect, render_template, request,
                   stream_with_context, url_for)
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, SelectField
from wtforms.validators import NumberRange

from appliance.control import ControlError, socket_path
from appliance.monitor import ENDED, SNAPSHOT, TAKEABLE, Following
from web import office
from web.db import ask, get_store
from web.destinations import choices as destination_choices, describe

bp = Blueprint("monitor", __name__, url_prefix="/monitor")
NAV = (2, _l("Live calls"))

HEARTBEAT = 15.0   # seconds between comment lines that keep a quiet stream (and proxies) open

STAGES = {
    "arriving": _l("Being routed"), "greeting": _l("Hearing a greeting"), "menu": _l("In a voice menu"),
    "queue": _l("Waiting in a queue"), "ringing": _l("Phones ringing"), "talking": _l("In conversation"),
    "held": _l("Put on hold"), "transferring": _l("Being transferred"), "voicemail": _l("Leaving a message"),
    "webhook": _l("Asking a webhook"),
}


class TakeForm(FlaskForm):
    call_id = HiddenField()
    ext = SelectField(_l("Extension to ring"), validate_choice=False)


# Stages in which a supervisor can join a call, and the modes with their buttons' words.
SUPERVISABLE = frozenset({"talking", "held"})
MODES = {"listen": _l("Listen in"), "whisper": _l("Whisper"), "barge": _l("Barge in")}


class SuperviseForm(FlaskForm):
    call_id = HiddenField()
    ext = SelectField(_l("Supervisor's phone"), validate_choice=False)
    mode = HiddenField()


class MoveForm(FlaskForm):
    call_id = HiddenField()
    to = SelectField(_l("Move to"), validate_choice=False)


class PlaceForm(FlaskForm):
    call_id = HiddenField()
    position = IntegerField(_l("Place in the queue"), validators=[NumberRange(min=1)])


class VipForm(FlaskForm):
    call_id = HiddenField()


# Stages of a caller in a queue (waiting, or agents ringing for them): moved, placed, made a VIP.
QUEUED = frozenset({"queue", "ringing"})
NOT_A_MOVE = frozenset({"hangup", "parent", "repeat"})


def clock(seconds: float | None) -> str:
    s = int(seconds or 0)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def page_context() -> dict[str, Any]:
    """What every row needs: extension and destination names, and the take form's choices."""
    store = get_store()
    extensions = store.extensions()
    doc = office.document(store)
    names = {e["number"]: e.get("name") or "" for e in extensions}
    choices = [(e["number"], f"{e['number']} {e.get('name') or ''}".strip()) for e in extensions]
    supervisors = [(n, label) for (n, label), e in zip(choices, extensions) if e.get("supervise")]
    destinations = [(ref, words) for ref, words in destination_choices(doc) if ref not in NOT_A_MOVE]
    return {"names": names, "choices": choices, "stages": STAGES, "takeable": {str(s) for s in TAKEABLE},
            "queued": QUEUED, "destinations": destinations,
            "supervisors": supervisors, "supervisable": SUPERVISABLE, "modes": MODES,
            "clock": clock, "epoch": epoch, "place": lambda ref: describe(doc, ref)}


def row(call: dict, ctx: dict[str, Any]) -> str:
    return render_template("monitor/_row.html", call=call, **ctx)


@bp.route("/")
def index():
    snap, down = ask("monitor.snapshot")
    ctx = page_context()
    return render_template("monitor/index.html", snap=snap, down=down, **ctx)


@bp.route("/take", methods=("POST",))
def take():
    form = TakeForm()
    if not form.validate_on_submit():
        flash(_("The form expired or did not come from this panel; reload the page and try again."), "error")
        return redirect(url_for("monitor.index"))
    _answer, error = ask("monitor.take", call_id=form.call_id.data, ext=form.ext.data)
    if error:
        flash(_("The call was not taken: %(why)s", why=error), "error")
    else:
        flash(_("Extension %(ext)s rings for the call.", ext=form.ext.data), "ok")
    return redirect(url_for("monitor.index"))


@bp.route("/supervise", methods=("POST",))
def supervise():
    form = SuperviseForm()
    if not form.validate_on_submit():
        flash(_("The form expired or did not come from this panel; reload the page and try again."), "error")
        return redirect(url_for("monitor.index"))
    mode = request.form.get("mode", "")
    if mode not in MODES:
        flash(_("%(mode)s is not a way to supervise a call.", mode=mode), "error")
        return redirect(url_for("monitor.index"))
    _answer, error = ask("monitor.supervise", call_id=form.call_id.data, ext=form.ext.data, mode=mode)
    if error:
        flash(_("The supervisor was not connected: %(why)s", why=error), "error")
    else:
        flash(_("Extension %(ext)s rings for the supervisor (%(mode)s).", ext=form.ext.data, mode=MODES[mode]), "ok")
    return redirect(url_for("monitor.index"))


EXPIRED = _l("The form expired or did not come from this panel; reload the page and try again.")


@bp.route("/move", methods=("POST",))
def move():
    form = MoveForm()
    if not form.validate_on_submit():
        flash(str(EXPIRED), "error")
        return redirect(url_for("monitor.index"))
    doc = office.document(get_store())
    _answer, error = ask("monitor.move", call_id=form.call_id.data, to=form.to.data, by="panel")
    if error:
        flash(_("The caller was not moved: %(why)s", why=error), "error")
    else:
        flash(_("The caller goes to %(to)s.", to=describe(doc, form.to.data)), "ok")
    return redirect(url_for("monitor.index"))


@bp.route("/place", methods=("POST",))
def place():
    form = PlaceForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            flash(str(EXPIRED), "error")
        else:
            flash(_("A place in the queue is a whole number, 1 or more."), "error")
        return redirect(url_for("monitor.index"))
    answer, error = ask("monitor.place", call_id=form.call_id.data, position=form.position.data, by="panel")
    if error:
        flash(_("The caller's place was not changed: %(why)s", why=error), "error")
    else:
        flash(_("The caller is now number %(n)s in the queue.", n=answer["position"]), "ok")
    return redirect(url_for("monitor.index"))


@bp.route("/vip", methods=("POST",))
def vip():
    form = VipForm()
    if not form.validate_on_submit():
        flash(str(EXPIRED), "error")
        return redirect(url_for("monitor.index"))
    answer, error = ask("monitor.vip", call_id=form.call_id.data, by="panel")
    if error:
        flash(_("The caller was not made a VIP: %(why)s", why=error), "error")
    else:
        flash(_("VIP for this call: now number %(n)s in the queue.", n=answer["position"]), "ok")
    return redirect(url_for("monitor.index"))


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@bp.route("/events")
def events():
    following = Following(socket_path(current_app.config["DATA_DIR"]), quiet=HEARTBEAT)
    ctx = page_context()

    def stream() -> Iterator[str]:
        try:
            yield "retry: 3000\n\n"
            for item in following:
                if item is None:
                    yield ": still here\n\n"
                elif item["kind"] == SNAPSHOT:
                    rows = "".join(row(c, ctx) for c in item["calls"])
                    yield sse("snapshot", {"html": rows, "now": epoch(item["now"])})
                elif item["kind"] == ENDED:
                    yield sse("ended", {"id": item["call_id"], "now": epoch(item["at"])})
                else:
                    yield sse("call", {"id": item["call_id"], "html": row(item["call"], ctx), "now": epoch(item["at"])})
        except ControlError as e:
            yield sse("down", {"why": str(e)})
        finally:
            following.close()

    return Response(stream_with_context(stream()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
