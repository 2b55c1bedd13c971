"""How a night switch's state is saved: the `night` table's row, and the copy routing reads.

Plain data and no imports, so the store can use it without loading routing.
"""

from __future__ import annotations

from typing import Iterable, Mapping, TypedDict

COLUMNS = ("switch", "mode", "how", "since", "until", "by")


class NightRow(TypedDict):
    switch: str
    mode: str            # "day" or "night"
    how: str             # "auto", "temporary" or "permanent"
    since: str | None    # ISO time, UTC
    until: str | None    # ISO time, UTC; None: does not change by itself
    by: str              # who or what set it: "button", "extension 102", "schedule"...


def routing_copy(rows: Iterable[Mapping]) -> dict[str, dict]:
    """The hand-set states as routing reads them (`routing_state` key "night", read by
    routing.facts.saved_switches): switch id -> {"state", "permanent", "since"}; a
    switch in automatic mode is left out."""
    return {str(r["switch"]): {"state": r["mode"], "permanent": r["how"] == "permanent", "since": r["since"]}
            for r in rows if r["how"] != "auto"}
