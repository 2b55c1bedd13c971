"""Deadlines counted in working time, and the daily summary's moment: pure functions, the time passed in.

A case's deadline is `minutes` of working time after it opened: the minutes
while the chosen schedule is open (routing's `Clock.natural`: its hours and
holidays, in its time zone), skipping nights, weekends and holidays.  Without
a schedule every minute counts.  Overrides and night switches are left out on
purpose: a deadline follows the office's hours, not who pressed the button.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from appliance.routing.schedule import Clock

# A deadline is at most a week of working time; a schedule open one minute a
# week still ends the walk well within this many openings.
MAX_STEPS = 10_000


def deadline(start: datetime, minutes: float, clock: Clock | None) -> datetime | None:
    """The moment `minutes` of working time after `start` (aware); None when the schedule never opens again."""
    left = timedelta(minutes=minutes)
    if clock is None:
        return start + left
    at = start
    for _ in range(MAX_STEPS):
        boundary = clock.next_boundary(at)
        if clock.natural(at):
            if boundary is None or at + left <= boundary:
                return at + left
            left -= boundary - at
        elif boundary is None:
            return None
        at = boundary
    return None


def working_minutes(start: datetime, end: datetime, clock: Clock | None) -> float:
    """Minutes of working time from `start` to `end` (0 when end is not after start)."""
    if end <= start:
        return 0.0
    if clock is None:
        return (end - start).total_seconds() / 60
    total, at = timedelta(0), start
    for _ in range(MAX_STEPS):
        boundary = clock.next_boundary(at)
        stop = end if boundary is None or boundary > end else boundary
        if clock.natural(at):
            total += stop - at
        if stop >= end:
            break
        at = stop
    return total.total_seconds() / 60


def overdue(opened_at: datetime, now: datetime, minutes: float, clock: Clock | None) -> bool:
    due = deadline(opened_at, minutes, clock)
    return due is not None and now >= due


def summary_due(now: datetime, tz: str, at_minutes: int, last_sent: str | None) -> date | None:
    """The office-local date whose daily summary is due at `now`, None when none is.

    The summary of a day is due from `at_minutes` past local midnight until the
    day ends, once: an appliance that was off at that time sends it when it
    starts again the same day."""
    local = now.astimezone(ZoneInfo(tz))
    if local.time() < time(at_minutes // 60, at_minutes % 60):
        return None
    today = local.date()
    return None if last_sent == today.isoformat() else today


def local_datetime(at: datetime, tz: str) -> datetime:
    return at.astimezone(ZoneInfo(tz))
