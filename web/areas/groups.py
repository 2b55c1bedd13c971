"""Hunt groups: `routing.groups`, listed, added (members chosen at once), edited (members put in
order one move at a time), and deleted.

A group is saved whole through `office.save`, so the validator refuses a group
with no members, an exit that leads nowhere, or deleting a group a route or
menu still sends calls to, and the page shows its reason.  A new group takes
no call until something sends calls to it; its page says so and links to the
inbound routes page with the group chosen.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (BooleanField, FieldList, Form, FormField, HiddenField, IntegerField, SelectField, StringField,
                     TextAreaField)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp, ValidationError

from appliance.errors import ConfigError
from web import destinations, office, preview
from web.areas.routes import (NOT_A_NUMBER, NUMBER_LINE, ActionForm, MultiCheckboxField, check_lines, editable,
                              lines, preview_args, save, select_value, with_current)
from web.db import get_store

bp = Blueprint("groups", __name__, url_prefix="/groups")
NAV = (30, _l("Hunt groups"))

# Each strategy's name in the select and its one line of explanation (docs/routing.md).
STRATEGIES = {
    "ringall": (_l("Ring all"), _l("Every member rings at once for the group's ring time.")),
    "linear": (_l("One by one"), _l("One member at a time in the order listed, each for its ring time, 'rounds' times.")),
    "memory": (_l("Adding up"), _l("The first member, then the first two, then three… (earlier ones keep ringing).")),
    "roundrobin": (_l("Round robin"), _l("One at a time, starting after the member who took the last call.")),
    "random": (_l("Random"), _l("One at a time, in a new random order for every call.")),
    "fewest_calls": (_l("Fewest calls"), _l("One at a time, whoever answered the fewest calls today first.")),
    "longest_idle": (_l("Longest idle"), _l("One at a time, whoever has been free the longest first.")),
    "tiers": (_l("Tiers"), _l("Tier 1 rings at once; the next tier joins every 'widen after' seconds and all keep ringing.")),
    "escalation": (_l("Escalation"), _l("Each tier alone for its ring time: the head of sales for 3 rings, then the director.")),
}
EXIT_OVERRIDES = ("on_no_answer", "on_busy", "on_unavailable", "on_failure")
FLAGS = ("skip_busy", "skip_dnd", "skip_unregistered", "confirm")
NUMBERS = ("ring_time", "rounds", "widen_after", "wrapup", "max_calls")

REQUIRED = InputRequired(_l("This field is required."))
BETWEEN = _l("Between %(min)d and %(max)d.")


def between(low: int, high: int) -> NumberRange:
    return NumberRange(low, high, message=BETWEEN)


class SettingsForm(FlaskForm):
    """What a group is, apart from who its members are."""

    name = StringField(_l("Name"), validators=[Optional(), Length(max=80)])
    strategy = SelectField(_l("Strategy"), choices=[(k, label) for k, (label, _w) in STRATEGIES.items()])
    ring_time = IntegerField(_l("Ring time, seconds"), validators=[REQUIRED, between(1, 600)], default=20)
    rounds = IntegerField(_l("Rounds"), validators=[REQUIRED, between(1, 20)], default=1)
    widen_after = IntegerField(_l("Next tier joins after, seconds"), validators=[REQUIRED, between(1, 600)],
                               default=15)
    skip_busy = BooleanField(_l("Skip members who are on a call"), default=True)
    skip_dnd = BooleanField(_l("Skip members on do not disturb"), default=True)
    skip_unregistered = BooleanField(_l("Skip phones that are not connected"), default=True)
    wrapup = IntegerField(_l("Wrap-up, seconds"), validators=[REQUIRED, between(0, 3600)], default=0)
    max_calls = IntegerField(_l("Calls a member may have at once"), validators=[REQUIRED, between(0, 20)], default=1)
    confirm = BooleanField(_l("External numbers press a key to take the call"), default=True)
    on_fail = SelectField(_l("When the group does not get the call answered"), choices=[],
                          validators=[DataRequired(_l("Choose where the calls go."))])
    on_no_answer = SelectField(_l("Nobody answers"), choices=[], default="")
    on_busy = SelectField(_l("Everyone is busy"), choices=[], default="")
    on_unavailable = SelectField(_l("Nobody can be rung (not connected, do not disturb)"), choices=[], default="")
    on_failure = SelectField(_l("A line or trunk error"), choices=[], default="")


def not_a_group_yet(form, field) -> None:
    if field.data in form.taken:
        raise ValidationError(_("There is a group with this id already."))


class NewGroupForm(SettingsForm):
    ident = StringField(_l("Group id"), validators=[
        DataRequired(_l("Give the group an id.")), Length(max=40),
        Regexp(r"^[^\s:/]+$", message=_l("No spaces, colons or slashes.")), not_a_group_yet])
    extensions = MultiCheckboxField(_l("Extensions"), choices=[])
    externals = TextAreaField(_l("External numbers"), validators=[check_lines(NUMBER_LINE, NOT_A_NUMBER)])

    taken: set[str] = set()


class MemberForm(Form):
    """One member's own settings on the edit page (its place in the list is changed by the buttons)."""

    target = HiddenField()
    tier = IntegerField(_l("Tier"), validators=[Optional(), between(1, 9)])
    ring_time = IntegerField(_l("Ring time, seconds"), validators=[Optional(), between(1, 600)])


