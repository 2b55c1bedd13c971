"""A small office's routing with two night switches, for the night mode tests."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

KYIV = ZoneInfo("Europe/Kyiv")

# Kyiv shop: night outside Mon-Fri 09:00-18:00; the warehouse's switch follows no schedule.
ROUTING = {
    "routes": [{"name": "Shop", "numbers": ["0441234567"], "to": "night:kyiv"},
               {"name": "Warehouse", "numbers": ["0447654321"], "to": "night:warehouse"}],
    "schedules": {"hours": {"name": "Office hours", "hours": {"mon-fri": "09:00-18:00"}}},
    "night": {
        "kyiv": {"name": "Kyiv shop", "schedule": "hours", "day": "group:office", "night": "voicemail:office"},
        "warehouse": {"name": "Warehouse", "day": "group:office", "night": "voicemail:office"},
    },
    "groups": {"office": {"name": "Office", "members": ["101", "102"], "on_fail": "voicemail:office"}},
    "voicemail": {"office": {"name": "Office"}},
    "unmatched": "hangup",
}
EXTENSIONS = {"101": "Front desk", "102": "Manager"}

YAML = """\
version: 1
timezone: Europe/Kyiv
extensions:
  - {number: "101", name: Front desk, password: front-desk-1}
  - {number: "102", name: Manager, password: manager-pass-2}
routing:
  routes:
    - {name: Shop, numbers: ["0441234567"], to: "night:kyiv"}
  schedules:
    hours: {name: Office hours, hours: {mon-fri: "09:00-18:00"}}
  night:
    kyiv: {name: Kyiv shop, schedule: hours, day: "group:office", night: "voicemail:office"}
  groups:
    office: {name: Office, members: ["101", "102"], on_fail: "voicemail:office"}
  voicemail:
    office: {name: Office}
  unmatched: hangup
"""


def kyiv(*args: int) -> datetime:
    """An aware time in Kyiv: kyiv(2025, 3, 10, 20, 15) is Monday 20:15."""
    return datetime(*args, tzinfo=KYIV)


def config():
    from appliance.routing.config import parse

    return parse(ROUTING, EXTENSIONS, timezone="Europe/Kyiv")


def switches():
    from appliance.night.state import switches_of

    return switches_of(config())
