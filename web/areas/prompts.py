"""Prompts and music: the owner's recordings (uploaded WAV or MP3, or spoken with espeak-ng), their
length and level, listening in the browser, deleting what the routing does not use, and the
appliance's own spoken prompts in Ukrainian and English.

Files live on disk, not in the configuration (see appliance/audio.py): the
engine opens a prompt each time it plays it, so an upload is heard on the
next call without a reload.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Iterator

from flask import Blueprint, abort, current_app, flash, redirect, render_template, send_file, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Regexp

from appliance import audio
from web import office
from web.db import get_store
from web.i18n import LANGUAGES as LANGUAGE_NAMES

bp = Blueprint("prompts", __name__, url_prefix="/prompts")
NAV = (45, _l("Prompts and music"))

NAME_RULE = _l("Letters, digits, _ and - only (at most 64).")
TEXT_MAX = 500

# Where the routing names a prompt (or music): section, field, and how the page says that place.
USES = {
    "prompt": (("groups", "announce", _l("group '%(name)s', the announcement before ringing")),
               ("queues", "greeting", _l("queue '%(name)s', the greeting")),
               ("menus", "prompt", _l("menu '%(name)s', the menu prompt")),
               ("menus", "invalid_prompt", _l("menu '%(name)s', the prompt after a wrong key")),
               ("menus", "timeout_prompt", _l("menu '%(name)s', the prompt after no key")),
               ("announcements", "prompt", _l("announcement '%(name)s'")),
               ("voicemail", "greeting", _l("voicemail box '%(name)s', the greeting"))),
    "music": (("queues", "music", _l("queue '%(name)s', the music while waiting")),),
}
# The fields whose prompt is a greeting, best 10-20 s long.
GREETING_FIELDS = {("queues", "greeting"), ("menus", "prompt"), ("voicemail", "greeting")}


def _name_field(label: Any) -> StringField:
    return StringField(label, validators=[DataRequired(_l("Give it a name.")),
                                          Regexp(audio.NAME.pattern, message=NAME_RULE)])


class UploadForm(FlaskForm):
    name = _name_field(_l("Name"))
    kind = SelectField(_l("Kind of recording"), choices=[("prompt", _l("Prompt for callers")),
                                                         ("music", _l("Music on hold or in a queue"))],
                       default="prompt")
    file = FileField(_l("WAV or MP3 file"), validators=[FileRequired(_l("Choose a file."))])


class SpeakForm(FlaskForm):
    name = _name_field(_l("Name"))
    language = SelectField(_l("Language"), choices=[(k, v) for k, v in LANGUAGE_NAMES.items()], default="uk")
    text = TextAreaField(_l("Text to speak"), validators=[DataRequired(_l("Write what the prompt says.")),
                                                 Length(max=TEXT_MAX, message=_l("At most %(max)d characters."))])


class FileForm(FlaskForm):
    kind = HiddenField()
    name = HiddenField()


class DefaultsForm(FlaskForm):
    pass


# -- what the routing uses ----------------------------------------------------------------------

def uses(routing: dict, kind: str, name: str) -> Iterator[tuple[str, str, str]]:
    """(section, id, field) of every place the routing names the prompt or music `name`."""
    for section, key, _label in USES[kind]:
        for ident, item in sorted((routing.get(section) or {}).items()):
            if isinstance(item, dict) and item.get(key) == name:
                yield section, ident, key
    if kind == "music" and name == "default":
        for ident, item in sorted((routing.get("queues") or {}).items()):
            if isinstance(item, dict) and "music" not in item:
                yield "queues", ident, "music"


def where_used(routing: dict, kind: str, name: str) -> list[str]:
    """The places `uses` finds, in words: "menu 'Main', the menu prompt"."""
    labels = {(section, key): label for section, key, label in USES[kind]}
    return [str(labels[(section, key)]) % {"name": routing[section][ident].get("name") or ident}
            for section, ident, key in uses(routing, kind, name)]


def is_greeting(routing: dict, name: str) -> bool:
    """A prompt callers hear first (a greeting, a menu): advice on its length is worth giving."""
    if name.startswith(("greeting", "vm-")):
        return True
    return any((section, key) in GREETING_FIELDS for section, _i, key in uses(routing, "prompt", name))


def routing_document() -> dict:
    return office.document(get_store()).get("routing") or {}


# -- the files ------------------------------------------------------------------------------------

def data_dir() -> Path:
    return Path(current_app.config["DATA_DIR"])


def listing(kind: str) -> list[dict]:
    """The owner's prompts or music with their figures (None when a file cannot be measured)."""
    rows = []
    for name in audio.owned(data_dir(), kind):
        try:
            figures = audio.measure(audio.owned_path(data_dir(), kind, name))
        except audio.AudioError:
            figures = None
        rows.append({"name": name, "figures": figures})
    return rows


def defaults() -> list[dict]:
    """The appliance's own spoken prompts (numbers left out), with the languages they exist in."""
    rows = []
    for name in audio.SPEECH["en"]:
        if name.startswith("digits/"):
            continue
        have = {lang: (data_dir() / "prompts" / lang / f"{name}.wav").exists() for lang in audio.LANGUAGES}
        rows.append({"name": name, "texts": {lang: audio.SPEECH[lang][name] for lang in audio.LANGUAGES},
                     "have": have, "own": audio.owned_path(data_dir(), "prompt", name).exists()})
    return rows


