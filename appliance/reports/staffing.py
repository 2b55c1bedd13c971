"""Staffing advice: agents needed per hour by Erlang C, against the people who really answered.

For each weekday and hour, the measured call rate is the calls offered in
that hour on that weekday over the range, divided by how many of that weekday
the range holds; the handle time is the average talk time of the answered
calls (the hour's own when it has answered calls, else the whole range's).
"You had" is how many different people answered in that hour, on average
over those days.  Neighbouring hours that need the same number of people
and had the same are told as one span ("Mondays 10-12").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from appliance.reports.erlang import agents_needed
from appliance.reports.figures import Tally


@dataclass(frozen=True)
class Target:
    share: float = 0.8        # of the calls offered ...
    within_s: float = 20.0    # ... answered within this many seconds


@dataclass(frozen=True)
class Hour:
    weekday: int | None       # 0 = Monday; None: every day of the range
    hour: int
    calls_per_hour: float
    aht_s: float
    needed: int
    had: float


@dataclass(frozen=True)
class Span:
    weekday: int | None
    first_hour: int
    end_hour: int             # exclusive: 10-12 is 10:00 to 12:00
    needed: int
    had: float

    @property
    def short_of(self) -> int:
        return self.needed - round(self.had)


def hours(cells: Mapping[tuple[int | None, int], Tally], had: Mapping[tuple[int | None, int], int], aht_all: float,
          days: Mapping[int | None, int], target: Target) -> list[Hour]:
    """Each (weekday, hour) cell with calls or people, in order: `cells` the calls of each cell, `had` how
    many different people answered in each of its hours, added up over its days; weekday None: every day of
    the range together.  `days`: how many of each weekday the range holds (key None: all its days);
    `aht_all` the range's average talk, for cells with no answered call."""
    out = []
    for cell in sorted(set(cells) | set(had), key=lambda c: (-1 if c[0] is None else c[0], c[1])):
        t = cells.get(cell, Tally())
        n_days = days.get(cell[0], 0) or 1
        rate = t.offered / n_days
        aht = t.avg_talk or aht_all
        need = agents_needed(rate, aht, target.share, target.within_s) if rate and aht else 0
        out.append(Hour(cell[0], cell[1], round(rate, 2), round(aht, 1), need, round(had.get(cell, 0) / n_days, 1)))
    return out


def spans(cells: list[Hour]) -> list[Span]:
    """Neighbouring hours of one weekday with the same need and the same people, joined."""
    out: list[Span] = []
    for h in cells:
        if h.needed == 0 and h.had == 0:
            continue
        last = out[-1] if out else None
        if (last and last.weekday == h.weekday and last.end_hour == h.hour and last.needed == h.needed
                and round(last.had) == round(h.had)):
            out[-1] = Span(h.weekday, last.first_hour, h.hour + 1, h.needed, last.had)
        else:
            out.append(Span(h.weekday, h.hour, h.hour + 1, h.needed, h.had))
    return out


WEEKDAYS = ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays")


def sentence(span: Span) -> str:
    """The advice in plain English (the panel words it in the owner's language)."""
    when = WEEKDAYS[span.weekday] if span.weekday is not None else "Every day"
    people = "person" if span.needed == 1 else "people"
    return (f"{when} {span.first_hour}\u2013{span.end_hour} need {span.needed} {people}; "
            f"you had {span.had:g}")