class EditGroupForm(SettingsForm):
    members = FieldList(FormField(MemberForm))


class AddMemberForm(FlaskForm):
    new_extension = SelectField(_l("Add an extension"), choices=[])
    new_number = StringField(_l("or an external number"), validators=[
        Optional(), Regexp(r"^\+?[0-9][0-9 ()-]{4,24}$", message=_l("Digits only, optionally with + in front."))])

    def validate_new_number(self, field) -> None:
        if bool(field.data) == bool(self.new_extension.data):
            raise ValidationError(_("Choose an extension or type an external number (one of the two)."))


class MemberActionForm(FlaskForm):
    """Up, down, remove: the member the button was shown for, so a changed list is not moved blindly."""

    target = HiddenField()


# ---- the group as data ---------------------------------------------------------------------

def target_of(member: Any) -> str:
    if isinstance(member, dict):
        return str(member.get("ext", member.get("number", "")))
    return str(member)


def as_member(member: Any) -> dict[str, Any]:
    """A member as the mapping the canonical form writes ({ext: "101"} or {number: "+380..."})."""
    return dict(member) if isinstance(member, dict) else {"ext": str(member)}


def is_external(member: Any) -> bool:
    return isinstance(member, dict) and "number" in member


def exits_of(group: dict[str, Any]) -> dict[str, str]:
    """on_fail, and each override that differs from it (the rest '' = as on_fail)."""
    values = {k: select_value(group.get(k) or group.get("on_fail")) for k in EXIT_OVERRIDES}
    base = select_value(group.get("on_fail")) or max(values.values(), key=list(values.values()).count)
    return {"on_fail": base, **{k: "" if v == base else v for k, v in values.items()}}


def form_data(group: dict[str, Any]) -> dict[str, Any]:
    data = {k: group[k] for k in ("name", "strategy", *NUMBERS, *FLAGS) if group.get(k) is not None}
    data["members"] = [{"target": target_of(m), "tier": as_member(m).get("tier", 1),
                        "ring_time": as_member(m).get("ring_time")} for m in group.get("members") or []]
    return {**data, **exits_of(group)}


def settings_into(group: dict[str, Any], form: SettingsForm, ident: str) -> None:
    group["name"] = (form.name.data or "").strip() or ident
    group["strategy"] = form.strategy.data
    group.pop("rings", None)
    for key in (*NUMBERS, *FLAGS):
        group[key] = getattr(form, key).data
    group["on_fail"] = form.on_fail.data
    for key in EXIT_OVERRIDES:
        value = getattr(form, key).data
        if value and value != form.on_fail.data:
            group[key] = value
        else:
            group.pop(key, None)


def members_into(group: dict[str, Any], form: EditGroupForm) -> None:
    """Each member's tier and ring time, matched by who it is (the list's order is kept)."""
    members = [as_member(m) for m in group.get("members") or []]
    posted = {entry.form.target.data: entry.form for entry in form.members}
    for member in members:
        sub = posted.get(target_of(member))
        if sub is None:
            continue
        for key in ("tier", "ring_time"):
            value = sub[key].data
            if value is None or (key == "tier" and value == 1):
                member.pop(key, None)
            else:
                member[key] = value
        member.pop("rings", None)
    group["members"] = members


def sends_calls_to(routing: dict[str, Any], ident: str) -> bool:
    """Whether anything but the group itself names it as a destination."""
    ref = f"group:{ident}"

    def names(value: Any) -> bool:
        if isinstance(value, dict):
            return any(names(v) for v in value.values())
        if isinstance(value, list):
            return any(names(v) for v in value)
        return value == ref

    others = {**routing, "groups": {k: v for k, v in (routing.get("groups") or {}).items() if k != ident}}
    return names(others)


