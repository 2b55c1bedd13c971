"""The wallboard: big tiles for the office TV, coloured amber and red at the owner's thresholds.

`/wallboard/` is a page of its own (no menu, dark, large type): callers
waiting now and the longest wait, answered and missed calls today, the
service level today, the agents and their states, the missed calls not yet
handled.  The figures come from appliance.wallboard's functions over the
running appliance's live calls (`monitor.snapshot`) and the store; the
thresholds from the `wallboard` configuration section.

`web/static/wallboard.js` keeps it current: `/wallboard/events` is a stream
of server-sent events, one subscription to the control socket per open page
(`appliance.monitor.Following`), sending the tiles rendered again after each
change of a live call; `/wallboard/tiles` gives the same tiles on request,
which the script asks for every DAY_REFRESH seconds (today's figures and the
missed calls change without a live call changing).

Kiosk access: a TV should not hold the owner's password.  The settings
sub-page makes a long random token (only its SHA-256 digest is kept, setting
KIOSK) and shows the wallboard's address with it once; that address opens
the three GET endpoints in KIOSK_ENDPOINTS and nothing else
(`web.auth.require_login`).  Making a new one or revoking it ends the old.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import datetime, timezone
from typing import Any, Iterator

from flask import (Blueprint, Response, current_app, flash, g, redirect, render_template, request,
                   stream_with_context, url_for)
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import BooleanField, IntegerField
from wtforms.validators import Optional

from appliance.control import ControlError, socket_path
from appliance.errors import ConfigError
from appliance.monitor import ENDED, SNAPSHOT, Following
from appliance.reports import short_abandon_seconds
from appliance.store.agents import AgentStatuses
from appliance.store.missed import MissedTables
from appliance.wallboard import (LEVELS, TILES, Thresholds, agents, day_figures, values, waiting,
                                 worst)
from web import office
from web.db import applied, ask, get_store

bp = Blueprint("wallboard", __name__, url_prefix="/wallboard")
NAV = (4, _l("Wallboard"))

HEARTBEAT = 15.0      # seconds between comment lines that keep a quiet stream (and proxies) open
DAY_REFRESH = 30      # seconds between the page's requests for the whole board
KIOSK = "wallboard_kiosk"          # store setting: {"digest": sha256 hex of the token, "made_at": ISO}
KIOSK_PARAM = "kiosk"              # the query parameter that carries the token
KIOSK_ENDPOINTS = frozenset({"wallboard.index", "wallboard.tiles", "wallboard.events"})

AGENT_STATES = {"talking": _l("in a call"), "ringing": _l("ringing"), "free": _l("free"),
                "offline": _l("not registered")}
# An agent's own status (appliance.store.agents), shown when it is not "available".
AGENT_STATUSES = {"break": _l("on a break"), "lunch": _l("at lunch"), "wrapup": _l("after-call work")}


# ---- kiosk token ------------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(given: str | None) -> bool:
    """True when `given` is the kiosk token in force (compared in constant time)."""
    saved = get_store().get_setting(KIOSK) or {}
    digest = saved.get("digest") if isinstance(saved, dict) else None
    return bool(given) and bool(digest) and hmac.compare_digest(_digest(given), digest)


def kiosk_request() -> bool:
    """A read-only request of the wallboard opened by the kiosk token (no owner session)."""
    return (request.method == "GET" and request.endpoint in KIOSK_ENDPOINTS
            and token_matches(request.args.get(KIOSK_PARAM)))


# ---- the board ----------------------------------------------------------------------------------


def epoch(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


def clock(seconds: float | None) -> str:
    s = int(seconds or 0)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def aged(calls: list[dict], now: datetime) -> list[dict]:
    """Call views with their length counted to `now` (an event's view holds it as of that event)."""
    out = []
    for c in calls:
        started = epoch(c.get("started_at"))
        out.append({**c, "call_s": max(0.0, now.timestamp() - started)} if started is not None else c)
    return out


def board(calls: list[dict] | None, now: datetime) -> dict[str, Any]:
    """Everything the tiles show: figures, levels, thresholds and agents (`calls` None: no appliance)."""
    store = get_store()
    limits = Thresholds.from_setting(store.get_setting("wallboard"))
    live = aged(calls or [], now)
    wait = waiting(live)
    day = day_figures(store, store.timezone, now, limits.answer_within, short_abandon_seconds(store))
    missed_open = MissedTables(store).open_count()
    levels = limits.levels(values(wait, day, missed_open))
    registered = {str(b["extension"]) for b in store.bindings()}
    statuses = {ext: row["status"] for ext, row in AgentStatuses(store).all().items()}
    return {"live": calls is not None, "wait": wait, "since": epoch(wait.since), "day": day,
            "missed_open": missed_open, "levels": levels, "worst": worst(levels.values()), "limits": limits,
            "agents": agents(store.extensions(), registered, live, statuses), "states": AGENT_STATES,
            "statuses": AGENT_STATUSES,
            "now": now.timestamp(), "clock": clock}


def render_tiles(calls: list[dict] | None, now: datetime) -> Markup:
    return Markup(render_template("wallboard/_tiles.html", b=board(calls, now)))


def kiosk_args() -> dict[str, str]:
    """The token again on the page's own requests, when the page was opened by it."""
    return {KIOSK_PARAM: request.args[KIOSK_PARAM]} if g.get("kiosk") else {}


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@bp.route("/")
def index():
    snap, down = ask("monitor.snapshot")
    now = datetime.fromisoformat(snap["now"]) if snap else utc_now()
    return render_template("wallboard/index.html", tiles=render_tiles(snap["calls"] if snap else None, now),
                           down=down, now=now.timestamp(), kiosk=kiosk_args(), refresh=DAY_REFRESH)


@bp.route("/tiles")
def tiles():
    """The tiles alone (JSON: `html`, `now`), for the page's periodic refresh."""
    snap, _down = ask("monitor.snapshot")
    now = datetime.fromisoformat(snap["now"]) if snap else utc_now()
    return {"html": render_tiles(snap["calls"] if snap else None, now), "now": now.timestamp()}


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@bp.route("/events")
def events():
    following = Following(socket_path(current_app.config["DATA_DIR"]), quiet=HEARTBEAT)

    def stream() -> Iterator[str]:
        calls: dict[str, dict] = {}
        try:
            yield "retry: 3000\n\n"
            for item in following:
                if item is None:
                    yield ": still here\n\n"
                    continue
                if item["kind"] == SNAPSHOT:
                    calls = {c["id"]: c for c in item["calls"]}
                    at = item["now"]
                elif item["kind"] == ENDED:
                    calls.pop(item["call_id"], None)
                    at = item["at"]
                else:
                    calls[item["call_id"]] = item["call"]
                    at = item["at"]
                now = datetime.fromisoformat(at)
                ordered = sorted(calls.values(), key=lambda c: c.get("started_at") or "")
                yield sse("tiles", {"html": render_tiles(ordered, now), "now": now.timestamp()})
        except ControlError as e:
            yield sse("down", {"why": str(e)})
        finally:
            following.close()

    return Response(stream_with_context(stream()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


# ---- settings -----------------------------------------------------------------------------------


class ThresholdsForm(FlaskForm):
    waiting_amber = IntegerField(_l("Callers waiting: amber at"), validators=[Optional()])
    waiting_red = IntegerField(_l("Callers waiting: red at"), validators=[Optional()])
    longest_wait_amber = IntegerField(_l("Longest wait: amber at (seconds)"), validators=[Optional()])
    longest_wait_red = IntegerField(_l("Longest wait: red at (seconds)"), validators=[Optional()])
    service_level_amber = IntegerField(_l("Service level: amber below (%)"), validators=[Optional()])
    service_level_red = IntegerField(_l("Service level: red below (%)"), validators=[Optional()])
    missed_open_amber = IntegerField(_l("Missed calls to handle: amber at"), validators=[Optional()])
    missed_open_red = IntegerField(_l("Missed calls to handle: red at"), validators=[Optional()])
    answer_within_seconds = IntegerField(_l("Service level counts calls answered within (seconds)"),
                                         validators=[Optional()])
    led = BooleanField(_l("The calls LED blinks fast while a tile is red"))


class KioskForm(FlaskForm):
    """Only the CSRF token: making and revoking the kiosk link are buttons."""


def _form(setting: dict) -> ThresholdsForm:
    form = ThresholdsForm()
    if request.method == "GET":
        for tile in TILES:
            for level in LEVELS:
                getattr(form, f"{tile}_{level}").data = (setting.get(tile) or {}).get(level)
        form.answer_within_seconds.data = setting.get("answer_within_seconds")
        form.led.data = setting.get("led", True)
    return form


def _section(form: ThresholdsForm, old: dict) -> dict:
    out: dict[str, Any] = {}
    for tile in TILES:
        limits = {level: getattr(form, f"{tile}_{level}").data for level in LEVELS}
        limits = {k: v for k, v in limits.items() if v is not None}
        if limits:
            out[tile] = limits
    if form.answer_within_seconds.data is not None:
        out["answer_within_seconds"] = form.answer_within_seconds.data
    if not form.led.data:
        out["led"] = False
    return out


def _put_error(form: ThresholdsForm, err: ConfigError) -> None:
    """A refusal next to its field: wallboard.<tile>.<level> or wallboard.<key>; else above the form."""
    path = [p for p in err.path[1:] if isinstance(p, str)] if err.path[:1] == ("wallboard",) else []
    for name in ("_".join(path[:2]), "_".join(path[:1])):
        if name and name in form:
            form[name].errors = [*form[name].errors, err.message]
            return
    form.form_errors.append(str(err))


def _kiosk_saved() -> dict | None:
    saved = get_store().get_setting(KIOSK)
    return saved if isinstance(saved, dict) and saved.get("digest") else None


def _settings_page(form: ThresholdsForm, status: int = 200, new_link: str | None = None):
    return render_template("wallboard/settings.html", form=form, kiosk_form=KioskForm(formdata=None),
                           kiosk=_kiosk_saved(), new_link=new_link), status


@bp.route("/settings", methods=("GET", "POST"))
def settings():
    store = get_store()
    doc = office.document(store)
    form = _form(doc.get("wallboard") or {})
    if request.method == "GET":
        return _settings_page(form)
    if not form.validate_on_submit():
        return _settings_page(form, 400)
    section = _section(form, doc.get("wallboard") or {})
    if section:
        doc["wallboard"] = section
    else:
        doc.pop("wallboard", None)
    try:
        office.save(store, doc, "owner", _("wallboard thresholds"))
    except ConfigError as e:
        _put_error(form, e)
        return _settings_page(form, 400)
    applied(_("Saved."))
    return redirect(url_for("wallboard.settings"))


@bp.route("/settings/kiosk", methods=("POST",))
def make_kiosk():
    """A new kiosk token (the old one stops working); its address is shown on this answer only."""
    if not KioskForm().validate_on_submit():
        flash(_("The form expired or did not come from this panel; reload the page and try again."), "error")
        return redirect(url_for("wallboard.settings"))
    token = secrets.token_urlsafe(32)
    get_store().set_setting(KIOSK, {"digest": _digest(token), "made_at": office.now_iso()})
    link = url_for("wallboard.index", _external=True, **{KIOSK_PARAM: token})
    store = get_store()
    form = _form((office.document(store).get("wallboard") or {}))
    return _settings_page(form, 200, new_link=link)


@bp.route("/settings/kiosk/revoke", methods=("POST",))
def revoke_kiosk():
    if not KioskForm().validate_on_submit():
        flash(_("The form expired or did not come from this panel; reload the page and try again."), "error")
    else:
        get_store().set_setting(KIOSK, None)
        flash(_("The kiosk link no longer opens the wallboard."), "ok")
    return redirect(url_for("wallboard.settings"))
