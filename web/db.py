"""The store for a request: opened on first use, closed at teardown."""

from __future__ import annotations

from flask import Flask, current_app, g

from appliance.control import ControlClient, socket_path
from appliance.store import Store


def get_store() -> Store:
    if "store" not in g:
        g.store = Store(current_app.config["DATA_DIR"])
    return g.store


def control() -> ControlClient:
    return ControlClient(socket_path(current_app.config["DATA_DIR"]), timeout=3.0)


def close_store(exc: BaseException | None = None) -> None:
    store = g.pop("store", None)
    if store is not None:
        store.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_store)
