"""The owner's web panel (Flask).

It reads live state and sends commands through the appliance's control
socket, never through pjsua2, and reads and writes the configuration in the
store through `web.office`, the same checks `pbx config import` makes.
Every asset is served from the appliance itself: the panel works with no
internet.

One blueprint per area of the office lives in `web/areas/`; each module
there has `bp` and `NAV` (its place in the menu and its label) and is found
when the panel starts.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from pathlib import Path

from flask import Flask, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect

MAX_UPLOAD = 16 * 1024 * 1024  # a prompt or music file, or a backup

CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self' blob:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    data_dir = os.environ.get("PBX_DATA", "data")
    app.config.from_mapping(DATA_DIR=data_dir, MAX_CONTENT_LENGTH=MAX_UPLOAD, WTF_CSRF_TIME_LIMIT=None,
                            SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                            SESSION_COOKIE_NAME="pbx_session")
    if test_config:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(Path(app.config["DATA_DIR"]))

    from web import auth, db, i18n

    db.init_app(app)
    i18n.init_app(app)
    CSRFProtect(app)
    auth.init_app(app)
    app.register_blueprint(auth.bp)
    nav = []
    import web.areas

    for info in sorted(pkgutil.iter_modules(web.areas.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"web.areas.{info.name}")
        app.register_blueprint(module.bp)
        order, label = module.NAV
        if order is not None:
            nav.append((order, f"{module.bp.name}.index", label))
    app.jinja_env.globals["NAV"] = [(endpoint, label) for _, endpoint, label in sorted(nav)]

    @app.errorhandler(CSRFError)
    def csrf_refused(e: CSRFError):
        return render_template("error.html", title=_("The form expired"),
                               message=_("The form expired or did not come from this panel; reload the page and try again.")), 400

    @app.errorhandler(413)
    def too_large(e):
        return render_template("error.html", title=_("File too large"),
                               message=_("A file may be at most %(mb)d MB.", mb=MAX_UPLOAD // 2**20)), 413

    @app.after_request
    def security_headers(resp):
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "same-origin"
        resp.headers["Permissions-Policy"] = "camera=(), geolocation=(), microphone=()"
        if request.endpoint != "static":
            resp.headers["Cache-Control"] = "no-store"
        if request.is_secure:
            resp.headers["Strict-Transport-Security"] = "max-age=31536000"
        return resp

    return app


def _secret_key(data_dir: Path) -> bytes:
    """A per-appliance key for session cookies, kept in the data directory."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "panel.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
    return path.read_bytes()
