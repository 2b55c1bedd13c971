"""Deadlines in working time (appliance.missed.workhours): nights, weekends, holidays, DST, the daily summary's moment."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from appliance.missed.workhours import deadline, overdue, summary_due, working_minutes
from appliance.routing.model import Hours, Schedule
from appliance.routing.schedule import Clock

KYIV = ZoneInfo("Europe/Kyiv")


def office(holidays: tuple[str, ...] = ()) -> Clock:
    """Mon-Fri 09:00-18:00 in Kyiv."""
    hours = tuple(Hours(day, 9 * 60, 18 * 60) for day in range(5))
    return Clock(Schedule("office", "Office", hours, None, None, holidays, "Europe/Kyiv"))


def kyiv(*args: int) -> datetime:
    return datetime(*args, tzinfo=KYIV)


def test_without_a_schedule_every_minute_counts():
    start = kyiv(2025, 3, 7, 23, 50)
    assert deadline(start, 60, None) == kyiv(2025, 3, 8, 0, 50)


def test_within_one_working_day():
    assert deadline(kyiv(2025, 3, 4, 10, 0), 90, office()) == kyiv(2025, 3, 4, 11, 30)


def test_a_deadline_crosses_a_night():
    # Tuesday 17:30 + 60 working minutes: 30 today, 30 on Wednesday from 09:00.
    assert deadline(kyiv(2025, 3, 4, 17, 30), 60, office()) == kyiv(2025, 3, 5, 9, 30)


def test_a_deadline_crosses_a_weekend():
    # Friday 17:30 + 60: Saturday and Sunday do not count.
    assert deadline(kyiv(2025, 3, 7, 17, 30), 60, office()) == kyiv(2025, 3, 10, 9, 30)


def test_a_case_opened_at_night_starts_counting_in_the_morning():
    assert deadline(kyiv(2025, 3, 8, 3, 0), 15, office()) == kyiv(2025, 3, 10, 9, 15)


def test_a_deadline_ending_exactly_at_closing_time_is_closing_time():
    assert deadline(kyiv(2025, 3, 4, 17, 0), 60, office()) == kyiv(2025, 3, 4, 18, 0)


def test_a_holiday_does_not_count():
    # Monday 10 March a holiday: Friday 17:30 + 60 lands on Tuesday 09:30.
    assert deadline(kyiv(2025, 3, 7, 17, 30), 60, office(("2025-03-10",))) == kyiv(2025, 3, 11, 9, 30)


def test_several_working_days():
    # 20 working hours from Thursday 12:00: 6 Thu + 9 Fri + 5 Mon -> Monday 14:00.
    assert deadline(kyiv(2025, 3, 6, 12, 0), 20 * 60, office()) == kyiv(2025, 3, 10, 14, 0)


def test_across_the_change_to_summer_time_wall_clock_hours_count():
    # Kyiv moves clocks forward on Sunday 30 March 2025; Friday 17:00 + 120 -> Monday 10:00 local.
    due = deadline(kyiv(2025, 3, 28, 17, 0), 120, office())
    assert due == kyiv(2025, 3, 31, 10, 0) and due.astimezone(KYIV).utcoffset().total_seconds() == 3 * 3600


def test_a_schedule_that_never_opens_has_no_deadline():
    never = Clock(Schedule("never", "Never", (), None, None, (), "Europe/Kyiv"))
    assert deadline(kyiv(2025, 3, 4, 10, 0), 30, never) is None
    assert not overdue(kyiv(2025, 3, 4, 10, 0), kyiv(2026, 1, 1, 0, 0), 30, never)


def test_working_minutes_between_two_moments():
    assert working_minutes(kyiv(2025, 3, 7, 17, 30), kyiv(2025, 3, 10, 9, 30), office()) == 60
    assert working_minutes(kyiv(2025, 3, 8, 10, 0), kyiv(2025, 3, 9, 10, 0), office()) == 0
    assert working_minutes(kyiv(2025, 3, 9, 10, 0), kyiv(2025, 3, 8, 10, 0), office()) == 0


@pytest.mark.parametrize("minutes", [1, 59, 60, 61, 540, 541, 2000])
def test_deadline_and_working_minutes_agree(minutes):
    start = kyiv(2025, 3, 7, 16, 45)
    assert working_minutes(start, deadline(start, minutes, office()), office()) == pytest.approx(minutes)


def test_overdue_is_from_the_deadline_on():
    opened = kyiv(2025, 3, 7, 17, 30)
    assert not overdue(opened, kyiv(2025, 3, 10, 9, 29), 60, office())
    assert overdue(opened, kyiv(2025, 3, 10, 9, 30), 60, office())


def test_the_daily_summary_is_due_once_a_day_from_its_time_in_the_office_zone():
    at = 9 * 60
    # 06:59 UTC is 08:59 in Kyiv (winter, UTC+2): not yet.
    assert summary_due(datetime(2025, 3, 4, 6, 59, tzinfo=timezone.utc), "Europe/Kyiv", at, None) is None
    assert summary_due(datetime(2025, 3, 4, 7, 0, tzinfo=timezone.utc), "Europe/Kyiv", at, None) == date(2025, 3, 4)
    assert summary_due(datetime(2025, 3, 4, 15, 0, tzinfo=timezone.utc), "Europe/Kyiv", at, "2025-03-04") is None
    # Late in the evening UTC is already the next day in Kyiv, before 09:00 there.
    assert summary_due(datetime(2025, 3, 4, 23, 0, tzinfo=timezone.utc), "Europe/Kyiv", at, "2025-03-04") is None
    assert summary_due(datetime(2025, 3, 5, 7, 30, tzinfo=timezone.utc), "Europe/Kyiv", at, "2025-03-04") == date(2025, 3, 5)
