"""Webhooks: the routing destinations that ask the owner's URL where a call goes, and the event
URLs (`notify`) that tell the owner's CRM about calls and missed-call cases.

Both are parts of the configuration document and go through `web.office.save`.
The outbox's waiting deliveries are shown beside the event URLs, so the owner
sees when a CRM stopped answering.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, abort, render_template, redirect, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, FloatField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Optional, Regexp

from appliance.errors import ConfigError
from appliance.store.missed import Outbox
from web import destinations, office
from web.areas.contacts import saved
from web.db import get_store
from web.forms import ConfirmForm

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
NAV = (75, _l("Webhooks"))

EXIT_KEYS = ("on_fail", "on_no_answer", "on_busy", "on_unavailable", "on_failure")
# The validator's key for a field, where it differs from the form's name.
ALIASES = {"rings": "ring_time", "on_no_answer": "on_fail", "on_busy": "on_fail", "on_unavailable": "on_fail",
           "on_failure": "on_fail"}


class WebhookForm(FlaskForm):
    name = StringField(_l("Name"))
    url = StringField(_l("URL"), validators=[DataRequired(_l("Give the URL the appliance asks."))])
    timeout = FloatField(_l("Wait for the answer (seconds)"), default=1.5,
                         validators=[InputRequired(_l("Give a number of seconds, like 1.5."))])
    fallback = SelectField(_l("When it does not answer in time or names nothing usable"), choices=[])
    allow_numbers = BooleanField(_l("It may answer with an outside number"))
    ring_time = IntegerField(_l("Ring time of the extension or number it names (seconds)"), default=25,
                             validators=[InputRequired(_l("Give a number of seconds."))])
    on_fail = SelectField(_l("When that extension or number does not answer"), choices=[])


class NewWebhookForm(WebhookForm):
    ident = StringField(_l("Id"), validators=[
        DataRequired(_l("Give an id, like crm.")),
        Regexp(r"^[^\s:]+$", message=_l("No spaces or colons."))])


class NotifyForm(FlaskForm):
    urls = TextAreaField(_l("Event URLs, one a line"))
    secret = StringField(_l("Signing secret"))
    timeout_seconds = FloatField(_l("Wait for each delivery (seconds)"), default=5,
                                 validators=[Optional()])


def new_secret() -> str:
    return secrets.token_urlsafe(32)


# -- the routing webhooks ---------------------------------------------------------------------


def _webhooks(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return doc["routing"].setdefault("webhooks", {})


def _choices(form: WebhookForm, doc: dict[str, Any], ident: str | None) -> None:
    options = destinations.choices(doc, exclude=f"webhook:{ident}" if ident else None)
    form.fallback.choices = options
    form.on_fail.choices = [("", _("the same as when it does not answer"))] + options


def _fill(form: WebhookForm, old: dict[str, Any]) -> dict[str, Any]:
    """The webhook the form describes; exits written per outcome in the file stay unless on_fail is chosen."""
    item: dict[str, Any] = {"name": form.name.data.strip(), "url": form.url.data.strip(),
                            "timeout": form.timeout.data, "fallback": form.fallback.data,
                            "allow_numbers": bool(form.allow_numbers.data), "ring_time": form.ring_time.data}
    if form.on_fail.data:
        item["on_fail"] = form.on_fail.data
    elif old.get("on_fail") in (None, old.get("fallback")):
        pass  # the fallback, which the validator takes when no exit is given
    else:
        item.update({k: old[k] for k in EXIT_KEYS[1:] if k in old})
    return item


def _choice(ref: Any) -> str:
    """A saved reference as the select offers it: the file writes an extension as ext:101, the select 101."""
    text = str(ref or "")
    return text[4:] if text.startswith("ext:") else text


def _load(form: WebhookForm, item: dict[str, Any]) -> None:
    form.name.data = item.get("name") or ""
    form.url.data = item.get("url") or ""
    form.timeout.data = item.get("timeout", 1.5)
    form.fallback.data = _choice(item.get("fallback"))
    form.allow_numbers.data = bool(item.get("allow_numbers"))
    form.ring_time.data = item.get("ring_time", 25)
    on_fail = item.get("on_fail")
    form.on_fail.data = "" if on_fail in (None, item.get("fallback")) else _choice(on_fail)


def _edit_page(form: WebhookForm, ident: str | None, status: int = 200):
    return render_template("webhooks/edit.html", form=form, ident=ident, remove=ConfirmForm()), status


def _store_webhook(doc: dict[str, Any], form: WebhookForm, ident: str):
    hooks = _webhooks(doc)
    hooks[ident] = _fill(form, hooks.get(ident) or {})
    try:
        saved(doc, f"saved webhook {ident}", _("Saved."))
    except ConfigError as err:
        office.put_error(form, err, ("routing", "webhooks", ident), ALIASES)
        return None
    return redirect(url_for("webhooks.index"))


@bp.route("/new", methods=("GET", "POST"))
def new():
    doc = office.document(get_store())
    form = NewWebhookForm()
    _choices(form, doc, None)
    if not form.is_submitted():
        form.fallback.data = "hangup"
        return _edit_page(form, None)
    if not form.validate():
        return _edit_page(form, None, 400)
    ident = form.ident.data.strip()
    if ident in _webhooks(doc):
        form.ident.errors.append(_("There is a webhook %(id)s already.", id=ident))
        return _edit_page(form, None, 400)
    return _store_webhook(doc, form, ident) or _edit_page(form, None, 400)


@bp.route("/<ident>", methods=("GET", "POST"))
def edit(ident: str):
    doc = office.document(get_store())
    if ident not in _webhooks(doc):
        abort(404)
    form = WebhookForm()
    _choices(form, doc, ident)
    if not form.is_submitted():
        _load(form, _webhooks(doc)[ident])
        return _edit_page(form, ident)
    if not form.validate():
        return _edit_page(form, ident, 400)
    return _store_webhook(doc, form, ident) or _edit_page(form, ident, 400)


@bp.route("/<ident>/delete", methods=("POST",))
def delete(ident: str):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    doc = office.document(get_store())
    if ident not in _webhooks(doc):
        abort(404)
    _webhooks(doc).pop(ident)
    try:
        saved(doc, f"deleted webhook {ident}", _("Webhook %(id)s was deleted.", id=ident))
    except ConfigError as err:
        doc = office.document(get_store())
        form = WebhookForm(formdata=None)
        _choices(form, doc, ident)
        _load(form, _webhooks(doc)[ident])
        form.form_errors.append(_("It cannot be deleted: %(why)s", why=str(err)))
        return _edit_page(form, ident, 400)
    return redirect(url_for("webhooks.index"))


# -- the event URLs (notify) and the outbox ------------------------------------------------------------


def _load_notify(form: NotifyForm, notify: dict[str, Any]) -> None:
    form.urls.data = "\n".join(notify.get("urls") or [])
    form.secret.data = notify.get("secret") or ""
    form.timeout_seconds.data = notify.get("timeout_seconds", 5)


def _notify_of(form: NotifyForm) -> dict[str, Any]:
    """The section the form describes; a secret is made when there are URLs and none was given."""
    urls = [line.strip() for line in (form.urls.data or "").splitlines() if line.strip()]
    out: dict[str, Any] = {}
    if urls:
        out["urls"] = urls
    secret = (form.secret.data or "").strip() or (new_secret() if urls else "")
    if secret:
        out["secret"] = secret
    if form.timeout_seconds.data is not None:
        value = form.timeout_seconds.data
        out["timeout_seconds"] = int(value) if float(value).is_integer() else value
    return out


def _deliveries() -> list[dict[str, Any]]:
    """Each URL's oldest waiting event: what it is, how often it failed, when it is tried next."""
    out = []
    for d in Outbox(get_store()).heads():
        nxt = datetime.fromtimestamp(d.next_at, timezone.utc).isoformat(timespec="seconds") if d.next_at else ""
        out.append({"url": d.url, "kind": d.kind, "event_id": d.event_id, "attempts": d.attempts, "next_at": nxt})
    return out


