"""Call records: search by number (in any usual form), by day, by outcome and for a recording, 50 to a
page; each record opens the path the call took, in words, and its recording when the call has one,
which the owner may delete (the record stays and says when).

The records are what the engine's recorder writes (`calls`, read through
`appliance.store.calls`); days are the office's days, in its time zone.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, SelectField, StringField
from wtforms.validators import Optional, ValidationError

from appliance.routing.numbers import normalise
from appliance.recording.retention import inside
from appliance.store.calls import CallQuery, CallRecords
from appliance.store.recordings import Recordings
from web import destinations, office
from web.db import get_store
from web.forms import ConfirmForm

bp = Blueprint("calls", __name__, url_prefix="/calls")
NAV = (80, _l("Call records"))

PER_PAGE = 50

# The outcomes the engine writes (appliance.engine.session.CallOutcome), in the order the search offers them.
OUTCOMES = (
    ("answered", _l("answered")),
    ("missed", _l("missed")),
    ("voicemail", _l("left a message")),
    ("abandoned", _l("caller hung up")),
    ("failed", _l("failed")),
    ("refused", _l("refused")),
    ("pickup", _l("picked up")),
    ("transferred", _l("handed to a transfer")),
    ("feature", _l("feature code")),
    ("interrupted", _l("interrupted")),
    ("in progress", _l("in progress")),
)


class SearchForm(FlaskForm):
    class Meta:
        csrf = False  # a search changes nothing, and its address can be bookmarked

    number = StringField(_l("Number"))
    day_from = DateField(_l("From (day)"), validators=[Optional()])
    day_to = DateField(_l("To (day)"), validators=[Optional()])
    outcome = SelectField(_l("Outcome"), choices=[], default="")
    recorded = BooleanField(_l("Only calls with a recording"))

    def validate_number(self, field: StringField) -> None:
        text = (field.data or "").strip()
        if text and not any(c.isdigit() for c in text) and text.lower() != "anonymous":
            raise ValidationError(_("Digits only, optionally with + in front."))

    def validate_day_to(self, field: DateField) -> None:
        if field.data and self.day_from.data and field.data < self.day_from.data:
            raise ValidationError(_("The last day comes before the first."))


def local_time(iso: str | None, tz: str) -> str:
    """A record's UTC time as the office's wall clock, to the minute."""
    if not iso:
        return ""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")


def number_forms(text: str) -> tuple[str, ...]:
    """Every form a record may hold a number in: +380671234567, 380671234567, 0671234567; others as typed."""
    number = normalise(text)
    if text.strip().lower() == "anonymous" or (text.strip() and not number):
        return ("",)  # a withheld number is kept empty
    if number.startswith("+380") and len(number) == 13:
        return (number, number[1:], number[3:])
    if number.startswith("+"):
        return (number, number[1:])
    return (number,) if number else ()


def _day_start(day: date, tz: str) -> str:
    """The first moment of an office day, in UTC as the records write it."""
    start = datetime.combine(day, time(0), ZoneInfo(tz)).astimezone(timezone.utc)
    return start.isoformat(timespec="milliseconds")


def query_of(form: SearchForm, tz: str) -> CallQuery:
    return CallQuery(
        numbers=number_forms(form.number.data or ""),
        started_from=_day_start(form.day_from.data, tz) if form.day_from.data else None,
        started_before=_day_start(form.day_to.data + timedelta(days=1), tz) if form.day_to.data else None,
        outcome=form.outcome.data or None, recorded=bool(form.recorded.data))


def outcome_words(outcome: str | None) -> str:
    return str(dict(OUTCOMES).get(outcome or "", outcome or ""))


def _outcome_choices(records: CallRecords) -> list[tuple[str, str]]:
    known = [(value, str(label)) for value, label in OUTCOMES]
    extra = [(o, o) for o in records.outcomes() if o not in dict(OUTCOMES)]
    return [("", _("any"))] + known + extra


@bp.route("/")
def index():
    store = get_store()
    records = CallRecords(store)
    form = SearchForm(formdata=request.args)
    form.outcome.choices = _outcome_choices(records)
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and int(page) > 0 else 1
    if request.args and not form.validate():
        return render_template("calls/index.html", form=form, rows=[], total=0, page=1, pages=1,
                               outcome_words=outcome_words, args={}), 400
    rows, total = records.search(query_of(form, store.timezone), page, PER_PAGE)
    tz = store.timezone
    for r in rows:
        r["when"] = local_time(r["started_at"], tz)
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template("calls/index.html", form=form, rows=rows, total=total, page=page,
                           pages=max((total + PER_PAGE - 1) // PER_PAGE, 1), outcome_words=outcome_words, args=args)


@bp.route("/<call_id>")
def show(call_id: str):
    store = get_store()
    record = CallRecords(store).record(call_id)
    if record is None:
        abort(404)
    doc = office.document(store)
    tz = store.timezone
    steps = [{"t": p.get("t"), "kind": p.get("kind", ""),
              "text": step_words({**p, "at": local_time(p["at"], tz)} if "at" in p else p, doc)}
             for p in record["path"]]
    return render_template("calls/show.html", r=record, steps=steps, outcome_words=outcome_words,
                           started=local_time(record["started_at"], store.timezone),
                           ended=local_time(record["ended_at"], tz),
                           recording=recording_path(store, call_id) is not None)


def recording_path(store: Any, call_id: str) -> Path | None:
    """The call's recording file: named by its record, and only inside DATA/recordings."""
    file = Recordings(store).file_of(call_id)
    if not file:
        return None
    path = inside(Path(current_app.config["DATA_DIR"]) / "recordings", file)
    return path if path is not None and path.is_file() else None


