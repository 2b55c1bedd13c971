"""Which panel messages lack a Ukrainian translation: used by the tests and by hand.

    python -m web.messages            lists what is missing, as .po entries to fill in
    python -m web.messages --check    exits 1 when anything is missing or a placeholder differs

Messages are found in web/**/*.py (`_`, `_l`, `gettext`, `lazy_gettext`,
`ngettext`) and in web/templates (Jinja's `_` and `gettext`).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

WEB = Path(__file__).parent
KEYWORDS = {"_": None, "_l": None, "gettext": None, "lazy_gettext": None, "ngettext": (1, 2),
            "lazy_ngettext": (1, 2)}
METHODS = [("web/**.py", "python"), ("web/templates/**.html", "jinja2")]
PLACEHOLDER = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[sdf]|%[sd]")


def used() -> dict[str, list[str]]:
    """msgid -> where it is used (file:line)."""
    out: dict[str, list[str]] = {}
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2.ext:babel_extract")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}}
    for filename, lineno, message, _comments, _context in extract_from_dir(
            str(WEB), method_map, options_map=options, keywords=KEYWORDS):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            out.setdefault(msgid, []).append(f"web/{filename}:{lineno}")
    return out


def catalog(language: str = "uk") -> dict[str, tuple[str, bool, str]]:
    """msgid -> (translation, fuzzy, the .po file) over every area's file."""
    out: dict[str, tuple[str, bool, str]] = {}
    for po in sorted((WEB / "translations" / language).glob("*.po")):
        with po.open("rb") as f:
            cat = read_po(f, locale=language)
        for m in cat:
            if not m.id:
                continue
            msgid = m.id[0] if isinstance(m.id, (tuple, list)) else m.id
            text = m.string[0] if isinstance(m.string, (tuple, list)) else m.string
            out[msgid] = (text or "", m.fuzzy, po.name)
    return out


def placeholders(text: str) -> set[str]:
    return {m.group(0).replace(" ", "") for m in PLACEHOLDER.finditer(text)}


def problems(language: str = "uk") -> list[str]:
    found, have = used(), catalog(language)
    out = []
    for msgid, places in sorted(found.items()):
        entry = have.get(msgid)
        if entry is None or not entry[0]:
            out.append(f"missing: {msgid!r} ({places[0]})")
        elif entry[1]:
            out.append(f"fuzzy: {msgid!r} in {entry[2]}")
        elif placeholders(msgid) != placeholders(entry[0]):
            out.append(f"placeholders differ: {msgid!r} -> {entry[0]!r} in {entry[2]}")
    return out


def _po_entry(msgid: str, places: list[str]) -> str:
    esc = msgid.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f"#: {' '.join(places[:3])}\nmsgid \"{esc}\"\nmsgstr \"\"\n"


def main(argv: list[str]) -> int:
    if "--check" in argv:
        bad = problems()
        print("\n".join(bad) or "every message has its Ukrainian translation")
        return 1 if bad else 0
    have = catalog()
    for msgid, places in sorted(used().items()):
        if msgid not in have or not have[msgid][0]:
            print(_po_entry(msgid, places))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
