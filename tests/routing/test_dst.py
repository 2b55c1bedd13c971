"""Schedules across both daylight saving changes in Europe/Kyiv.

Spring: 2025-03-30 03:00 EET becomes 04:00 EEST (01:00 UTC).
Autumn: 2025-10-26 04:00 EEST becomes 03:00 EET (01:00 UTC); 03:00-04:00 happens twice.
"""

from datetime import datetime, timedelta, timezone

from appliance.routing.facts import Override
from appliance.routing.model import Schedule
from appliance.routing.schedule import Clock, parse_range

UTC = timezone.utc


def clock(ranges: dict[int, str]) -> Clock:
    from appliance.routing.model import Hours
    hours = tuple(Hours(day, *parse_range(r)) for day, r in ranges.items())
    return Clock(Schedule("s", "S", hours, "ext:101", "hangup"))


def test_opening_hours_are_wall_clock_in_winter_and_summer():
    c = clock({0: "09:00-18:00"})
    # 06:30 UTC is 08:30 in winter (UTC+2) and 09:30 in summer (UTC+3).
    assert not c.natural(datetime(2025, 3, 24, 6, 30, tzinfo=UTC))
    assert c.natural(datetime(2025, 3, 31, 6, 30, tzinfo=UTC))
    # 15:30 UTC is 17:30 in winter, 18:30 in summer.
    assert c.natural(datetime(2025, 10, 27, 15, 30, tzinfo=UTC))
    assert not c.natural(datetime(2025, 10, 20, 15, 30, tzinfo=UTC))


def test_spring_forward_night_range_is_an_hour_shorter():
    c = clock({5: "22:00-06:00"})               # Saturday night into Sunday 2025-03-30
    start = datetime(2025, 3, 29, 20, 0, tzinfo=UTC)  # 22:00 EET
    assert c.natural(start)
    assert not c.natural(start - timedelta(minutes=1))
    end = c.next_boundary(start)
    assert end == datetime(2025, 3, 30, 3, 0, tzinfo=UTC)   # 06:00 EEST
    assert end - start == timedelta(hours=7)
    # 03:30 wall time does not exist that night; 01:30 UTC is 04:30 EEST and still inside.
    assert c.natural(datetime(2025, 3, 30, 1, 30, tzinfo=UTC))


def test_fall_back_night_range_is_an_hour_longer():
    c = clock({5: "22:00-06:00"})               # Saturday night into Sunday 2025-10-26
    start = datetime(2025, 10, 25, 19, 0, tzinfo=UTC)  # 22:00 EEST
    assert c.natural(start)
    end = c.next_boundary(start)
    assert end == datetime(2025, 10, 26, 4, 0, tzinfo=UTC)  # 06:00 EET
    assert end - start == timedelta(hours=9)
    # Both 03:30s (00:30 and 01:30 UTC) are inside.
    assert c.natural(datetime(2025, 10, 26, 0, 30, tzinfo=UTC))
    assert c.natural(datetime(2025, 10, 26, 1, 30, tzinfo=UTC))


def test_temporary_override_over_a_dst_change_ends_at_the_wall_clock_boundary():
    c = clock({0: "09:00-18:00", 4: "09:00-18:00"})
    # Forced open on Friday 2025-03-28 at 19:00 EET; the next boundary is Monday 09:00 EEST.
    since = datetime(2025, 3, 28, 17, 0, tzinfo=UTC)
    ov = Override("open", since=since)
    assert c.next_boundary(since) == datetime(2025, 3, 31, 6, 0, tzinfo=UTC)
    assert c.is_open(datetime(2025, 3, 30, 12, tzinfo=UTC), ov) == (True, "temporary override")
    # From Monday 09:00 the hours rule again (open anyway), and at 18:00 EEST (15:00 UTC) it closes.
    assert c.is_open(datetime(2025, 3, 31, 15, 30, tzinfo=UTC), ov) == (False, "hours")


def test_boundary_on_the_repeated_hour():
    c = clock({6: "03:30-05:00"})               # Sunday 2025-10-26, 03:30 happens twice
    before = datetime(2025, 10, 25, 23, 0, tzinfo=UTC)    # 02:00 EEST
    first = c.next_boundary(before)
    assert first == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)  # the first 03:30 (EEST)
    assert c.natural(first) and not c.natural(first - timedelta(minutes=1))