@bp.route("/<call_id>/recording/delete", methods=("POST",))
def delete_recording(call_id: str):
    """The recording's file is deleted and its link cleared; the call's record stays and says so."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    store = get_store()
    path = recording_path(store, call_id)
    if path is None:
        abort(404)
    path.unlink(missing_ok=True)
    Recordings(store).forget(call_id, {"kind": "recording", "what": "deleted", "at": office.now_iso()})
    flash(_("The recording was deleted."), "ok")
    return redirect(url_for("calls.show", call_id=call_id))


@bp.route("/<call_id>/recording")
def recording(call_id: str):
    """The recording to listen to (ranges, for the player) or, with ?download=1, to save."""
    path = recording_path(get_store(), call_id)
    if path is None:
        abort(404)
    return send_file(path, mimetype="audio/mpeg", conditional=True, download_name=path.name,
                     as_attachment=request.args.get("download") == "1")


# -- the path in words ----------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    return str(value)


def _dest(doc: dict[str, Any], ref: Any) -> str:
    text = _text(ref)
    if text.startswith("ext:"):
        text = text[4:]
    return destinations.describe(doc, text) or text


# What each kind of step the engine notes (Session.note) says; `p` is the step, `d` the destination in words.
STEP_WORDS: dict[str, Callable[[dict[str, Any], Callable[[Any], str]], str]] = {
    "step": lambda p, d: _("next: %(step)s, %(dest)s", step=_text(p.get("step")), dest=d(p.get("dest"))),
    "outcome": lambda p, d: _("the %(step)s step ended: %(outcome)s", step=_text(p.get("step")),
                              outcome=_text(p.get("outcome"))),
    "trace": lambda p, d: _text(p.get("text")),
    "leg": lambda p, d: _("rang %(target)s (answer %(code)s)", target=_text(p.get("target")),
                          code=_text(p.get("code"))),
    "answered": lambda p, d: _("answered by %(by)s", by=_text(p.get("by"))),
    "skip": lambda p, d: _("skipped %(target)s: %(why)s", target=_text(p.get("target")), why=_text(p.get("why"))),
    "confirming": lambda p, d: _("%(target)s answered; waiting for the key press", target=_text(p.get("target"))),
    "confirmed": lambda p, d: _("%(target)s pressed the key and took the call", target=_text(p.get("target"))),
    "not_confirmed": lambda p, d: _("%(target)s did not press the key", target=_text(p.get("target"))),
    "voicemail": lambda p, d: _("left a message in mailbox %(box)s", box=_text(p.get("box"))),
    "queue": lambda p, d: _("waited in queue %(queue)s, position %(position)s", queue=_text(p.get("queue")),
                            position=_text(p.get("position"))),
    "announced": lambda p, d: _("heard their position: %(position)s", position=_text(p.get("position"))),
    "queue_ring": lambda p, d: _("the queue rang %(targets)s", targets=_text(p.get("targets"))),
    "queue_attempt": lambda p, d: _("nobody the queue rang answered (%(codes)s)", codes=_text(p.get("codes"))),
    "callback": lambda p, d: _("asked to be called back (queue %(queue)s)", queue=_text(p.get("queue"))),
    "feature": lambda p, d: _("feature code %(code)s", code=_text(p.get("code"))),
    "refused": lambda p, d: _("refused: %(status)s %(reason)s", status=_text(p.get("status")),
                              reason=_text(p.get("reason"))),
    "pickup": lambda p, d: _("picked up by %(by)s", by=_text(p.get("by"))),
    "transfer": lambda p, d: _("%(by)s transferred it to %(to)s", by=_text(p.get("by")), to=_text(p.get("to"))),
    "transferred": lambda p, d: _("transferred by %(by)s to %(to)s", by=_text(p.get("by")),
                                  to=_text(p.get("to") or p.get("to_call"))),
    "transfer_refused": lambda p, d: _("the transfer was refused: %(status)s %(reason)s",
                                       status=_text(p.get("status")), reason=_text(p.get("reason"))),
    "transfer_failed": lambda p, d: _("the transfer to %(to)s failed", to=_text(p.get("to") or p.get("by"))),
    "returned": lambda p, d: _("came back to %(to)s", to=_text(p.get("to"))),
    "fallback": lambda p, d: _("went on: %(why)s", why=_text(p.get("why"))),
    "night": lambda p, d: _("night switch: %(result)s", result=_text(p.get("result"))),
    "end": lambda p, d: _("ended: %(reason)s", reason=_text(p.get("reason")) or "-"),
    "recording": lambda p, d: recording_words(p),
}


def recording_words(p: dict[str, Any]) -> str:
    """What the engine noted about the call's recording (appliance/engine/recording.py)."""
    what = p.get("what")
    if what == "policy":
        return _("recorded by policy %(policy)s of %(by)s", policy=_text(p.get("policy")), by=_text(p.get("by")))
    if what == "announced":
        return _("both heard that the call is recorded")
    if what == "started":
        return _("recording started (part %(part)s)", part=_text(p.get("part")))
    if what == "paused":
        why = {"key": _("the key was pressed"), "disk": _("the disk is nearly full"),
               "rejoined": _("the call was joined to someone else")}.get(str(p.get("why")), _text(p.get("why")))
        return _("recording stopped: %(why)s", why=why)
    if what == "not started":
        return _("recording not started: the disk is nearly full")
    if what == "deleted":
        return _("the recording was deleted in the panel at %(at)s", at=_text(p.get("at")))
    return ", ".join(f"{k}={_text(v)}" for k, v in p.items() if k not in ("t", "kind"))


def step_words(p: dict[str, Any], doc: dict[str, Any]) -> str:
    """One step of a call's path in words; a kind this panel does not know yet, as its data."""
    say = STEP_WORDS.get(p.get("kind", ""))
    if say is not None:
        return say(p, lambda ref: _dest(doc, ref))
    return ", ".join(f"{k}={_text(v)}" for k, v in p.items() if k not in ("t", "kind"))
