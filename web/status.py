"""The front page: is the appliance up, what is registered."""

from __future__ import annotations

from flask import Blueprint, render_template

from appliance.control import ControlError
from web.auth import login_required
from web.db import control, get_store

bp = Blueprint("status", __name__)


@bp.route("/")
@login_required
def index():
    store = get_store()
    try:
        with control() as client:
            live = client.request("status")
        error = None
    except ControlError as e:
        live, error = None, str(e)
    return render_template(
        "status.html", live=live, error=error, extensions=store.extensions(), bindings=store.bindings()
    )
