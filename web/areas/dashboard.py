"""The dashboard: day or night (and the toggle), trunks, phones online, calls now, open missed
calls, and the board's disk and temperature."""

from __future__ import annotations

import shutil
from pathlib import Path

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField

from web.db import ask, get_store

bp = Blueprint("dashboard", __name__)
NAV = (0, _l("Dashboard"))

THERMAL = Path("/sys/class/thermal/thermal_zone0/temp")


class NightForm(FlaskForm):
    mode = HiddenField()


def board() -> dict:
    """Disk use of the data directory's file system and the SoC temperature, where the board has one."""
    usage = shutil.disk_usage(current_app.config["DATA_DIR"])
    try:
        temp = int(THERMAL.read_text().strip()) / 1000.0
    except (OSError, ValueError):
        temp = None
    return {"disk_free_gb": usage.free / 1e9, "disk_used_pct": 100.0 * usage.used / usage.total, "temp_c": temp}


def night_view() -> tuple[dict | None, str | None]:
    """The night switches as the running appliance (or, when it is down, the store) sees them."""
    answer, error = ask("night.status")
    if answer is not None:
        return answer["switches"], None
    from appliance.night.service import NightError, NightService

    try:
        return NightService(get_store()).status()["switches"], error
    except NightError as e:
        return None, str(e)


@bp.route("/")
def index():
    store = get_store()
    live, down = ask("status")
    switches, _unused = night_view()
    calls, _unused = ask("calls", limit=200)
    in_progress = [c for c in (calls or {}).get("calls", []) if c.get("outcome") == "in_progress"]
    trunks, _unused = ask("trunks.status")
    from appliance.store.missed import MissedTables

    from web.areas.trunks import state_words

    trunk_states = [{**t, "words": state_words(t)} for t in (trunks or {}).get("trunks", [])] if trunks else None
    return render_template(
        "dashboard/index.html", live=live, down=down, switches=switches, form=NightForm(),
        trunks=trunk_states, trunk_rows=store.trunks(),
        extensions=store.extensions(), bindings=store.bindings(), calls_now=len(in_progress) if calls else None,
        missed_open=MissedTables(store).open_count(), board=board())


@bp.route("/night", methods=("POST",))
def night():
    form = NightForm()
    if form.validate_on_submit() and form.mode.data in ("on", "off", "auto", "toggle"):
        answer, error = ask("night.set", mode=form.mode.data, by="panel")
        if answer is None:
            from appliance.night.service import NightError, NightService

            try:
                NightService(get_store()).set(form.mode.data, by="panel")
                error = None
            except NightError as e:
                error = str(e)
        if error:
            flash(_("Night mode did not change: %(why)s", why=error), "error")
        else:
            flash(_("Saved."), "ok")
    return redirect(url_for("dashboard.index"))
