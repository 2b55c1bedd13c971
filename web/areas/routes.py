"""Inbound routes: the ordered list of `routing.routes` (which calls each takes, and where they go)
and the `unmatched` destination for calls no route takes.

Every change is one whole document handed to `office.save`, so the validator
`pbx config import` uses refuses a route hidden behind one that takes every
call, or a change that leaves calls nowhere, and its reason is shown next to
the field that caused it.  The helpers at the top are shared with the hunt
groups page, which edits the same section.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from appliance.errors import ConfigError
from appliance.routing.config import dump, read
from web import destinations, office, preview
from web.db import applied, get_store

bp = Blueprint("routes", __name__, url_prefix="/routes")
NAV = (25, _l("Inbound routes"))

PREVIEW_ARGS = ("caller", "dialled", "at", "press", "answer")


# ---- shared with the hunt groups page ------------------------------------------------------

def preview_args() -> dict[str, str]:
    """The preview's query of this page, carried to the page a save redirects to,
    so the same call is traced before and after the change."""
    return {k: v for k in PREVIEW_ARGS if (v := request.args.get(k))}


def editable(store) -> dict[str, Any]:
    """The whole document with its routing section in the canonical form the validator writes
    (members as mappings, exits spelled out), so a page reads one shape only."""
    doc = office.document(store)
    names = {str(e["number"]): str(e.get("name") or "") for e in doc.get("extensions") or []}
    try:
        doc["routing"] = dump(read(doc.get("routing") or {}, names, timezone=doc.get("timezone") or None))
    except ConfigError:
        pass  # a stored section the reader refuses is shown as it is; saving will say why
    return doc


def select_value(ref: Any) -> str:
    """A canonical reference as the value of a destination select (`ext:101` is offered as `101`)."""
    text = "" if ref is None else str(ref)
    return text[4:] if text.startswith("ext:") else text


def with_current(choices: list[tuple[str, str]], value: str) -> list[tuple[str, str]]:
    """Keep a value the document has even when the list of choices does not offer it."""
    if value and value not in {v for v, _w in choices}:
        return [*choices, (value, value)]
    return choices


def save(store, doc: dict[str, Any], summary: str) -> ConfigError | None:
    """Save the document as a version and tell the running appliance; the refusal, if any."""
    try:
        office.save(store, doc, who="owner", summary=summary)
    except ConfigError as e:
        return e
    applied(_("Saved."))
    return None


class ActionForm(FlaskForm):
    """The buttons of a list (up, down, delete): only the CSRF token."""


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


# ---- the route form ------------------------------------------------------------------------

NUMBER_LINE = re.compile(r"^\+?[0-9][0-9 ()-]*$")
CALLER_LINE = re.compile(r"^(anonymous|\*|\+?[0-9Xx][0-9Xx ()-]*\*?)$", re.IGNORECASE)


def lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def check_lines(pattern: re.Pattern, message):
    """A validator of a one-per-line field; `message` names the line and what it says."""
    def check(form, field) -> None:
        for i, line in enumerate(lines(field.data), start=1):
            if not pattern.match(line):
                raise ValidationError(str(message) % {"n": i, "text": line})
    return check


NOT_A_NUMBER = _l("Line %(n)d: '%(text)s' is not a phone number.")
NOT_A_PATTERN = _l("Line %(n)d: '%(text)s' is not a caller pattern (digits, X for one digit, * for the rest, or anonymous).")


class RouteForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(_l("Give the route a name.")), Length(max=80)])
    numbers = TextAreaField(_l("Dialled numbers"), validators=[
        check_lines(NUMBER_LINE, NOT_A_NUMBER)])
    callers = TextAreaField(_l("Callers"), validators=[
        check_lines(CALLER_LINE, NOT_A_PATTERN)])
    trunks = MultiCheckboxField(_l("Trunks"), choices=[])
    to = SelectField(_l("Destination"), choices=[], validators=[DataRequired(_l("Choose where the calls go."))])


class UnmatchedForm(FlaskForm):
    unmatched = SelectField(_l("Calls that match no route go to"), choices=[])


def route_form(doc: dict[str, Any], route: dict[str, Any] | None) -> RouteForm:
    """The form of one route, filled from the request on POST, else from `route` (None: a new one)."""
    if request.method == "POST":
        form = RouteForm()
    elif route is None:
        form = RouteForm(formdata=None, data={"to": request.args.get("to", "")})
    else:
        form = RouteForm(formdata=None, data={
            "name": route.get("name", ""), "numbers": "\n".join(map(str, route.get("numbers") or [])),
            "callers": "\n".join(map(str, route.get("callers") or [])),
            "trunks": [str(t) for t in route.get("trunks") or []], "to": select_value(route.get("to"))})
    names = [str(t["name"]) for t in doc.get("trunks") or []]
    names += [str(t) for t in (route or {}).get("trunks") or [] if str(t) not in names]
    form.trunks.choices = [(n, n) for n in names]
    form.to.choices = with_current([("", _("— choose —")), *destinations.choices(doc)], form.to.data or "")
    return form


def route_from(form: RouteForm) -> dict[str, Any]:
    route: dict[str, Any] = {"name": form.name.data.strip()}
    for key in ("numbers", "callers"):
        if lines(getattr(form, key).data):
            route[key] = lines(getattr(form, key).data)
    if form.trunks.data:
        route["trunks"] = list(form.trunks.data)
    route["to"] = form.to.data
    return route


def put_route_error(form: RouteForm, err: ConfigError, index: int) -> None:
    """A route the ones above hide, or calls left with no route, is about the conditions:
    say it next to the dialled numbers; the rest where the validator's path points."""
    path = err.path
    if (len(path) == 3 and path[:2] == ("routing", "routes")) or path == ("routing", "unmatched"):
        form.numbers.errors = [*form.numbers.errors, err.message]
    else:
        office.put_error(form, err, ("routing", "routes", index))


