"""How long recordings are kept: which ones are past their policy's days (pure), and the clean-up.

A recording is kept `retention_days[policy]` days from the start of its call; the clean-up (the
encoder's worker runs it when the engine starts and once a day) deletes the older files and clears
their links in the call records.  The record itself stays: only the recording goes.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Mapping

from appliance.store import Store
from appliance.store.recordings import Linked, Recordings

from .config import DEFAULT_RETENTION

log = logging.getLogger("appliance.recording")


def _started(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def expired(recordings: Iterable[Linked], now: datetime, days: Mapping[str, int]) -> list[Linked]:
    """The recordings whose call started more than their policy's days before `now`."""
    out = []
    for r in recordings:
        started = _started(r.started_at)
        keep = timedelta(days=int(days.get(r.policy, DEFAULT_RETENTION)))
        if started is not None and now - started > keep:
            out.append(r)
    return out


def inside(folder: Path, file: str) -> Path | None:
    """The path of a linked file, only when it lies inside the recordings folder."""
    root = Path(folder).resolve()
    path = (root / file).resolve()
    return path if path.is_relative_to(root) and path != root else None


def clean_up(store: Store, folder: Path, now: datetime, days: Mapping[str, int]) -> int:
    """Delete the recordings past their days and clear their links; how many went."""
    recordings = Recordings(store)
    old = expired(recordings.linked(), now, days)
    for r in old:
        path = inside(folder, r.file)
        if path is None:
            continue
        path.unlink(missing_ok=True)
        _prune(path.parent, Path(folder).resolve())
    recordings.unlink(r.call_id for r in old)
    if old:
        log.info("deleted %d recordings past their retention", len(old))
    return len(old)


def _prune(folder: Path, root: Path) -> None:
    """Remove the day, month and year folders the deletion left empty."""
    while folder != root and folder.is_relative_to(root):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
