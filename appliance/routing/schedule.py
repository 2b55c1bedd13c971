"""Schedules (time switches): is it open now, when does that next change, overrides.

Opening hours are wall-clock times in the schedule's timezone, so 09:00 is
09:00 in both winter (UTC+2) and summer (UTC+3) time.  A range may cross
midnight ("22:00-06:00" on Friday runs into Saturday morning); it belongs to
the day it starts on, so a holiday on Friday also cancels its night range.
A holiday closes its whole local date.

Overrides follow FreePBX time conditions: a temporary override holds until
the schedule's next boundary (the next moment its own state would change)
after the override was set; a permanent one until it is removed.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from .facts import Override
from .model import WEEKDAYS, Hours, Schedule

DAY = 1440
WEEK = 7 * DAY
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_label(when: datetime, tz: str) -> str:
    """"Mon 20:15 Europe/Kyiv"."""
    local = when.astimezone(zone(tz))
    return f"{DAY_NAMES[local.weekday()]} {local:%H:%M} {tz}"


def minutes_label(m: int) -> str:
    return f"{m // 60:02d}:{m % 60:02d}"


class Clock:
    """A schedule compiled for fast questions."""

    def __init__(self, schedule: Schedule):
        self.schedule = schedule
        self.tz = zone(schedule.timezone)
        # Per weekday: (start, end, days_back) in minutes of that day.
        self.by_day: list[list[tuple[int, int, int]]] = [[] for _ in range(7)]
        for h in schedule.hours:
            self.by_day[h.day].append((h.start, min(h.end, DAY), 0))
            if h.end > DAY:
                self.by_day[(h.day + 1) % 7].append((0, h.end - DAY, 1))
        self.once: set[date] = set()
        self.yearly: set[tuple[int, int]] = set()
        for text in schedule.holidays:
            parts = [int(p) for p in text.split("-")]
            if len(parts) == 3:
                self.once.add(date(*parts))
            else:
                self.yearly.add((parts[0], parts[1]))

    def is_holiday(self, d: date) -> bool:
        return d in self.once or (d.month, d.day) in self.yearly

    def natural(self, when: datetime) -> bool:
        """Open by the hours and holidays alone."""
        local = when.astimezone(self.tz)
        d = local.date()
        if (self.once or self.yearly) and self.is_holiday(d):
            return False
        m = local.hour * 60 + local.minute
        for start, end, back in self.by_day[local.weekday()]:
            if start <= m < end:
                if back and (self.once or self.yearly) and self.is_holiday(d - timedelta(days=1)):
                    continue
                return True
        return False

    def next_boundary(self, after: datetime) -> datetime | None:
        return _next_boundary(self, after.astimezone(timezone.utc))

    def is_open(self, when: datetime, override: Override | None = None) -> tuple[bool, str]:
        """Open or not, and why ("hours", "temporary override", "permanent override")."""
        if override is not None:
            forced = override.state == "open"
            if override.permanent:
                return forced, "permanent override"
            since = override.since
            boundary = self.next_boundary(since) if since is not None else None
            if since is None or boundary is None or when < boundary:
                return forced, "temporary override"
        return self.natural(when), "hours"


@lru_cache(maxsize=1024)
def _next_boundary(clock: Clock, after: datetime) -> datetime | None:
    """The first moment after `after` when the natural state differs from now's.

    Candidates are the wall-clock starts and ends of ranges and every local
    midnight (holidays begin and end there); a year and a bit is searched so
    that a yearly holiday is found even in an always-open schedule.
    """
    state = clock.natural(after)
    local_day = after.astimezone(clock.tz).date()
    for offset in range(-1, 400):
        d = local_day + timedelta(days=offset)
        marks = {0}
        for start, end, _back in clock.by_day[d.weekday()]:
            marks.add(start)
            marks.add(end)
        instants = sorted(_instant(clock, d, m) for m in marks)
        for inst in instants:
            if inst > after and clock.natural(inst) != state:
                return inst
    return None


def _instant(clock: Clock, d: date, minute: int) -> datetime:
    base = datetime.combine(d, time(0), tzinfo=clock.tz) if minute < DAY else \
        datetime.combine(d + timedelta(days=1), time(0), tzinfo=clock.tz)
    minute %= DAY
    local = base.replace(hour=minute // 60, minute=minute % 60)
    return local.astimezone(timezone.utc)


def uncovered(hours: tuple[Hours, ...]) -> tuple[int, int] | None:
    """The first stretch of the week no range covers, as minutes of the week
    (end may pass the week's end, wrapping to Monday), or None if 24/7."""
    covered = [False] * WEEK
    for h in hours:
        base = h.day * DAY
        for m in range(base + h.start, base + h.end):
            covered[m % WEEK] = True
    if all(covered):
        return None
    first = covered.index(False)
    start, steps = first, 0
    while not covered[(start - 1) % WEEK] and steps < WEEK:
        start -= 1
        steps += 1
    end = first
    while not covered[end % WEEK] and end - start < WEEK:
        end += 1
    return start % WEEK, start % WEEK + (end - start)


def week_label(m: int) -> str:
    m %= WEEK
    return f"{DAY_NAMES[m // DAY]} {minutes_label(m % DAY)}"


def parse_range(text: str) -> tuple[int, int]:
    """"09:00-18:00" -> (540, 1080); "22:00-06:00" -> (1320, 1800) (crosses midnight)."""
    a, sep, b = text.replace(" ", "").replace("–", "-").partition("-")
    if not sep:
        raise ValueError(f"'{text}' is not a range like 09:00-18:00")
    start, end = parse_clock(a), parse_clock(b)
    if start >= DAY:
        raise ValueError(f"'{text}' starts at 24:00")
    if end <= start:
        end += DAY
    if end - start > DAY:
        raise ValueError(f"'{text}' is longer than a day")
    return start, end


def parse_clock(text: str) -> int:
    h, sep, m = text.partition(":")
    if not sep or not h.isdigit() or not m.isdigit() or len(m) != 2:
        raise ValueError(f"'{text}' is not a time like 09:30")
    minutes = int(h) * 60 + int(m)
    if int(m) >= 60 or minutes > DAY:
        raise ValueError(f"'{text}' is not a time of day")
    return minutes


def parse_days(text: str) -> tuple[int, ...]:
    """"mon", "mon-fri", "sat,sun", "fri-mon" -> weekday numbers (0 = Monday)."""
    out: list[int] = []
    for part in text.lower().replace(" ", "").split(","):
        a, sep, b = part.partition("-")
        if a not in WEEKDAYS or (sep and b not in WEEKDAYS):
            raise ValueError(f"'{text}' is not a day or days like mon-fri")
        i, j = WEEKDAYS.index(a), WEEKDAYS.index(b if sep else a)
        while True:
            out.append(i)
            if i == j:
                break
            i = (i + 1) % 7
    return tuple(dict.fromkeys(out))


def format_days(days: tuple[int, ...]) -> str:
    return ",".join(WEEKDAYS[d] for d in days)
