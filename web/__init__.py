"""The owner's web panel (Flask).

It reads live state and sends commands through the appliance's control
socket, never through pjsua2, and reads configuration from the store.  Assets
are served from the appliance itself: the panel works with no internet.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    data_dir = os.environ.get("PBX_DATA", "data")
    app.config.from_mapping(DATA_DIR=data_dir)
    if test_config:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(Path(app.config["DATA_DIR"]))
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")

    from web import auth, db, status

    db.init_app(app)
    auth.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(status.bp)
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