def sound_path(kind: str, name: str) -> Path:
    """The file a listen link names: the owner's (a checked name) or a default (a known name); else 404."""
    if kind in audio.KINDS:
        try:
            path = audio.owned_path(data_dir(), kind, name)
        except ValueError:
            abort(404)
    elif kind in audio.LANGUAGES and name in audio.SPEECH[kind]:
        path = data_dir() / "prompts" / kind / f"{name}.wav"
    else:
        abort(404)
    if not path.is_file():
        abort(404)
    return path


def refusal(err: audio.AudioError) -> str:
    """An AudioError in the panel's language."""
    if err.code == "silent":
        return _("The file is silent; nothing was saved.")
    if err.code == "too-long":
        return _("%(minutes).1f minutes is too long: at most %(limit)d minutes; nothing was saved.",
                 minutes=err.figures["minutes"], limit=err.figures["limit"])
    if err.code == "no-sox":
        return _("sox is not installed on the appliance; nothing was saved.")
    return _("Not a WAV or MP3 file we can read; nothing was saved.")


def advice(notes: list[str], figures: audio.Figures) -> list[str]:
    words = {
        "quiet": lambda: _("It is very quiet (RMS %(rms).0f dB): callers may hardly hear it.", rms=figures.rms_db),
        "clipped": lambda: _("It is clipped (%(count)d samples at full scale): it may sound distorted.",
                             count=figures.clipped),
        "greeting-length": lambda: _("A greeting is best 10 to 20 seconds long; this one lasts %(seconds).0f s.",
                                     seconds=figures.seconds),
    }
    return [words[n]() for n in notes]


def _saved(kind: str, name: str, figures: audio.Figures, notes: list[str]) -> None:
    if kind == "music":
        flash(_("Music '%(name)s' is saved (%(seconds).1f s).", name=name, seconds=figures.seconds), "ok")
    else:
        flash(_("Prompt '%(name)s' is saved (%(seconds).1f s).", name=name, seconds=figures.seconds), "ok")
    for note in advice(notes, figures):
        flash(note, "error")


# -- pages ----------------------------------------------------------------------------------------

@bp.route("/")
def index(upload: UploadForm | None = None, speak: SpeakForm | None = None):
    doc = office.document(get_store())
    language = (doc.get("calls") or {}).get("language", "uk")
    return render_template(
        "prompts/index.html", upload=upload or UploadForm(), speak=speak or SpeakForm(prefix="tts"),
        prompts=listing("prompt"), music=listing("music"), defaults=defaults(), file_form=FileForm(),
        defaults_form=DefaultsForm(), language=LANGUAGE_NAMES.get(language, language), text_max=TEXT_MAX)


@bp.route("/upload", methods=("POST",))
def upload():
    form = UploadForm()
    if not form.validate_on_submit():
        return index(upload=form), 400
    kind, name = form.kind.data, form.name.data
    with tempfile.TemporaryDirectory(prefix=".upload-", dir=data_dir()) as tmp:
        source = Path(tmp) / "upload"
        form.file.data.save(str(source))
        try:
            greeting = kind == "prompt" and is_greeting(routing_document(), name)
            figures, notes = audio.install(source, data_dir(), kind, name, greeting=greeting)
        except audio.AudioError as e:
            form.file.errors = [refusal(e)]
            return index(upload=form), 400
    _saved(kind, name, figures, notes)
    return redirect(url_for("prompts.index"))


@bp.route("/speak", methods=("POST",))
def speak():
    form = SpeakForm(prefix="tts")
    if not form.validate_on_submit():
        return index(speak=form), 400
    name = form.name.data
    path = audio.owned_path(data_dir(), "prompt", name)
    try:
        if not audio.speak(path, form.text.data.strip(), form.language.data):
            form.text.errors = [_("espeak-ng is not installed on the appliance; nothing was saved.")]
            return index(speak=form), 400
        figures = audio.measure(path)
    except (OSError, ValueError, audio.AudioError) as e:
        form.text.errors = [_("The text could not be spoken: %(why)s", why=str(e))]
        return index(speak=form), 400
    _saved("prompt", name, figures, [])
    return redirect(url_for("prompts.index"))


@bp.route("/delete", methods=("POST",))
def delete():
    form = FileForm()
    kind, name = form.kind.data, form.name.data
    if not form.validate_on_submit() or kind not in audio.KINDS or not audio.valid_name(name or ""):
        abort(400)
    if kind == "music" and name == "default":
        flash(_("'default' is the music on hold; upload another file with this name to replace it."), "error")
        return redirect(url_for("prompts.index"))
    used = where_used(routing_document(), kind, name)
    if used:
        flash(_("'%(name)s' was not deleted: the routing uses it in %(where)s.", name=name, where="; ".join(used)),
              "error")
        return redirect(url_for("prompts.index"))
    audio.owned_path(data_dir(), kind, name).unlink(missing_ok=True)
    flash(_("'%(name)s' is deleted.", name=name), "ok")
    return redirect(url_for("prompts.index"))


@bp.route("/defaults", methods=("POST",))
def make_defaults():
    """Speak the appliance's own prompts that are missing, in both languages (the engine also does it
    at its first call; this lets the owner listen to them before)."""
    if not DefaultsForm().validate_on_submit():
        abort(400)
    written = audio.speak_missing(data_dir())
    flash(_("Spoken prompts made: %(count)d.", count=written), "ok")
    return redirect(url_for("prompts.index"))


@bp.route("/file/<kind>/<path:name>.wav")
def sound(kind: str, name: str):
    return send_file(sound_path(kind, name), mimetype="audio/wav", conditional=True)
