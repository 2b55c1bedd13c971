"""Queues: callers wait with music and hear their place while agents are rung in turn.

Each page edits a copy of the whole configuration and saves it through
`web.office.save`, so a queue with no members, an exit key without a
destination, or deleting a queue a route still sends calls to is refused
with the validator's reason and nothing is saved.  Keys the form does not
show (per-member tiers, skip rules, widen_after) are kept as they were.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Regexp

from appliance.errors import ConfigError
from appliance.routing.config import parse
from appliance.routing.numbers import is_external
from web import destinations, office, preview
from web.areas.menus import KEYS, Checkboxes, choice_ref, prompt_names, seconds
from web.db import applied, get_store
from web.forms import ConfirmForm

bp = Blueprint("queues", __name__, url_prefix="/queues")
NAV = (35, _l("Queues"))

# (strategy, what it does for a queue) in the order the select shows them.
STRATEGIES = (
    ("longest_idle", _l("Longest idle: the agent who has been without a call longest rings first")),
    ("fewest_calls", _l("Fewest calls: the agent who answered fewest calls today rings first")),
    ("roundrobin", _l("Round robin: agents take turns, starting after the one who had the last call")),
    ("linear", _l("In order: agents ring one at a time, as listed")),
    ("random", _l("Random: a free agent picked by chance")),
    ("ringall", _l("Ring all: every free agent rings at once")),
    ("memory", _l("Growing: the first agent, then the first two, and so on (earlier ones keep ringing)")),
    ("tiers", _l("Tiers: tier 1 first, the next tier joins while the first keeps ringing")),
    ("escalation", _l("Escalation: each tier rings alone, one after another")),
)

ID_RULE = Regexp(r"^[A-Za-z0-9_.-]{1,40}$",
                 message=_l("Letters, digits, dot, dash or underscore, without spaces (e.g. support)."))

# The validator's key for a field, where it differs from the form's name.
ALIASES = {"on_fail": "on_no_answer", "rings": "ring_time", "on_busy": "on_no_answer",
           "on_failure": "on_no_answer"}
EXIT_KEYS = ("on_fail", "on_no_answer", "on_busy", "on_unavailable", "on_failure")


class QueueForm(FlaskForm):
    """The settings of an existing queue; its id is fixed, since routes name it."""

    name = StringField(_l("Name"), validators=[DataRequired(_l("Give the queue a name."))])
    members = Checkboxes(_l("Agents"))
    strategy = SelectField(_l("Who rings first"), choices=STRATEGIES, default="longest_idle")
    ring_time = seconds(_l("Ring an agent for (s)"), 1, 15)
    retry = seconds(_l("Pause between attempts (s)"), 0, 5)
    wrapup = seconds(_l("Wrap-up after a call (s)"), 0, 10, 3600)
    music = SelectField(_l("Music while waiting"), default="default")
    greeting = SelectField(_l("Greeting on joining"), default="")
    announce_position = BooleanField(_l("Tell callers their place in the queue"), default=True)
    announce_wait = BooleanField(_l("Tell callers the expected wait"), default=True)
    announce_every = seconds(_l("Announce every (s)"), 0, 60, 3600)
    vip_first = BooleanField(_l("VIP callers first"), default=True)
    max_wait = seconds(_l("Longest wait (s)"), 1, 300, 86400)
    on_no_answer = SelectField(_l("After the longest wait"), default="hangup", validate_choice=False,
                               validators=[DataRequired(_l("Choose where the caller goes next."))])
    on_unavailable = SelectField(_l("When no agent is logged in"), default="hangup", validate_choice=False,
                                 validators=[DataRequired(_l("Choose where the caller goes next."))])
    exit_key = SelectField(_l("Key that leaves the queue"), default="")
    exit_to = SelectField(_l("Leaving the queue goes to"), default="", validate_choice=False)
    callback = BooleanField(_l("Offer a call back"), default=False)
    callback_key = SelectField(_l("Key for a call back"), default="1")


class NewQueueForm(QueueForm):
    ident = StringField(_l("Id (used in routes, e.g. support)"),
                        validators=[DataRequired(_l("Give an id for routes to use.")), ID_RULE])


class MoveForm(FlaskForm):
    member = HiddenField()
    direction = HiddenField()


def member_target(item: Any) -> tuple[str, bool]:
    """(extension or number, external?) of a member as the document writes it."""
    if isinstance(item, dict):
        if "number" in item:
            return str(item["number"]), True
        return str(item.get("ext")), False
    text = str(item)
    return text, is_external(text)


def member_words(item: Any, names: dict[str, str]) -> str:
    target, external = member_target(item)
    if external:
        return _("outside number %(n)s", n=target)
    return f"{target} {names.get(target, '')}".strip()


def _queues(doc: dict[str, Any]) -> dict[str, Any]:
    routing = doc.setdefault("routing", {})
    if not isinstance(routing.get("queues"), dict):
        routing["queues"] = {}
    return routing["queues"]


def _extensions(doc: dict[str, Any]) -> dict[str, str]:
    return {str(e["number"]): str(e.get("name") or "") for e in doc.get("extensions") or []}


def _music_names(data_dir: Path) -> list[str]:
    """The files the engine plays as a queue's music: `music/<name>.wav` (a missing one: the default)."""
    folder = data_dir / "music"
    names = sorted(p.stem for p in folder.glob("*.wav")) if folder.is_dir() else []
    return ["default", *[n for n in names if n != "default"]]


