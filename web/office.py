"""The configuration as the panel changes it: one document, checked whole, saved as a version.

Every page edits a copy of the whole document `pbx config export` writes and
hands it to `save`, which checks it with the validator `pbx config import`
uses (`parse_document`), writes it in one transaction together with a new
version (the whole exported file, who and what), and tells the running
appliance to read it again, so the next call follows it.  A refusal is a
`ConfigError` whose path names the field; `field_errors` puts its message
next to that field of the form that made the change.
"""

from __future__ import annotations

import copy
import difflib
from datetime import datetime, timezone
from typing import Any, Iterable

from appliance.configfile import (  # noqa: F401  (dump_document: a document as the file writes it)
    ConfigFileError,
    apply_config,
    dump_document,
    export_config,
    export_document,
    load_text,
    parse_document,
)
from appliance.errors import ConfigError, format_path
from appliance.store import Store
from appliance.store.panel import PanelTables

BEFORE_FIRST_CHANGE = "as it was before the panel's first change"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def document(store: Store) -> dict[str, Any]:
    """A copy of the whole configuration a page may change and hand to save() (built afresh from the store)."""
    return export_document(store)


def check(doc: dict[str, Any]) -> None:
    """Raise ConfigError (with the path of the problem) when the document cannot be saved."""
    parse_document(copy.deepcopy(doc))


def save(store: Store, doc: dict[str, Any], who: str, summary: str) -> int:
    """Check and save the whole document as a new version; returns its id.  Nothing is written on refusal."""
    cfg = parse_document(copy.deepcopy(doc))
    versions = PanelTables(store)
    with store.transaction():
        if versions.latest_version() is None:
            versions.add_version(now_iso(), "appliance", BEFORE_FIRST_CHANGE, export_config(store))
        apply_config(store, cfg)
        vid = versions.add_version(now_iso(), who, summary, export_config(store))
    return vid


def restore_text(store: Store, text: str, who: str, summary: str, restored_from: int | None = None) -> int:
    """Replace the configuration with a whole file's text (a version or an uploaded backup), all or nothing.

    Raises ConfigFileError (with the line) when the file cannot be imported."""
    cfg = load_text(text)
    versions = PanelTables(store)
    with store.transaction():
        if versions.latest_version() is None:
            versions.add_version(now_iso(), "appliance", BEFORE_FIRST_CHANGE, export_config(store))
        apply_config(store, cfg)
        return versions.add_version(now_iso(), who, summary, export_config(store), restored_from)


def restore_version(store: Store, version_id: int, who: str, summary: str | None = None) -> int:
    v = PanelTables(store).version(version_id)
    if v is None:
        raise ConfigFileError(None, f"there is no version {version_id}")
    return restore_text(store, v["document"], who, summary or f"restored version {version_id}",
                        restored_from=version_id)


def diff(before: str, after: str) -> list[str]:
    """A readable diff of two exported files: the changed lines with three of context, no file header."""
    lines = difflib.unified_diff(_body(before), _body(after), lineterm="", n=3)
    return [line for line in lines if not line.startswith(("---", "+++"))]


def _body(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#")]


def where(err: ConfigError) -> str:
    return format_path(err.path)


def field_for(err: ConfigError, prefix: tuple, fields: Iterable[str], aliases: dict[str, str] | None = None) -> str | None:
    """The form field a refusal belongs to: the first key after `prefix` in its path that is a field
    (or an alias of one); None when the problem lies outside what the form edits."""
    path = err.path
    if tuple(path[:len(prefix)]) != tuple(prefix):
        return None
    names, aliases = set(fields), aliases or {}
    for part in path[len(prefix):]:
        if isinstance(part, str):
            name = aliases.get(part, part)
            if name in names:
                return name
    return None


def put_error(form: Any, err: ConfigError, prefix: tuple, aliases: dict[str, str] | None = None) -> None:
    """Show a refusal next to its field of a Flask-WTF form; else among the form's own errors."""
    fields = [f.name for f in form]
    name = field_for(err, prefix, fields, aliases)
    if name is not None:
        getattr(form, name).errors = [*getattr(form, name).errors, err.message]
    else:
        form.form_errors.append(str(err))
