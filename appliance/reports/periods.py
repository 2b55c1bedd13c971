"""A report's date range: office days in the office's time zone, as the UTC times the records hold.

The offset from UTC changes with daylight saving (twice a year in Kyiv), so
a range is cut into the stretches where one offset holds (`shifts`), which the
store applies to each record's time in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

MAX_DAYS = 3 * 366   # a longer range is refused: a report reads every record in it


class PeriodError(ValueError):
    """A range that cannot be reported on (the last day before the first, too long)."""


def utc_iso(moment: datetime) -> str:
    """As the records write times: UTC, milliseconds, with the offset."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Period:
    first: date
    last: date
    tz: str

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise PeriodError("the last day comes before the first")
        if (self.last - self.first).days + 1 > MAX_DAYS:
            raise PeriodError(f"a report covers at most {MAX_DAYS} days")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), self.zone)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(0), self.zone)

    @property
    def start_utc(self) -> str:
        return utc_iso(self.start)

    @property
    def end_utc(self) -> str:
        return utc_iso(self.end)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    def weekdays(self) -> dict[int, int]:
        """How many of each weekday (0 = Monday) the range holds."""
        out = {d: 0 for d in range(7)}
        for day in self.days():
            out[day.weekday()] += 1
        return out

    def local_hour(self, utc_hour: str) -> str:
        """'2025-03-03T08' (a UTC hour as the records write it) -> '2025-03-03 10', the office's hour."""
        at = datetime.fromisoformat(utc_hour + ":00:00+00:00").astimezone(self.zone)
        return at.strftime("%Y-%m-%d %H")

    def shifts(self) -> tuple[tuple[str | None, int], ...]:
        """(until, seconds east of UTC) for each stretch of one offset, in order; the last until is None."""
        zone = self.zone
        start, end = self.start.astimezone(timezone.utc), self.end.astimezone(timezone.utc)

        def offset(at: datetime) -> int:
            return int(at.astimezone(zone).utcoffset().total_seconds())

        out: list[tuple[str | None, int]] = []
        current = offset(start)
        at = start
        step = timedelta(hours=6)   # offsets change at most twice a year, never twice within hours
        while at < end:
            nxt = min(at + step, end)
            if offset(nxt) != current:
                lo, hi = at, nxt            # the change lies in (lo, hi]: find its second
                while hi - lo > timedelta(seconds=1):
                    mid = lo + (hi - lo) / 2
                    if offset(mid) == current:
                        lo = mid
                    else:
                        hi = mid
                hi = hi.replace(microsecond=0)
                out.append((utc_iso(hi), current))
                current = offset(hi)
            at = nxt
        out.append((None, current))
        return tuple(out)

    @property
    def start_at(self) -> int:
        """The range's start in epoch seconds (as the sums per office hour keep their hours)."""
        return int(self.start.timestamp())

    @property
    def end_at(self) -> int:
        return int(self.end.timestamp())

    def offsets(self) -> tuple[tuple[int | None, int], ...]:
        """`shifts` with each until in epoch seconds."""
        return tuple((None if until is None else int(datetime.fromisoformat(until).timestamp()), seconds)
                     for until, seconds in self.shifts())
