"""Ukrainian (the default) and English: the owner's choice, else the browser's.

Translations are kept as `.po` files, one per area of the panel, in
`web/translations/<language>/<area>.po`, and read into memory when the panel
starts (no compiled `.mo` files to fall out of date).  English is the source
language of every message.
"""

from __future__ import annotations

import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from flask import Blueprint, Flask, redirect, request, url_for
from flask_babel import Babel, Domain, get_locale

LANGUAGES = {"uk": "Українська", "en": "English"}
DEFAULT = "uk"
COOKIE = "lang"
CATALOGS = Path(__file__).parent / "translations"

bp = Blueprint("i18n", __name__)
_loaded: dict[str, Translations] = {}


def load(language: str) -> Translations:
    """Every area's catalog of a language, merged (fuzzy entries are not used)."""
    merged = Translations()
    for po in sorted((CATALOGS / language).glob("*.po")):
        with po.open("rb") as f:
            catalog = read_po(f, locale=language)
        buf = io.BytesIO()
        write_mo(buf, catalog, use_fuzzy=False)
        buf.seek(0)
        merged.merge(Translations(fp=buf))
        merged.plural = Translations(fp=io.BytesIO(buf.getvalue())).plural
    return merged


class PoDomain(Domain):
    def get_translations(self):
        language = str(get_locale() or DEFAULT)
        if language == "en":
            return Translations()
        if language not in _loaded:
            _loaded[language] = load(language)
        return _loaded[language]


def select_language() -> str:
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(list(LANGUAGES), default=DEFAULT) or DEFAULT


@bp.route("/lang/<code>")
def choose(code: str):
    back = request.args.get("next") or url_for("dashboard.index")
    if not back.startswith("/") or back.startswith("//") or "\\" in back:
        back = url_for("dashboard.index")
    resp = redirect(back)
    if code in LANGUAGES:
        resp.set_cookie(COOKIE, code, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
    return resp


def init_app(app: Flask) -> None:
    babel = Babel(app, locale_selector=select_language, default_locale=DEFAULT)
    babel.domain_instance = PoDomain()  # in place of the cached default, which reads .mo files
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.jinja_env.globals["current_language"] = lambda: str(get_locale() or DEFAULT)
    app.register_blueprint(bp)
