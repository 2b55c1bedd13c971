"""Owner login and CSRF protection for every form."""

from __future__ import annotations

import functools
import hmac
import secrets

from flask import Blueprint, Flask, abort, redirect, render_template, request, session, url_for
from werkzeug.security import check_password_hash

from web.db import get_store

bp = Blueprint("auth", __name__, url_prefix="/auth")


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def check_csrf() -> None:
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
        expected = session.get("csrf") or ""
        if not expected or not hmac.compare_digest(sent, expected):
            abort(400, description="The form expired or did not come from this panel; reload the page and try again.")


def login_required(view):
    @functools.wraps(view)
    def wrapped(**kwargs):
        if not session.get("owner"):
            return redirect(url_for("auth.login", next=request.path))
        return view(**kwargs)

    return wrapped


@bp.route("/login", methods=("GET", "POST"))
def login():
    error = None
    if request.method == "POST":
        stored = get_store().get_setting("panel_password_hash")
        password = request.form.get("password", "")
        if stored and check_password_hash(stored, password):
            session.clear()
            session["owner"] = True
            target = request.args.get("next") or url_for("status.index")
            if not target.startswith("/") or target.startswith("//"):
                target = url_for("status.index")
            return redirect(target)
        error = "Wrong password."
    return render_template("login.html", error=error), (401 if error else 200)


@bp.route("/logout", methods=("POST",))
def logout():
    session.clear()
    return redirect(url_for("auth.login"))


def init_app(app: Flask) -> None:
    app.before_request(check_csrf)
    app.jinja_env.globals["csrf_token"] = csrf_token