def _set_choices(form: QueueForm, doc: dict[str, Any], qid: str | None, current: Any = None) -> None:
    """Fill the selects from the document and the sound files present now."""
    data_dir = Path(current_app.config["DATA_DIR"])
    form.members.choices = [(n, f"{n} {name}".strip()) for n, name in _extensions(doc).items()]
    music = _music_names(data_dir)
    if current is not None and current.music not in music:
        music.append(current.music)
    form.music.choices = [(n, _("default music") if n == "default" else n) for n in music]
    greetings = prompt_names(data_dir)
    if current is not None and current.greeting and current.greeting not in greetings:
        greetings.append(current.greeting)
    form.greeting.choices = [("", _("no greeting")), *[(n, n) for n in greetings]]
    exclude = f"queue:{qid}" if qid else None
    places = destinations.choices(doc, exclude=exclude)
    form.on_no_answer.choices = places
    form.on_unavailable.choices = places
    form.exit_to.choices = [("", _("nowhere (no exit key)")), *places]
    form.exit_key.choices = [("", _("no key")), *[(k, k) for k in KEYS]]
    form.callback_key.choices = [(k, k) for k in KEYS]


def _parsed_queue(doc: dict[str, Any], qid: str) -> Any:
    """The queue as the routing core reads it: every default filled in, aliases resolved."""
    cfg = parse(doc.get("routing") or {}, _extensions(doc), timezone=str(doc.get("timezone") or "Europe/Kyiv"))
    return cfg.queues[qid]


def _fill_form(form: QueueForm, q: Any) -> None:
    form.name.data = q.name
    form.members.data = [m.target for m in q.members if not m.external]
    form.strategy.data = q.strategy
    for key in ("ring_time", "retry", "announce_every", "max_wait", "music", "announce_position",
                "announce_wait", "vip_first", "callback", "callback_key"):
        getattr(form, key).data = getattr(q, key)
    form.wrapup.data = q.availability.wrapup
    form.greeting.data = q.greeting or ""
    form.on_no_answer.data = choice_ref(q.exits.no_answer)
    form.on_unavailable.data = choice_ref(q.exits.unavailable)
    form.exit_key.data = q.exit_key or ""
    form.exit_to.data = choice_ref(q.exit_to) if q.exit_to else ""


def _members(old: list[Any], chosen: list[str]) -> list[Any]:
    """The members after the checkboxes: those kept stay in their order (with their own settings),
    outside numbers stay, newly ticked extensions join at the end."""
    out = []
    for item in old:
        target, external = member_target(item)
        if external or target in chosen:
            out.append(item)
    have = {member_target(item)[0] for item in out}
    return out + [n for n in chosen if n not in have]


def _fill_item(form: QueueForm, item: dict[str, Any]) -> None:
    """Copy the form into a document's queue, keeping the keys the form does not show."""
    item["name"] = form.name.data.strip()
    item["members"] = _members(list(item.get("members") or []), list(form.members.data or []))
    item["strategy"] = form.strategy.data
    item.pop("rings", None)
    for key in ("ring_time", "retry", "wrapup", "announce_every", "max_wait", "music",
                "announce_position", "announce_wait", "vip_first", "callback", "callback_key"):
        item[key] = getattr(form, key).data
    item["greeting"] = form.greeting.data or None
    if not item["greeting"]:
        item.pop("greeting")
    item.pop("exit_key", None)
    item.pop("exit_to", None)
    if form.exit_key.data or form.exit_to.data:
        item["exit_key"] = form.exit_key.data or None
        item["exit_to"] = form.exit_to.data or None
    _set_exits(item, form.on_no_answer.data, form.on_unavailable.data)


def _set_exits(item: dict[str, Any], no_answer: str, unavailable: str) -> None:
    """After the longest wait and nobody logged in as chosen; busy and failure as they were, else with no answer."""
    kept = {key: item.get(key, item.get("on_fail")) for key in ("on_busy", "on_failure")}
    for key in EXIT_KEYS:
        item.pop(key, None)
    item["on_fail"] = no_answer
    if unavailable != no_answer:
        item["on_unavailable"] = unavailable
    for key, value in kept.items():
        if value is not None and value != no_answer:
            item[key] = value