# ---- pages ---------------------------------------------------------------------------------

def render_index(doc: dict[str, Any], unmatched: UnmatchedForm | None = None, error: str | None = None):
    store = get_store()
    routing = doc.get("routing") or {}
    if unmatched is None:
        value = request.args.get("unmatched", select_value(routing.get("unmatched")))
        unmatched = UnmatchedForm(formdata=None, data={"unmatched": value})
    unmatched.unmatched.choices = with_current(
        [("", _("nowhere (a route above takes every call)")), *destinations.choices(doc)], unmatched.unmatched.data or "")
    pform, result = preview.from_request(store)
    return render_template("routes/index.html", routes=routing.get("routes") or [], doc=doc,
                           describe=lambda ref: destinations.describe(doc, select_value(ref)),
                           unmatched=unmatched, error=error, args=preview_args(),
                           preview_form=pform, preview_result=result)


@bp.route("/")
def index():
    return render_index(editable(get_store()))


@bp.route("/unmatched", methods=("POST",))
def set_unmatched():
    store = get_store()
    doc = editable(store)
    form = UnmatchedForm()
    form.unmatched.choices = with_current([("", ""), *destinations.choices(doc)], form.unmatched.data or "")
    if not form.validate_on_submit():
        return render_index(doc, unmatched=form), 400
    if form.unmatched.data:
        doc["routing"]["unmatched"] = form.unmatched.data
    else:
        doc["routing"].pop("unmatched", None)
    err = save(store, doc, _("calls that match no route: %(to)s", to=form.unmatched.data or "-"))
    if err is not None:
        office.put_error(form, err, ("routing",))
        return render_index(editable(store), unmatched=form), 400
    return redirect(url_for("routes.index", **preview_args()))


def edit_page(index: int | None):
    """Add (index None) or change one route; on refusal the form comes back with the reason, 400."""
    store = get_store()
    doc = editable(store)
    routes = doc["routing"].setdefault("routes", [])
    if index is not None and not 0 <= index < len(routes):
        abort(404)
    form = route_form(doc, routes[index] if index is not None else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.validate_on_submit():
            route = route_from(form)
            at = len(routes) if index is None else index
            if index is None:
                routes.append(route)
            else:
                routes[index] = route
            summary = _("route '%(name)s' added", name=route["name"]) if index is None else \
                _("route '%(name)s' changed", name=route["name"])
            err = save(store, doc, summary)
            if err is None:
                return redirect(url_for("routes.index", **preview_args()))
            put_route_error(form, err, at)
    pform, result = preview.from_request(store)
    return render_template("routes/edit.html", form=form, index=index, args=preview_args(),
                           preview_form=pform, preview_result=result), status


@bp.route("/new", methods=("GET", "POST"))
def new():
    return edit_page(None)


@bp.route("/<int:index>/edit", methods=("GET", "POST"))
def edit(index: int):
    return edit_page(index)


@bp.route("/<int:index>/<any(up, down):direction>", methods=("POST",))
def move(index: int, direction: str):
    store = get_store()
    if not ActionForm().validate_on_submit():
        abort(400)
    doc = editable(store)
    routes = doc["routing"].get("routes") or []
    other = index - 1 if direction == "up" else index + 1
    if not (0 <= index < len(routes) and 0 <= other < len(routes)):
        abort(404)
    routes[index], routes[other] = routes[other], routes[index]
    err = save(store, doc, _("route '%(name)s' moved", name=routes[other].get("name", "")))
    if err is not None:
        return render_index(editable(store), error=_("The change was not saved: %(why)s", why=str(err))), 400
    return redirect(url_for("routes.index", **preview_args()))


@bp.route("/<int:index>/delete", methods=("POST",))
def delete(index: int):
    store = get_store()
    if not ActionForm().validate_on_submit():
        abort(400)
    doc = editable(store)
    routes = doc["routing"].get("routes") or []
    if not 0 <= index < len(routes):
        abort(404)
    gone = routes.pop(index)
    err = save(store, doc, _("route '%(name)s' deleted", name=gone.get("name", "")))
    if err is not None:
        return render_index(editable(store), error=_("The change was not saved: %(why)s", why=str(err))), 400
    return redirect(url_for("routes.index", **preview_args()))
