"""Where a call can go, as the choices of a select field on the routing pages.

The values are the references the routing section uses (`101`, `group:sales`,
`voicemail:101`, `hangup`); the labels say them in words.  The list is made
from the document a page edits, so a destination added on one page is
offered on the next.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

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


def _kind_label(kind: str) -> str:
    return {
        "group": _("group"), "queue": _("queue"), "menu": _("IVR menu"), "schedule": _("schedule"),
        "night": _("night switch"), "announcement": _("announcement"), "external": _("external number"),
        "webhook": _("webhook"), "manager": _("personal manager"), "duty": _("duty roster"),
        "voicemail": _("voicemail"),
    }[kind]


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
    for value, words in choices(doc, menu_option=True):
        if value == wanted:
            return words
    return str(ref)


def plain(ref: str | None) -> str:
    """A reference as the choices write it: the saved routing writes an extension as `ext:101`."""
    text = str(ref or "")
    return text[4:] if text.startswith("ext:") else text