def _strategy_name(strategy: str) -> str:
    """The words before the colon of a strategy's label ("Longest idle"), for the list."""
    label = dict(STRATEGIES).get(strategy)
    return str(label).split(":")[0] if label else strategy


def _page(template: str, status: int = 200, **context: Any):
    store = get_store()
    pform, presult = preview.from_request(store)
    return render_template(template, pform=pform, presult=presult, **context), status


def _save(form: FlaskForm, doc: dict[str, Any], qid: str, summary: str) -> bool:
    """Save the document; on refusal put the validator's reason next to the field it names."""
    try:
        office.save(get_store(), doc, who="owner", summary=summary)
    except ConfigError as e:
        office.put_error(form, e, ("routing", "queues", qid), ALIASES)
        return False
    applied(_("Saved."))
    return True


@bp.route("/")
def index(error: str | None = None):
    doc = office.document(get_store())
    names = _extensions(doc)
    rows = []
    for qid, item in sorted(_queues(doc).items()):
        item = item or {}
        rows.append({"id": qid, "name": item.get("name") or qid,
                     "members": [member_words(m, names) for m in item.get("members") or []],
                     "strategy": _strategy_name(item.get("strategy") or "longest_idle"),
                     "after": destinations.describe(doc, item.get("on_no_answer", item.get("on_fail")))})
    return _page("queues/index.html", 400 if error else 200, rows=rows, delete=ConfirmForm(), error=error)


@bp.route("/add", methods=("GET", "POST"))
def add():
    store = get_store()
    doc = office.document(store)
    form = NewQueueForm()
    _set_choices(form, doc, None)
    if request.method == "GET":
        form.members.data = list(_extensions(doc))
    if form.validate_on_submit():
        qid = form.ident.data.strip()
        if qid in _queues(doc):
            form.ident.errors.append(_("There is a queue with this id already."))
        else:
            item: dict[str, Any] = {}
            _fill_item(form, item)
            _queues(doc)[qid] = item
            if _save(form, doc, qid, f"added queue {qid}"):
                return redirect(url_for("queues.edit", qid=qid, caller="0671234567", _anchor="route-preview"))
    status = 400 if request.method == "POST" else 200
    return _page("queues/edit.html", status, form=form, qid=None, order=[], move=None)


@bp.route("/<qid>", methods=("GET", "POST"))
def edit(qid: str):
    store = get_store()
    doc = office.document(store)
    if qid not in _queues(doc):
        abort(404)
    q = _parsed_queue(doc, qid)
    order = [member_words(m, _extensions(doc)) for m in _queues(doc)[qid].get("members") or []]
    form = QueueForm()
    _set_choices(form, doc, qid, q)
    if request.method == "GET":
        _fill_form(form, q)
    elif form.validate_on_submit():
        _fill_item(form, _queues(doc)[qid])
        if _save(form, doc, qid, f"changed queue {qid}"):
            return redirect(url_for("queues.edit", qid=qid, caller="0671234567", _anchor="route-preview"))
    status = 400 if request.method == "POST" else 200
    return _page("queues/edit.html", status, form=form, qid=qid, order=order, move=MoveForm(),
                 delete=ConfirmForm())


@bp.route("/<qid>/move", methods=("POST",))
def move(qid: str):
    """Move one member up or down: the order one-by-one strategies ring them in."""
    store = get_store()
    doc = office.document(store)
    form = MoveForm()
    if qid not in _queues(doc):
        abort(404)
    members = list(_queues(doc)[qid].get("members") or [])
    if not form.validate_on_submit() or not (form.member.data or "").isdigit():
        abort(400)
    i = int(form.member.data)
    j = i - 1 if form.direction.data == "up" else i + 1
    if not (0 <= i < len(members) and 0 <= j < len(members)):
        abort(400)
    members[i], members[j] = members[j], members[i]
    _queues(doc)[qid]["members"] = members
    try:
        office.save(store, doc, who="owner", summary=f"reordered queue {qid}")
    except ConfigError as e:
        return index(error=_("The change was not saved: %(why)s", why=str(e)))
    applied(_("Saved."))
    return redirect(url_for("queues.edit", qid=qid))


@bp.route("/<qid>/delete", methods=("POST",))
def delete(qid: str):
    store = get_store()
    doc = office.document(store)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if _queues(doc).pop(qid, None) is None:
        abort(404)
    try:
        office.save(store, doc, who="owner", summary=f"deleted queue {qid}")
    except ConfigError as e:
        return index(error=_("The change was not saved: %(why)s", why=e.message))
    applied(_("Queue %(id)s was deleted.", id=qid))
    return redirect(url_for("queues.index"))
