"""The strategies not covered in test_steps.py, observed on real legs: tiers, escalation, random, longest idle."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.engine.test_steps import ring_order

pytestmark = pytest.mark.sip


def hang_up(world, pid: int) -> None:
    world.provider.send(cmd="hangup", id=pid)
    world.engine.expect(kind="CallEnded")


def test_tiers_widen_and_nobody_stops_ringing(world):
    world.route("tiers")
    pid = world.ip_call()
    order = ring_order(world, 3, timeout=10)
    assert [o[0] for o in order] == ["101", "102", "103"]
    (_, t1, end1), (_, t2, end2), (_, t3, _) = order
    assert 1.5 < t2 - t1 < 3.0 and 1.5 < t3 - t2 < 3.0
    # Widening never takes the call away from the earlier tiers.
    assert end1 is None or end1 > t3
    assert end2 is None or end2 > t3
    hang_up(world, pid)


def test_escalation_rings_each_level_alone(world):
    world.route("escalation")
    pid = world.ip_call()
    order = ring_order(world, 3, timeout=10)
    assert [o[0] for o in order] == ["101", "102", "103"]
    for (_, t0, end0), (_, t1, _) in zip(order, order[1:]):
        assert end0 is not None and end0 <= t1 + 0.05, "a level still rang when the next began"
        assert 1.5 < t1 - t0 < 3.0
    hang_up(world, pid)


def test_random_rings_each_member_once_one_at_a_time(world):
    world.route("random_order")
    for _ in range(2):
        pid = world.ip_call()
        order = ring_order(world, 3, timeout=10)
        assert sorted(o[0] for o in order) == ["101", "102", "103"]
        for (_, _, end0), (_, t1, _) in zip(order, order[1:]):
            assert end0 is not None and end0 <= t1 + 0.05
        hang_up(world, pid)
        world.reset()


def test_longest_idle_rings_whoever_finished_a_call_longest_ago(world):
    now = datetime.now(timezone.utc)
    today = now.date().isoformat()
    ended = {"101": now - timedelta(minutes=5), "102": now - timedelta(hours=2), "103": now - timedelta(hours=1)}
    with world.store() as st:
        st.set_routing_state("presence", {ext: {"last_call_end": t.isoformat(), "calls_today": 1, "day": today}
                                          for ext, t in ended.items()})
    world.route("longest_idle")  # reloads what the engine knows
    pid = world.ip_call()
    order = ring_order(world, 3, timeout=10)
    assert [o[0] for o in order] == ["102", "103", "101"]
    hang_up(world, pid)
