"""Reading a configuration file for `pbx trace --config` (and tests).

The loader reads YAML the way the appliance's configuration loader does: a
plain scalar of decimal digits without a leading zero is an int (extension
101), true/false are bools, and everything else is text, so phone numbers
such as 0671234567 and times such as 09:00 stay exactly as written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..errors import ConfigError
from .facts import Contact, contacts_by_number


class Loader(yaml.SafeLoader):
    """SafeLoader with only null, true/false and plain decimal ints resolved."""


Loader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] == "tag:yaml.org,2002:null"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                             list("tTfF"))
Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^(?:0|[1-9][0-9]*)$"), list("0123456789"))


def load_text(text: str) -> Any:
    return yaml.load(text, Loader=Loader)  # noqa: S506 - Loader is a SafeLoader


def load_file(path: str | Path) -> dict[str, Any]:
    doc = load_text(Path(path).read_text(encoding="utf-8"))
    if not isinstance(doc, Mapping):
        raise ConfigError("the configuration file should be a mapping", ())
    return dict(doc)


def extensions_of(doc: Mapping[str, Any]) -> dict[str, str]:
    """Extensions as number -> name, from a list of {number, name} or a mapping."""
    raw = doc.get("extensions") or []
    if isinstance(raw, Mapping):
        return {str(k): str((v or {}).get("name", "") if isinstance(v, Mapping) else (v or ""))
                for k, v in raw.items()}
    out = {}
    for i, row in enumerate(raw):
        if not isinstance(row, Mapping) or row.get("number") is None:
            raise ConfigError("an extension is {number, name}", ("extensions", i))
        out[str(row["number"])] = str(row.get("name") or "")
    return out


def contacts_of(doc: Mapping[str, Any]) -> dict[str, Contact]:
    """Contacts by normalised number, from a list of {number(s), name, manager, vip, company}."""
    rows = []
    for row in doc.get("contacts") or []:
        if not isinstance(row, Mapping):
            continue
        numbers = row.get("numbers", row.get("number"))
        numbers = numbers if isinstance(numbers, list) else [numbers]
        c = Contact(str(row.get("name") or ""), str(row["manager"]) if row.get("manager") is not None else None,
                    row.get("vip") is True, str(row.get("company") or ""))
        rows.extend((str(n), c) for n in numbers if n is not None)
    return contacts_by_number(rows)
