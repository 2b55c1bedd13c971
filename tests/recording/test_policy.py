"""Which recording policy applies to a call: the most specific target that asks for recording."""

from __future__ import annotations

import pytest

from appliance.recording.config import Settings
from appliance.recording.policy import NOTHING, Choice, Policy, Rule, choose, office_extension, place_of

A, N, D = Rule(Policy.ALWAYS), Rule(Policy.NEVER), Rule(Policy.ON_DEMAND)


@pytest.mark.parametrize("rules, want", [
    ({}, NOTHING),
    ({"trunk:prov": A}, Choice(Policy.ALWAYS, "trunk:prov")),
    ({"trunk:prov": A, "group:sales": D}, Choice(Policy.ON_DEMAND, "group:sales")),
    ({"trunk:prov": A, "group:sales": D, "ext:102": A}, Choice(Policy.ALWAYS, "ext:102")),
    # never asks for nothing: a less specific target that records still applies
    ({"trunk:prov": A, "ext:102": N}, Choice(Policy.ALWAYS, "trunk:prov")),
    ({"group:sales": D, "ext:102": N}, Choice(Policy.ON_DEMAND, "group:sales")),
    ({"trunk:prov": N, "group:sales": N, "ext:102": N}, NOTHING),
    # rules for other targets do not apply
    ({"trunk:other": A, "group:support": A, "ext:101": A, "queue:sales": A}, NOTHING),
])
def test_the_most_specific_target_asking_for_recording_wins(rules, want):
    assert choose(rules, trunk="prov", place="group:sales", extension="102") == want


def test_a_queue_sits_where_a_group_does_and_announce_follows_the_rule():
    rules = {"trunk:prov": Rule(Policy.ALWAYS, announce=False), "queue:support": Rule(Policy.ALWAYS, announce=True)}
    assert choose(rules, "prov", "queue:support", "101") == Choice(Policy.ALWAYS, "queue:support", True)
    assert choose(rules, "prov", "", "101") == Choice(Policy.ALWAYS, "trunk:prov", False)


def test_an_internal_call_has_no_trunk_and_no_place():
    assert choose({"ext:101": D}, extension="101") == Choice(Policy.ON_DEMAND, "ext:101")
    assert choose({"trunk:prov": A}, extension="101") == NOTHING
    assert not NOTHING.records and Choice(Policy.ON_DEMAND).records


def test_the_place_is_the_last_group_or_queue_the_path_went_to():
    path = [{"kind": "step", "step": "menu", "dest": "menu:main"},
            {"kind": "step", "step": "ring", "dest": "group:sales"},
            {"kind": "leg", "target": "101"},
            {"kind": "step", "step": "queue", "dest": "queue:support"},
            {"kind": "step", "step": "play", "dest": "announcement:closed"},
            {"kind": "answered", "by": "102"}]
    assert place_of(path) == "queue:support"
    assert place_of(path[:3]) == "group:sales"
    assert place_of([]) == ""


def test_the_office_extension_is_who_answered_else_who_placed_the_call():
    assert office_extension("102", "", ["101", "102"]) == "102"
    assert office_extension("+380671112233", "101", ["101", "102"]) == "101"
    assert office_extension("", "", ["101"]) == ""


def test_settings_read_the_stored_section_with_defaults():
    s = Settings.from_setting({"policies": {"trunk:prov": "always", "group:sales": {"policy": "on_demand"},
                                            "ext:101": {"policy": "always", "announce": False}},
                               "announce": True, "retention_days": {"on_demand": 365}})
    assert s.rules == {"trunk:prov": Rule(Policy.ALWAYS, True), "group:sales": Rule(Policy.ON_DEMAND, True),
                       "ext:101": Rule(Policy.ALWAYS, False)}
    assert s.retention_days == {"always": 90, "on_demand": 365}
    assert (s.toggle_code, s.announcement, s.min_free_mb, s.min_free_percent) == ("*1", "recording-notice", 500, 5)
    assert Settings.from_setting(None).rules == {}