def member_words(doc: dict[str, Any], member: Any) -> str:
    target = target_of(member)
    if is_external(member):
        return _("%(number)s (external)", number=target)
    names = {str(e["number"]): e.get("name") or "" for e in doc.get("extensions") or []}
    return f"{target} {names.get(target, '')}".strip()


# ---- forms on pages ------------------------------------------------------------------------

def fill_choices(form: SettingsForm, doc: dict[str, Any], ident: str | None) -> None:
    own = f"group:{ident}" if ident else None
    places = destinations.choices(doc, exclude=own)
    form.on_fail.choices = with_current([("", _("— choose —")), *places], form.on_fail.data or "")
    for key in EXIT_OVERRIDES:
        field = getattr(form, key)
        field.choices = with_current([("", _("the same as above")), *places], field.data or "")


def extension_choices(doc: dict[str, Any], leave_out: set[str] = frozenset()) -> list[tuple[str, str]]:
    return [(str(e["number"]), f"{e['number']} {e.get('name') or ''}".strip())
            for e in doc.get("extensions") or [] if str(e["number"]) not in leave_out]


def put_group_error(form: SettingsForm, err: ConfigError, ident: str) -> str | None:
    """Put a refusal next to its field; a problem of the member list comes back to be shown there."""
    prefix = ("routing", "groups", ident)
    path = err.path
    if tuple(path[:4]) == (*prefix, "members"):
        if isinstance(form, NewGroupForm):
            checked = len(form.extensions.data or [])
            field = form.externals if len(path) > 4 and isinstance(path[4], int) and path[4] >= checked \
                else form.extensions
            field.errors = [*field.errors, err.message]
            return None
        if len(path) > 5 and isinstance(path[4], int) and path[4] < len(form.members):
            key = "ring_time" if path[5] == "rings" else path[5]
            entry = form.members[path[4]].form
            if key in ("tier", "ring_time"):
                entry[key].errors = [*entry[key].errors, err.message]
                return None
        return str(err)
    office.put_error(form, err, prefix, {"rings": "ring_time"})
    return None


# ---- pages ---------------------------------------------------------------------------------

def render_index(doc: dict[str, Any], error: str | None = None, status: int = 200):
    pform, result = preview.from_request(get_store())
    groups = (doc.get("routing") or {}).get("groups") or {}
    return render_template("groups/index.html", groups=groups, strategies=STRATEGIES,
                           describe=lambda ref: destinations.describe(doc, select_value(ref)),
                           target_of=target_of, error=error, args=preview_args(),
                           preview_form=pform, preview_result=result), status


def render_edit(doc: dict[str, Any], ident: str, form: EditGroupForm | None = None,
                add: AddMemberForm | None = None, members_error: str | None = None, status: int = 200):
    group = doc["routing"]["groups"][ident]
    if form is None:
        form = EditGroupForm(formdata=None, data=form_data(group))
    fill_choices(form, doc, ident)
    if add is None:
        add = AddMemberForm(formdata=None)
    members = group.get("members") or []
    add.new_extension.choices = [("", _("— choose —")),
                                 *extension_choices(doc, {target_of(m) for m in members})]
    pform, result = preview.from_request(get_store())
    return render_template("groups/edit.html", ident=ident, group=group, form=form, add=add,
                           members=[(m, member_words(doc, m)) for m in members], strategies=STRATEGIES,
                           members_error=members_error,
                           target_of=target_of,
                           reachable=sends_calls_to(doc["routing"], ident), args=preview_args(),
                           preview_form=pform, preview_result=result), status


def group_or_404(doc: dict[str, Any], ident: str) -> dict[str, Any]:
    group = ((doc.get("routing") or {}).get("groups") or {}).get(ident)
    if not isinstance(group, dict):
        abort(404)
    return group


@bp.route("/")
def index():
    return render_index(editable(get_store()))


