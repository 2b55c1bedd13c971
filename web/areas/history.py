"""History and undo, and backup: every saved change is a version that can be restored; the whole
configuration downloads as the YAML file `pbx config import` reads, and uploads back all or nothing."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import HiddenField

from appliance.configfile import ConfigFileError, decode, export_config
from appliance.store.panel import PanelTables
from web import office
from web.db import applied, get_store

bp = Blueprint("history", __name__, url_prefix="/history")
NAV = (90, _l("History and backup"))


class RestoreForm(FlaskForm):
    version = HiddenField()


class UploadForm(FlaskForm):
    file = FileField(_l("Configuration file (YAML)"), validators=[FileRequired(_l("Choose a file."))])



@bp.route("/")
def index(upload: UploadForm | None = None):
    tables = PanelTables(get_store())
    return render_template("history/index.html", versions=tables.versions(), restore=RestoreForm(),
                           upload=upload or UploadForm())


@bp.route("/<int:version_id>")
def show(version_id: int):
    tables = PanelTables(get_store())
    v = tables.version(version_id)
    if v is None:
        abort(404)
    before = tables.version_before(version_id)
    lines = office.diff(before["document"] if before else "", v["document"])
    return render_template("history/show.html", v=v, before=before, lines=lines, restore=RestoreForm())


@bp.route("/restore", methods=("POST",))
def restore():
    form = RestoreForm()
    if not form.validate_on_submit() or not (form.version.data or "").isdigit():
        abort(400)
    try:
        office.restore_version(get_store(), int(form.version.data), who="owner")
    except ConfigFileError as e:
        flash(_("Version %(id)s cannot be restored: %(why)s", id=form.version.data, why=str(e)), "error")
        return redirect(url_for("history.index"))
    applied(_("Version %(id)s is the configuration again.", id=form.version.data))
    return redirect(url_for("history.index"))


@bp.route("/backup.yaml")
def backup():
    text = export_config(get_store())
    return Response(text, mimetype="application/yaml",
                    headers={"Content-Disposition": 'attachment; filename="pbx-config.yaml"'})


@bp.route("/upload", methods=("POST",))
def upload():
    form = UploadForm()
    if form.validate_on_submit():
        f = form.file.data
        try:
            text = decode(f.read())
            office.restore_text(get_store(), text, who="owner", summary=_("restored from the file %(name)s",
                                                                             name=f.filename or "?"))
        except ConfigFileError as e:
            form.file.errors = [_("%(why)s; nothing was changed", why=str(e))]
            return index(upload=form), 400
        applied(_("The configuration from the file is in use."))
        return redirect(url_for("history.index"))
    return index(upload=form), 400
