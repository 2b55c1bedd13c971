"""The disk guard: recording stops below the free-space threshold and starts again when space is back;
the ready LED blinks fast meanwhile."""

from __future__ import annotations

from appliance.hw.lights import Box, fold, lights
from appliance.recording.disk import MB, DiskGuard, Usage, threshold

GB = 1024 * MB


class Card:
    def __init__(self, total: int, free: int):
        self.total, self.free = total, free

    def __call__(self, path) -> Usage:
        return Usage(self.total, self.total - self.free, self.free)


def test_the_larger_of_megabytes_and_percent_is_the_threshold():
    assert threshold(16 * GB, 500, 5) == 16 * GB * 5 // 100      # 819 MB
    assert threshold(4 * GB, 500, 5) == 500 * MB
    assert threshold(4 * GB, 0, 0) == 0


def test_recording_stops_below_the_threshold_and_resumes_with_a_margin(tmp_path):
    card = Card(4 * GB, 2 * GB)
    guard = DiskGuard(tmp_path / "recordings" / "not yet made", 500, 5, usage=card)
    r = guard.check()
    assert (r.allowed, r.changed) == (True, False)
    card.free = 499 * MB
    r = guard.check()
    assert (r.allowed, r.changed, r.threshold) == (False, True, 500 * MB)
    assert guard.check().changed is False
    card.free = 520 * MB  # above the line, but not by the margin: no flapping
    assert guard.check().allowed is False
    card.free = 600 * MB
    r = guard.check()
    assert (r.allowed, r.changed) == (True, True)
    guard.configure(10_000_000, 0)  # a threshold no card meets
    assert guard.check().allowed is False


def test_the_ready_led_blinks_fast_while_recording_is_stopped_for_the_disk():
    box = fold(Box(), {"kind": "ApplianceStarted"})
    assert lights(box)["ready"][0].name == "on"
    box = fold(box, {"kind": "RecordingStopped", "reason": "disk", "free_mb": 300})
    pattern, means = lights(box)["ready"]
    assert pattern.name == "fast" and "disk" in means
    box = fold(box, {"kind": "RecordingResumed", "free_mb": 900})
    assert lights(box)["ready"][0].name == "on"
