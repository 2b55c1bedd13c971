"""The store for a request (opened on first use, closed at teardown), and the running appliance."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g

from appliance.control import ControlClient, ControlError, socket_path
from appliance.store import Store


def get_store() -> Store:
    if "store" not in g:
        g.store = Store(current_app.config["DATA_DIR"], migrate=False)
    return g.store


def control() -> ControlClient:
    return ControlClient(socket_path(current_app.config["DATA_DIR"]), timeout=3.0)


def ask(cmd: str, **args: Any) -> tuple[Any, str | None]:
    """(answer, None) from the running appliance, or (None, why not)."""
    try:
        with control() as client:
            return client.request(cmd, **args), None
    except ControlError as e:
        return None, str(e)


def tell_appliance() -> str | None:
    """Have the running appliance read the configuration again; None when it did (or none runs)."""
    if not socket_path(current_app.config["DATA_DIR"]).exists():
        return None
    _, error = ask("engine.reload")
    return error


def applied(done: str) -> None:
    """After a save: have the running appliance read the configuration, and tell the owner how that went."""
    from flask import flash
    from flask_babel import gettext as _

    error = tell_appliance()
    if error:
        flash(_("Saved; the running appliance did not take it yet (%(why)s).", why=error), "error")
    else:
        flash(done, "ok")


def close_store(exc: BaseException | None = None) -> None:
    store = g.pop("store", None)
    if store is not None:
        store.close()


def init_app(app: Flask) -> None:
    # Migrations run once, when the panel starts; a request only opens the file.
    Store(app.config["DATA_DIR"]).close()
    app.teardown_appcontext(close_store)
