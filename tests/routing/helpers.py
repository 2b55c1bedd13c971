"""Small builders shared by the routing tests."""

from __future__ import annotations

import json
import random
from datetime import datetime
from pathlib import Path
from typing import Mapping
from zoneinfo import ZoneInfo

from appliance.configfile import ParsedConfig, load_text
from appliance.routing import config
from appliance.routing.facts import Call, Facts, State
from appliance.routing.router import Router

KYIV = ZoneInfo("Europe/Kyiv")
EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
EXTS = {str(n): f"Desk {n}" for n in (100, 101, 102, 103, 104, 105, 201, 202, 300)}


def router(section: dict, exts: dict | None = None) -> Router:
    return Router(config.parse(section, exts or EXTS))


def in_file(routing: str, extensions: Mapping[str, str] = EXTS) -> ParsedConfig:
    """A `routing:` section's YAML inside a whole configuration file with these extensions,
    read by the loader `pbx config import` uses (so `.routing` is the canonical section)."""
    lines = ["version: 1", "extensions:"]
    lines += [f"  - {{number: {n}, name: {json.dumps(name)}, password: change-me-{n}x}}" for n, name in extensions.items()]
    lines += ["routing:", *("  " + line for line in routing.splitlines())]
    return load_text("\n".join(lines) + "\n")


def at(y: int, mo: int, d: int, h: int = 12, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=KYIV)


# 2025-03-10 is a Monday.
MONDAY_NOON = at(2025, 3, 10, 12)


def facts(caller: str = "+380671234567", dialled: str = "+380441234567", when: datetime = MONDAY_NOON,
          trunk: str = "", seed: int = 0) -> Facts:
    return Facts(Call(caller, dialled, trunk), when, random.Random(seed))


def simple(to: str, **sections) -> dict:
    """A section with one catch-all route to `to`."""
    return {"routes": [{"name": "All", "to": to}], **sections}


EMPTY = State()
