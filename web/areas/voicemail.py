"""Voicemail: the messages callers left, per mailbox; listen in the browser, mark heard, delete.

The engine records each message as a WAV file under `<data>/voicemail/<box>/`
(`appliance.store.voicemail` lists them and keeps which were heard).  A
message is reached only by an id the listing found, so no address a browser
sends names a file outside that folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, send_file, url_for
from flask_babel import gettext as _, lazy_gettext as _l

from appliance.store.voicemail import Message, Voicemail
from web import office
from web.areas.calls import local_time
from web.db import get_store
from web.forms import ConfirmForm

bp = Blueprint("voicemail", __name__, url_prefix="/voicemail")
NAV = (70, _l("Voicemail"))


def mailbox() -> Voicemail:
    return Voicemail(get_store(), Path(current_app.config["DATA_DIR"]) / "voicemail")


def box_names(doc: dict[str, Any]) -> dict[str, str]:
    """What each mailbox is called: a shared box by its name, an extension's by its number and name."""
    names = {str(e["number"]): _("%(n)s %(name)s", n=e["number"], name=e.get("name") or "")
             for e in doc["extensions"]}
    for ident, box in ((doc.get("routing") or {}).get("voicemail") or {}).items():
        names[ident] = (box or {}).get("name") or ident
    names.setdefault("general", _("general mailbox"))
    return names


def _message(box: str, stem: str) -> Message:
    found = mailbox().message(f"{box}/{stem}")
    if found is None:
        abort(404)
    return found


@bp.route("/")
def index():
    store = get_store()
    doc = office.document(store)
    tz = store.timezone
    who = {c["number"]: c["name"] for c in store.contacts() if c["name"]}
    boxes: dict[str, list[dict[str, Any]]] = {}
    for m in mailbox().messages():
        boxes.setdefault(m.box, []).append({"m": m, "at": local_time(m.started_at, tz),
                                            "name": m.caller_name or who.get(m.caller, "")})
    return render_template("voicemail/index.html", boxes=sorted(boxes.items()), names=box_names(doc))


@bp.route("/<box>/<stem>.wav")
def audio(box: str, stem: str):
    m = _message(box, stem)
    return send_file(m.path, mimetype="audio/wav", conditional=True, download_name=m.path.name)


@bp.route("/<box>/<stem>/heard", methods=("POST",))
def heard(box: str, stem: str):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    m = _message(box, stem)
    mailbox().mark_heard(m.id, office.now_iso())
    return redirect(url_for("voicemail.index"))


@bp.route("/<box>/<stem>/delete", methods=("POST",))
def delete(box: str, stem: str):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    m = _message(box, stem)
    mailbox().delete(m)
    flash(_("The message was deleted."), "ok")
    return redirect(url_for("voicemail.index"))
