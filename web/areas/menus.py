"""IVR menus: a recording, then the caller's keys choose where the call goes.

A menu's settings, each of its options (key sequence → destination) and a
new option are separate small forms on one page; each edits a copy of the
whole configuration and saves it through `web.office.save`, so an option to
a destination that does not exist, or deleting a menu a route still uses, is
refused with the validator's reason (which says the way a call gets there)
and nothing is saved.  The prompt selects list the recordings in
`DATA_DIR/prompts/` when the page is drawn, by the name routing uses for
them (`prompts/<name>.wav` is the prompt `<name>`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, RadioField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, InputRequired, NumberRange, Regexp
from wtforms.widgets import CheckboxInput, ListWidget

from appliance.errors import ConfigError
from appliance.routing.config import parse
from web import destinations, office, preview
from web.db import applied, get_store
from web.forms import ConfirmForm

bp = Blueprint("menus", __name__, url_prefix="/menus")
NAV = (40, _l("IVR menus"))

KEYS = tuple("1234567890*#")
PREVIEW_CALLER = "0671234567"

ID_RULE = Regexp(r"^[A-Za-z0-9_.-]{1,40}$",
                 message=_l("Letters, digits, dot, dash or underscore, without spaces (e.g. main)."))
KEY_RULE = Regexp(r"^[0-9*#]{1,4}$", message=_l("1 to 4 keys: 0-9, * or #."))

DIRECT_DIAL = (
    ("off", _l("Off: callers can only choose the options")),
    ("any", _l("Any extension: a caller who knows a number may dial it")),
    ("list", _l("Only the extensions ticked below")),
)

# The validator's key for a field of the settings form, where it differs from the form's name.
ALIASES = {"on_fail": "on_timeout", "options": "direct_dial"}


def prompt_names(data_dir: Path) -> list[str]:
    """The recordings in `prompts/`, by the name routing gives a prompt (the file name without .wav)."""
    folder = Path(data_dir) / "prompts"
    return sorted(p.stem for p in folder.glob("*.wav") if p.is_file()) if folder.is_dir() else []


def choice_ref(ref: str | None) -> str:
    """A reference as the destination selects write it (`101`, not the core's `ext:101`)."""
    if not ref:
        return ""
    return ref[4:] if ref.startswith("ext:") else ref


class Checkboxes(SelectMultipleField):
    """Several choices at once, one checkbox each."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def __init__(self, *args: Any, **kw: Any):
        kw.setdefault("render_kw", {"class": "checks"})
        super().__init__(*args, **kw)


def seconds(label: Any, minimum: int, default: int, maximum: int = 600) -> IntegerField:
    """A whole number field (seconds, or times) with its range."""
    return IntegerField(label, default=default, validators=[
        InputRequired(_l("Write a whole number.")),
        NumberRange(minimum, maximum, _l("A number from %(min)s to %(max)s."))])


class MenuForm(FlaskForm):
    """The settings of an existing menu; its id is fixed, since routes and other menus name it."""

    name = StringField(_l("Name"), validators=[DataRequired(_l("Give the menu a name."))])
    prompt = SelectField(_l("Menu recording"), validators=[DataRequired(_l("Choose the recording callers hear."))])
    timeout = seconds(_l("Wait for the first key (s)"), 1, 5)
    inter_digit = seconds(_l("Wait for the next key (s)"), 1, 2)
    retries = seconds(_l("Play the menu again (times)"), 0, 2)
    invalid_prompt = SelectField(_l("Before a retry after a wrong key"), default="")
    timeout_prompt = SelectField(_l("Before a retry after no key"), default="")
    on_timeout = SelectField(_l("When the caller presses nothing"), default="hangup", validate_choice=False,
                             validators=[DataRequired(_l("Choose where the caller goes next."))])
    on_invalid = SelectField(_l("When the caller keeps pressing wrong keys"), default="hangup",
                             validate_choice=False, validators=[DataRequired(_l("Choose where the caller goes next."))])
    direct_dial = RadioField(_l("Dialling an extension"), choices=DIRECT_DIAL, default="off",
                             render_kw={"class": "checks"})
    direct_list = Checkboxes(_l("Extensions that may be dialled"))


class NewMenuForm(MenuForm):
    ident = StringField(_l("Id (used in routes, e.g. main)"), validators=[DataRequired(_l("Give an id for routes to use.")), ID_RULE])
    first_key = StringField(_l("First option: key"), default="1", validators=[DataRequired(_l("Give a key.")),
                                                                               KEY_RULE])
    first_to = SelectField(_l("First option: goes to"), validate_choice=False,
                           validators=[DataRequired(_l("Choose where the caller goes next."))])


class OptionForm(FlaskForm):
    """A new option: a key sequence and where it leads."""

    key = StringField(_l("Key sequence"), validators=[DataRequired(_l("Give a key.")), KEY_RULE])
    destination = SelectField(_l("Leads to"), validate_choice=False,
                              validators=[DataRequired(_l("Choose where the caller goes next."))])


class RowForm(FlaskForm):
    """One existing option: change where it leads, or remove it (the button says which)."""

    key = HiddenField()
    destination = SelectField(validate_choice=False)
    action = HiddenField()


def _menus(doc: dict[str, Any]) -> dict[str, Any]:
    routing = doc.setdefault("routing", {})
    if not isinstance(routing.get("menus"), dict):
        routing["menus"] = {}
    return routing["menus"]


def _extensions(doc: dict[str, Any]) -> dict[str, str]:
    return {str(e["number"]): str(e.get("name") or "") for e in doc.get("extensions") or []}


def _parsed_menu(doc: dict[str, Any], mid: str) -> Any:
    """The menu as the routing core reads it: every default filled in, on_fail split in two."""
    cfg = parse(doc.get("routing") or {}, _extensions(doc), timezone=str(doc.get("timezone") or "Europe/Kyiv"))
    return cfg.menus[mid]


def _prompt_choices(names: list[str], current: str | None, empty: Any = None) -> list[tuple[str, str]]:
    """The recordings present now; a name the menu uses that has no file yet is kept and said so."""
    out = [(n, n) for n in names]
    if current and current not in names:
        out.append((current, _("%(name)s (no recording yet: a tone plays)", name=current)))
    return ([("", empty)] if empty is not None else []) + out


def _set_choices(form: MenuForm, doc: dict[str, Any], mid: str | None, mn: Any = None) -> None:
    names = prompt_names(Path(current_app.config["DATA_DIR"]))
    form.prompt.choices = _prompt_choices(names, mn.prompt if mn else None)
    form.invalid_prompt.choices = _prompt_choices(names, mn.invalid_prompt if mn else None, _("no recording"))
    form.timeout_prompt.choices = _prompt_choices(names, mn.timeout_prompt if mn else None, _("no recording"))
    places = destinations.choices(doc, exclude=f"menu:{mid}" if mid else None)
    form.on_timeout.choices = places
    form.on_invalid.choices = places
    form.direct_list.choices = [(n, f"{n} {name}".strip()) for n, name in _extensions(doc).items()]
    if isinstance(form, NewMenuForm):
        form.first_to.choices = destinations.choices(doc, menu_option=True)


def _fill_form(form: MenuForm, mn: Any) -> None:
    form.name.data = mn.name
    form.prompt.data = mn.prompt
    form.timeout.data, form.inter_digit.data, form.retries.data = mn.timeout, mn.inter_digit, mn.retries
    form.invalid_prompt.data = mn.invalid_prompt or ""
    form.timeout_prompt.data = mn.timeout_prompt or ""
    form.on_timeout.data = choice_ref(mn.on_timeout)
    form.on_invalid.data = choice_ref(mn.on_invalid)
    if isinstance(mn.direct_dial, bool):
        form.direct_dial.data = "any" if mn.direct_dial else "off"
        form.direct_list.data = []
    else:
        form.direct_dial.data = "list"
        form.direct_list.data = list(mn.direct_dial)


def _fill_item(form: MenuForm, item: dict[str, Any]) -> None:
    """Copy the settings form into a document's menu; its options stay as they are."""
    item["name"] = form.name.data.strip()
    item["prompt"] = form.prompt.data
    for key in ("timeout", "inter_digit", "retries"):
        item[key] = getattr(form, key).data
    for key in ("invalid_prompt", "timeout_prompt"):
        item.pop(key, None)
        if getattr(form, key).data:
            item[key] = getattr(form, key).data
    item.pop("on_fail", None)
    item["on_timeout"] = form.on_timeout.data
    item["on_invalid"] = form.on_invalid.data
    mode = form.direct_dial.data
    item["direct_dial"] = list(form.direct_list.data or []) if mode == "list" else mode == "any"


def _direct_list_ok(form: MenuForm) -> bool:
    if form.direct_dial.data == "list" and not form.direct_list.data:
        form.direct_list.errors = [*form.direct_list.errors, _("Tick at least one extension, or choose another way.")]
        return False
    return True


def _save(form: FlaskForm, doc: dict[str, Any], mid: str, summary: str, prefix_extra: tuple = (),
          aliases: dict[str, str] | None = None) -> bool:
    """Save the document; on refusal put the validator's reason next to the field it names."""
    try:
        office.save(get_store(), doc, who="owner", summary=summary)
    except ConfigError as e:
        office.put_error(form, e, ("routing", "menus", mid, *prefix_extra), aliases)
        return False
    applied(_("Saved."))
    return True


def _saved(mid: str):
    """Back to the menu's page, with the route preview of a call run at once."""
    return redirect(url_for("menus.edit", mid=mid, caller=PREVIEW_CALLER, _anchor="route-preview"))


def _option_rows(doc: dict[str, Any], mid: str) -> list[dict[str, Any]]:
    mn = _parsed_menu(doc, mid)
    return [{"key": key, "slug": key.replace("*", "star").replace("#", "hash"), "to": choice_ref(to),
             "words": destinations.describe(doc, choice_ref(to))} for key, to in mn.options.items()]


def _edit_page(doc: dict[str, Any], mid: str, form: MenuForm | None = None, option: OptionForm | None = None,
               row_errors: dict[str, list[str]] | None = None, status: int = 200):
    mn = _parsed_menu(doc, mid)
    if form is None:
        form = MenuForm(formdata=None)
        _set_choices(form, doc, mid, mn)
        _fill_form(form, mn)
    option = option or OptionForm(formdata=None)
    option.destination.choices = destinations.choices(doc, menu_option=True, exclude=f"menu:{mid}")
    pform, presult = preview.from_request(get_store())
    return render_template("menus/edit.html", form=form, option=option, row=RowForm(formdata=None),
                           rows=_option_rows(doc, mid), row_errors=row_errors or {},
                           row_choices=option.destination.choices, mid=mid, menu=mn, delete=ConfirmForm(),
                           pform=pform, presult=presult), status


@bp.route("/")
def index(error: str | None = None):
    doc = office.document(get_store())
    rows = []
    for mid in sorted(_menus(doc)):
        mn = _parsed_menu(doc, mid)
        rows.append({"id": mid, "name": mn.name, "prompt": mn.prompt,
                     "options": [(k, destinations.describe(doc, choice_ref(v))) for k, v in mn.options.items()],
                     "timeout": destinations.describe(doc, choice_ref(mn.on_timeout))})
    pform, presult = preview.from_request(get_store())
    return render_template("menus/index.html", rows=rows, delete=ConfirmForm(), error=error,
                           pform=pform, presult=presult), 400 if error else 200


@bp.route("/add", methods=("GET", "POST"))
def add():
    doc = office.document(get_store())
    form = NewMenuForm()
    _set_choices(form, doc, None)
    if form.validate_on_submit() and _direct_list_ok(form):
        mid = form.ident.data.strip()
        if mid in _menus(doc):
            form.ident.errors.append(_("There is a menu with this id already."))
        else:
            item: dict[str, Any] = {"options": {form.first_key.data: form.first_to.data}}
            _fill_item(form, item)
            _menus(doc)[mid] = item
            if _save(form, doc, mid, f"added menu {mid}", aliases={"on_fail": "on_timeout", "options": "first_to"}):
                return _saved(mid)
    pform, presult = preview.from_request(get_store())
    return render_template("menus/add.html", form=form, pform=pform, presult=presult), \
        400 if request.method == "POST" else 200


@bp.route("/<mid>", methods=("GET", "POST"))
def edit(mid: str):
    doc = office.document(get_store())
    if mid not in _menus(doc):
        abort(404)
    if request.method == "GET":
        return _edit_page(doc, mid)
    form = MenuForm()
    _set_choices(form, doc, mid, _parsed_menu(doc, mid))
    if form.validate_on_submit() and _direct_list_ok(form):
        changed = office.document(get_store())
        _fill_item(form, _menus(changed)[mid])
        if _save(form, changed, mid, f"changed menu {mid}", aliases=ALIASES):
            return _saved(mid)
    return _edit_page(doc, mid, form=form, status=400)


@bp.route("/<mid>/options", methods=("POST",))
def add_option(mid: str):
    doc = office.document(get_store())
    if mid not in _menus(doc):
        abort(404)
    option = OptionForm()
    option.destination.choices = destinations.choices(doc, menu_option=True, exclude=f"menu:{mid}")
    if option.validate_on_submit():
        key = option.key.data.strip()
        changed = office.document(get_store())
        options = _menus(changed)[mid].setdefault("options", {}) or {}
        if key in {str(k) for k in options}:
            option.key.errors.append(_("Key %(key)s has an option already; change it in its row.", key=key))
        else:
            options[key] = option.destination.data
            _menus(changed)[mid]["options"] = options
            if _save(option, changed, mid, f"menu {mid}: added option {key}", ("options",),
                     aliases={key: "destination"}):
                return _saved(mid)
    return _edit_page(doc, mid, option=option, status=400)


@bp.route("/<mid>/option", methods=("POST",))
def change_option(mid: str):
    """Change where an existing option leads, or remove it."""
    doc = office.document(get_store())
    if mid not in _menus(doc):
        abort(404)
    row = RowForm()
    if not row.validate_on_submit():
        abort(400)
    key = row.key.data or ""
    changed = office.document(get_store())
    options = _menus(changed)[mid].get("options") or {}
    stored = next((k for k in options if str(k) == key), None)
    if stored is None:
        abort(404)
    if row.action.data == "remove":
        del options[stored]
        summary = f"menu {mid}: removed option {key}"
    elif row.destination.data:
        options[stored] = row.destination.data
        summary = f"menu {mid}: option {key} goes to {row.destination.data}"
    else:
        abort(400)
    _menus(changed)[mid]["options"] = options
    try:
        office.save(get_store(), changed, who="owner", summary=summary)
    except ConfigError as e:
        return _edit_page(doc, mid, row_errors={key: [e.message]}, status=400)
    applied(_("Saved."))
    return _saved(mid)


@bp.route("/<mid>/delete", methods=("POST",))
def delete(mid: str):
    doc = office.document(get_store())
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if _menus(doc).pop(mid, None) is None:
        abort(404)
    try:
        office.save(get_store(), doc, who="owner", summary=f"deleted menu {mid}")
    except ConfigError as e:
        return index(error=_("The change was not saved: %(why)s", why=e.message))
    applied(_("Menu %(id)s was deleted.", id=mid))
    return redirect(url_for("menus.index"))
