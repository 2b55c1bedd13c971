"""Route preview: "a call from X to Y at time T would ...", from the routing core's trace.

Every routing page shows it for the configuration in use; `trace_lines`
follows a call through a configuration document (the saved one, or one a
page is about to save) exactly as `pbx trace` does, with the appliance's
saved night switches, overrides and round-robin positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone
from typing import Any

from flask import request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Optional, Regexp

from appliance.errors import ConfigError
from appliance.routing.config import parse
from appliance.routing.facts import Call, Contact, saved_switches
from appliance.routing.numbers import normalise
from appliance.routing.router import Router
from appliance.routing.schedule import zone
from appliance.routing.trace import Scenario, follow
from appliance.store import Store

NUMBER = Regexp(r"^\+?[0-9*#]{0,20}$", message=_l("Digits only, optionally with + in front."))


class PreviewForm(FlaskForm):
    """A GET form: no CSRF (it changes nothing)."""

    class Meta:
        csrf = False

    caller = StringField(_l("Caller"), validators=[Optional(), NUMBER], default="0671234567")
    dialled = StringField(_l("Dialled number"), validators=[Optional(), NUMBER])
    at = StringField(_l("When (e.g. 2026-03-10 20:15; empty: now)"), validators=[Optional()])
    press = StringField(_l("Keys the caller presses at menus (e.g. 1 2)"), validators=[Optional()])
    answer = StringField(_l("Who answers (empty: nobody)"), validators=[Optional()])


@dataclass
class Preview:
    lines: list[str]
    result: str
    error: str | None = None


def _contacts(rows: list[dict]) -> tuple[dict[str, Contact], dict[str, str]]:
    contacts: dict[str, Contact] = {}
    learned: dict[str, str] = {}
    for row in rows:
        number = normalise(str(row.get("number") or ""))
        if not number:
            continue
        manager = str(row["manager"]) if row.get("manager") else None
        if row.get("learned") and manager:
            learned[number] = manager
            manager = None
        contacts[number] = Contact(str(row.get("name") or ""), manager, bool(row.get("vip")), str(row.get("note") or ""))
    return contacts, learned


def when(text: str | None, tz: str) -> datetime:
    if not text:
        return datetime.now(dt_timezone.utc)
    parsed = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone(tz))


def trace_lines(store: Store, doc: dict[str, Any] | None, caller: str, dialled: str, at: str | None = None,
                press: tuple[str, ...] = (), answer: str | None = None) -> Preview:
    """Follow one call through `doc` (default: the saved configuration)."""
    if doc is None:
        from appliance.configfile import export_document

        doc = export_document(store)
    extensions = {str(e["number"]): str(e.get("name") or "") for e in doc.get("extensions") or []}
    tz = str(doc.get("timezone") or store.timezone)
    try:
        router = Router(parse(doc.get("routing") or {}, extensions, timezone=tz))
    except ConfigError as e:
        return Preview([], "", error=str(e.at("routing")))
    try:
        at_time = when(at, tz)
    except ValueError:
        return Preview([], "", error=f"'{at}' is not a time like 2026-03-10 20:15")
    contacts, learned = _contacts(store.contacts())
    saved = {key: store.routing_state(key) for key in ("night", "overrides", "positions")}
    night, overrides = saved_switches(saved.get("night"), saved.get("overrides"))
    scenario = Scenario(answer=answer or None, press=tuple(press), contacts=contacts, learned=learned)
    result = follow(router, Call(caller, dialled, ""), at_time, scenario, saved_night=night,
                    saved_overrides=overrides,
                    saved_positions={str(k): int(v) for k, v in (saved.get("positions") or {}).items()})
    text = result.text().splitlines()
    return Preview(text[1:] if len(text) > 1 else text, result.result)


def from_request(store: Store, doc: dict[str, Any] | None = None) -> tuple[PreviewForm, Preview | None]:
    """The preview form of a page, filled from its query string, and its trace when one was asked for."""
    form = PreviewForm(request.args)
    if not form.dialled.data:
        numbers = [n for t in store.trunks() for n in (t.get("numbers") or [])]
        form.dialled.data = numbers[0] if numbers else "0441234567"
    if "caller" not in request.args or not form.validate():
        return form, None
    return form, trace_lines(store, doc, form.caller.data or "", form.dialled.data or "", form.at.data,
                             tuple((form.press.data or "").split()), form.answer.data or None)