@bp.route("/")
def index(notify: NotifyForm | None = None, status: int = 200):
    store = get_store()
    doc = office.document(store)
    if notify is None:
        notify = NotifyForm(formdata=None)
        _load_notify(notify, doc.get("notify") or {})
    hooks = [(ident, item, destinations.describe(doc, _choice(item.get("fallback"))))
             for ident, item in sorted(_webhooks(doc).items())]
    return render_template("webhooks/index.html", hooks=hooks, notify=notify, secret=ConfirmForm(),
                           deliveries=_deliveries(), pending=Outbox(store).pending()), status


@bp.route("/notify", methods=("POST",))
def notify():
    form = NotifyForm()
    if not form.validate_on_submit():
        return index(notify=form, status=400)
    doc = office.document(get_store())
    section = _notify_of(form)
    if section:
        doc["notify"] = section
    else:
        doc.pop("notify", None)
    try:
        saved(doc, "saved the event URLs", _("Saved."))
    except ConfigError as err:
        office.put_error(form, err, ("notify",))
        return index(notify=form, status=400)
    return redirect(url_for("webhooks.index"))


@bp.route("/secret", methods=("POST",))
def secret():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    doc = office.document(get_store())
    doc["notify"] = {**(doc.get("notify") or {}), "secret": new_secret()}
    saved(doc, "made a new signing secret for the event URLs",
          _("A new secret is in use: give it to the CRM, which checks the signature."))
    return redirect(url_for("webhooks.index"))
