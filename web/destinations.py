"""Where a call can go, as the choices of a select field on the routing pages.

The values are the references the routing section uses (`101`, `group:sales`,
`voicemail:101`, `hangup`); the labels say them in words.  The list is made
from the document a page edits, so a destination added on one page is
offered on the next.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _, lazy_gettext as _l

# (kind, its section in the routing document, its label) in the order the select shows them.
SECTIONS = (
    ("group", "groups", "group"),
    ("queue", "queues", "queue"),
    ("menu", "menus", "IVR menu"),
    ("schedule", "schedules", "schedule"),
    ("night", "night", "night switch"),
    ("announcement", "announcements", "announcement"),
    ("external", "externals", "external number"),
    ("webhook", "webhooks", "webhook"),
    ("manager", "managers", "personal manager"),
    ("duty", "duty", "duty roster"),
    ("voicemail", "voicemail", "voicemail"),
)


_KIND_LABELS = {
    "group": _l("group"), "queue": _l("queue"), "menu": _l("IVR menu"), "schedule": _l("schedule"),
    "night": _l("night switch"), "announcement": _l("announcement"), "external": _l("external number"),
    "webhook": _l("webhook"), "manager": _l("personal manager"), "duty": _l("duty roster"),
    "voicemail": _l("voicemail"),
}
_SECTION_OF = {kind: section for kind, section, _label in SECTIONS}


def _kind_label(kind: str) -> str:
    return str(_KIND_LABELS[kind])


def choices(doc: dict[str, Any], *, menu_option: bool = False, exclude: str | None = None) -> list[tuple[str, str]]:
    """(reference, words) for every destination of the document; `menu_option` adds parent and repeat."""
    routing = doc.get("routing") or {}
    out: list[tuple[str, str]] = []
    for e in doc.get("extensions") or []:
        out.append((str(e["number"]), _("extension %(n)s (%(name)s)", n=e["number"], name=e.get("name") or "")))
    for kind, section, _label in SECTIONS:
        for ident, item in (routing.get(section) or {}).items():
            ref = f"{kind}:{ident}"
            if ref == exclude:
                continue
            name = (item or {}).get("name") or ident if isinstance(item, dict) else ident
            out.append((ref, f"{_kind_label(kind)}: {name}"))
    for e in doc.get("extensions") or []:
        out.append((f"voicemail:{e['number']}", _("voicemail of %(n)s", n=e["number"])))
    if menu_option:
        out.append(("parent", _("back to the menu before")))
        out.append(("repeat", _("this menu again")))
    out.append(("hangup", _("hang up")))
    return out


def describe(doc: dict[str, Any], ref: str | None) -> str:
    """A reference in the words of the select (the reference itself when the document has no such one)."""
    if not ref:
        return ""
    wanted = plain(ref)
    kind, _colon, ident = wanted.partition(":")
    if not _colon:
        if wanted == "hangup":
            return _("hang up")
        if wanted == "parent":
            return _("back to the menu before")
        if wanted == "repeat":
            return _("this menu again")
        for e in doc.get("extensions") or []:
            if str(e["number"]) == wanted:
                return _("extension %(n)s (%(name)s)", n=e["number"], name=e.get("name") or "")
        return str(ref)
    section = _SECTION_OF.get(kind)
    item = ((doc.get("routing") or {}).get(section) or {}).get(ident) if section else None
    if item is not None:
        name = item.get("name") or ident if isinstance(item, dict) else ident
        return f"{_kind_label(kind)}: {name}"
    if kind == "voicemail" and any(str(e["number"]) == ident for e in doc.get("extensions") or []):
        return _("voicemail of %(n)s", n=ident)
    return str(ref)


def plain(ref: str | None) -> str:
    """A reference as the choices write it: the saved routing writes an extension as `ext:101`."""
    text = str(ref or "")
    return text[4:] if text.startswith("ext:") else text