@bp.route("/new", methods=("GET", "POST"))
def new():
    store = get_store()
    doc = editable(store)
    groups = doc["routing"].setdefault("groups", {})
    # A new group hangs up when nobody answers until the owner chooses better, as the default office group does.
    form = NewGroupForm() if request.method == "POST" else NewGroupForm(formdata=None, data={"on_fail": "hangup"})
    form.taken = set(groups)
    form.extensions.choices = extension_choices(doc)
    fill_choices(form, doc, None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.validate_on_submit():
            ident = form.ident.data.strip()
            members = [{"ext": n} for n, _w in form.extensions.choices if n in (form.extensions.data or [])]
            members += [{"number": n} for n in lines(form.externals.data)]
            group: dict[str, Any] = {"members": members}
            settings_into(group, form, ident)
            groups[ident] = group
            err = save(store, doc, _("group '%(id)s' added", id=ident))
            if err is None:
                return redirect(url_for("groups.edit", ident=ident, **preview_args()))
            put_group_error(form, err, ident)
    pform, result = preview.from_request(store)
    return render_template("groups/new.html", form=form, strategies=STRATEGIES, args=preview_args(),
                           preview_form=pform, preview_result=result), status


@bp.route("/<path:ident>/edit", methods=("GET", "POST"))
def edit(ident: str):
    store = get_store()
    doc = editable(store)
    group = group_or_404(doc, ident)
    if request.method == "GET":
        return render_edit(doc, ident)
    form = EditGroupForm()
    fill_choices(form, doc, ident)
    if not form.validate_on_submit():
        return render_edit(doc, ident, form=form, status=400)
    settings_into(group, form, ident)
    members_into(group, form)
    err = save(store, doc, _("group '%(id)s' changed", id=ident))
    if err is None:
        return redirect(url_for("groups.edit", ident=ident, **preview_args()))
    members_error = put_group_error(form, err, ident)
    return render_edit(editable(store), ident, form=form, members_error=members_error, status=400)


@bp.route("/<path:ident>/members/add", methods=("POST",))
def add_member(ident: str):
    store = get_store()
    doc = editable(store)
    group = group_or_404(doc, ident)
    members = [as_member(m) for m in group.get("members") or []]
    form = AddMemberForm()
    form.new_extension.choices = [("", ""), *extension_choices(doc, {target_of(m) for m in members})]
    if not form.validate_on_submit():
        return render_edit(doc, ident, add=form, status=400)
    if form.new_extension.data:
        members.append({"ext": form.new_extension.data})
    else:
        members.append({"number": form.new_number.data.strip()})
    group["members"] = members
    err = save(store, doc, _("group '%(id)s': member %(who)s added", id=ident, who=target_of(members[-1])))
    if err is None:
        return redirect(url_for("groups.edit", ident=ident, **preview_args()))
    field = form.new_extension if form.new_extension.data else form.new_number
    about_members = tuple(err.path[:4]) == ("routing", "groups", ident, "members")
    field.errors = [*field.errors, err.message if about_members else str(err)]
    return render_edit(editable(store), ident, add=form, status=400)


def moved(members: list[Any], index: int, action: str) -> list[Any]:
    """The member list after one button: up, down (swap with the neighbour) or remove."""
    out = list(members)
    if action == "remove":
        del out[index]
        return out
    other = index - 1 if action == "up" else index + 1
    if 0 <= other < len(out):
        out[index], out[other] = out[other], out[index]
    return out


@bp.route("/<path:ident>/members/<int:index>/<any(up, down, remove):action>", methods=("POST",))
def member(ident: str, index: int, action: str):
    store = get_store()
    doc = editable(store)
    group = group_or_404(doc, ident)
    members = group.get("members") or []
    form = MemberActionForm()
    if not form.validate_on_submit():
        abort(400)
    if not 0 <= index < len(members) or target_of(members[index]) != form.target.data:
        return render_edit(doc, ident, members_error=_("The list of members changed meanwhile; nothing was saved."),
                           status=409)
    who = target_of(members[index])
    group["members"] = moved(members, index, action)
    summary = {"up": _("group '%(id)s': %(who)s moved up", id=ident, who=who),
               "down": _("group '%(id)s': %(who)s moved down", id=ident, who=who),
               "remove": _("group '%(id)s': %(who)s removed", id=ident, who=who)}[action]
    err = save(store, doc, summary)
    if err is None:
        return redirect(url_for("groups.edit", ident=ident, **preview_args()))
    return render_edit(editable(store), ident, members_error=_("The change was not saved: %(why)s", why=str(err)),
                       status=400)


@bp.route("/<path:ident>/delete", methods=("POST",))
def delete(ident: str):
    store = get_store()
    if not ActionForm().validate_on_submit():
        abort(400)
    doc = editable(store)
    group_or_404(doc, ident)
    del doc["routing"]["groups"][ident]
    err = save(store, doc, _("group '%(id)s' deleted", id=ident))
    if err is not None:
        return render_index(editable(store), error=_("The change was not saved: %(why)s", why=str(err)), status=400)
    return redirect(url_for("groups.index", **preview_args()))
