"""Owner access: first-run password, login with lockout, server-side sessions, idle logout.

The browser's cookie (signed, HttpOnly, SameSite=Lax) carries only the id of
a row in `panel_sessions`; every request but the login and set-up pages and
the static files needs that row to exist and to have been used within the
idle time.  Logging out deletes the row, so a cookie saved before logout
opens nothing afterwards.  Wrong passwords are counted per source address:
the fifth within 15 minutes locks the address out for LOCKOUT_SECONDS, and
the login page says until when.

The password the appliance prints on its first start opens the panel once:
the owner then chooses their own before any other page opens.
"""

from __future__ import annotations

import time

from flask import Blueprint, Flask, current_app, g, redirect, render_template, request, session, url_for
from flask_babel import format_datetime, lazy_gettext as _l, gettext as _
from flask_wtf import FlaskForm
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import PasswordField
from wtforms.validators import DataRequired, EqualTo, Length

from appliance.store.panel import PanelTables
from web.db import get_store

bp = Blueprint("auth", __name__, url_prefix="/auth")

FAILURE_LIMIT = 5
FAILURE_WINDOW = 15 * 60
LOCKOUT_SECONDS = 5 * 60
IDLE_SECONDS = 30 * 60
MIN_PASSWORD = 10
OPEN_ENDPOINTS = frozenset({"auth.login", "auth.setup", "static", "i18n.choose"})

PASSWORD_HASH = "panel_password_hash"
TEMPORARY = "panel_password_temporary"


class LoginForm(FlaskForm):
    password = PasswordField(_l("Owner password"), validators=[DataRequired()])


class SetupForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[
        DataRequired(), Length(min=MIN_PASSWORD, max=200, message=_l("At least %(min)d characters.", min=MIN_PASSWORD))])
    confirm = PasswordField(_l("The same password again"), validators=[
        DataRequired(), EqualTo("password", message=_l("The two passwords differ."))])


def source() -> str:
    return request.remote_addr or "unknown"


def idle_seconds() -> float:
    return float(current_app.config.get("PANEL_IDLE_SECONDS", IDLE_SECONDS))


def logged_in() -> bool:
    if "owner" in g:
        return g.owner
    sid = session.get("sid")
    g.owner = bool(sid) and PanelTables(get_store()).session_seen(sid, time.time(), idle_seconds())
    return g.owner


def require_login():
    """Before every request: pages but login, set-up and assets need a live session."""
    if request.endpoint in OPEN_ENDPOINTS or request.endpoint is None:
        return None
    if request.endpoint.startswith("provision."):
        # Phones fetching their files (docs/provisioning.md): exactly these endpoints, whose views
        # check the secret in the address themselves; the area's other pages need a session.
        from web.areas.provision import PROVISION_ENDPOINTS

        if request.endpoint in PROVISION_ENDPOINTS:
            return None
    if request.endpoint.startswith("wallboard."):
        # Kiosk access (docs/panel.md): the wallboard's own GET pages, with the token its settings
        # page made, open without a session; any other page, method or token falls through.
        from web.areas.wallboard import kiosk_request

        if kiosk_request():
            g.kiosk = True
            return None
    store = get_store()
    if not store.get_setting(PASSWORD_HASH):
        return redirect(url_for("auth.setup"))
    if not logged_in():
        if session.get("sid"):
            session.pop("sid", None)
            g.notice = _("You were logged out after a time without use; log in again.")
        return redirect(url_for("auth.login", next=request.full_path if request.args else request.path))
    if store.get_setting(TEMPORARY) and request.endpoint != "auth.logout":
        return redirect(url_for("auth.setup"))
    return None


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("dashboard.index")
    return target


def _start_session() -> None:
    session.clear()
    session.permanent = False
    session["sid"] = PanelTables(get_store()).open_session(source(), time.time())


@bp.route("/login", methods=("GET", "POST"))
def login():
    store = get_store()
    if not store.get_setting(PASSWORD_HASH):
        return redirect(url_for("auth.setup"))
    form = LoginForm()
    tables = PanelTables(store)
    locked = tables.locked_until(source(), time.time())
    status = 200
    if locked:
        form.password.errors = [_locked_message(locked)]
        status = 429
    elif form.validate_on_submit():
        if check_password_hash(store.get_setting(PASSWORD_HASH), form.password.data):
            tables.login_succeeded(source())
            _start_session()
            if store.get_setting(TEMPORARY):
                return redirect(url_for("auth.setup"))
            return redirect(_safe_next(request.args.get("next")))
        until = tables.login_failed(source(), time.time(), FAILURE_LIMIT, FAILURE_WINDOW, LOCKOUT_SECONDS)
        form.password.errors = [_locked_message(until) if until else _("Wrong password.")]
        status = 429 if until else 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form, notice=g.get("notice")), status


def _locked_message(until: float) -> str:
    minutes = max(1, round((until - time.time()) / 60))
    return _("Too many wrong passwords from this address. Try again in %(n)d min (at %(at)s).",
             n=minutes, at=format_datetime(until_dt(until), "HH:mm"))


def until_dt(ts: float):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, timezone.utc)


@bp.route("/setup", methods=("GET", "POST"))
def setup():
    """The owner chooses the panel's password: on a first run with none, or after the printed one."""
    store = get_store()
    has_password = bool(store.get_setting(PASSWORD_HASH))
    if has_password and not logged_in():
        return redirect(url_for("auth.login"))
    if has_password and not store.get_setting(TEMPORARY):
        return redirect(url_for("dashboard.index"))
    form = SetupForm()
    if form.validate_on_submit():
        with store.transaction():
            store.set_setting(PASSWORD_HASH, generate_password_hash(form.password.data))
            store.set_setting(TEMPORARY, False)
        _start_session()
        PanelTables(store).end_all_sessions(keep=session["sid"])
        return redirect(url_for("dashboard.index"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/setup.html", form=form, first=not has_password), status


@bp.route("/logout", methods=("POST",))
def logout():
    sid = session.pop("sid", None)
    if sid:
        PanelTables(get_store()).end_session(sid)
    session.clear()
    return redirect(url_for("auth.login"))


def init_app(app: Flask) -> None:
    app.before_request(require_login)
