"""The table of destination kinds: every part that depends on a kind reads the same row."""

import dataclasses
import typing

from appliance.routing import config, kinds
from appliance.routing.facts import Contact, State
from appliance.routing.model import RoutingConfig
from appliance.routing.steps import Outcome, Step

from .helpers import EXTS, facts, router, simple

SECTIONS = {
    "timezone": "Europe/Kyiv",
    "routes": [{"name": "All", "to": "schedule:hours"}],
    "schedules": {"hours": {"name": "Hours", "hours": {"mon-sun": "00:00-24:00"}, "open": "night:office"}},
    "night": {"office": {"name": "Office", "day": "menu:main", "night": "manager:personal"}},
    "menus": {"main": {"name": "Main", "prompt": "main", "on_fail": "group:sales",
                       "options": {"1": "queue:support", "2": "webhook:crm", "3": "parent"}}},
    "groups": {"sales": {"name": "Sales", "members": [101], "on_fail": "duty:nights"}},
    "queues": {"support": {"name": "Support", "members": [102], "on_fail": "voicemail:common"}},
    "webhooks": {"crm": {"name": "CRM", "url": "http://crm.example/route", "fallback": "external:boss"}},
    "externals": {"boss": {"name": "Boss", "number": "+380671110001", "on_fail": "announcement:closed"}},
    "managers": {"personal": {"name": "Personal manager", "next": "hangup"}},
    "duty": {"nights": {"name": "Nights", "nobody": "hangup", "on_fail": "voicemail:101",
                        "roster": [{"weekdays": "mon-sun", "number": "+380671110002"}]}},
    "announcements": {"closed": {"name": "Closed", "prompt": "closed", "then": "hangup"}},
    "voicemail": {"common": {"name": "Common"}},
    "branches": {"shop2": {"name": "Shop 2", "on_fail": "hangup"}},
}


def test_every_section_is_a_kind_the_configuration_keeps():
    fields = {f.name for f in dataclasses.fields(RoutingConfig)}
    assert set(kinds.SECTIONS) <= fields
    assert set(kinds.SECTIONS) == set(SECTIONS) - {"timezone", "routes"}
    assert config.TOP_KEYS[-len(kinds.SECTIONS):] == kinds.SECTIONS


def test_the_router_has_a_handler_for_every_kind_and_every_step():
    r = router(SECTIONS)
    assert set(r._handlers) == set(kinds.KINDS)
    assert set(r._after) == set(typing.get_args(Step))


def test_words_for_each_kind():
    c = config.parse(SECTIONS, EXTS)
    words = {ref: kinds.describe(c, ref) for ref in (
        "ext:101", "group:sales", "queue:support", "menu:main", "schedule:hours", "night:office",
        "announcement:closed", "voicemail:common", "voicemail:101", "voicemail:*", "external:boss",
        "number:+380671110003", "webhook:crm", "manager:personal", "duty:nights", "hangup", "parent", "repeat")}
    assert words == {
        "ext:101": "extension 101 (Desk 101)", "group:sales": "group 'Sales'", "queue:support": "queue 'Support'",
        "menu:main": "menu 'Main'", "schedule:hours": "schedule 'Hours'", "night:office": "night switch 'Office'",
        "announcement:closed": "announcement 'Closed'", "voicemail:common": "voicemail 'Common'",
        "voicemail:101": "voicemail 101", "voicemail:*": "own voicemail", "external:boss": "external 'Boss'",
        "number:+380671110003": "+380671110003", "webhook:crm": "webhook 'CRM'",
        "manager:personal": "personal manager 'Personal manager'", "duty:nights": "duty roster 'Nights'",
        "hangup": "hang up", "parent": "the menu before", "repeat": "the same menu",
    }


def test_what_exists():
    c = config.parse(SECTIONS, EXTS)
    assert all(kinds.exists(c, ref) for ref in (
        "ext:101", "group:sales", "voicemail:common", "voicemail:102", "hangup", "duty:nights"))
    assert not any(kinds.exists(c, ref) for ref in (
        "ext:999", "group:nope", "voicemail:999", "voicemail:*", "number:+380671110003", "parent", "salse:x"))


def test_edges_follow_the_configuration():
    c = config.parse(SECTIONS, EXTS)
    assert kinds.edges(c, "menu:main") == [
        kinds.Edge("option 1", "queue:support", ("menus", "main", "options", "1"), False),
        kinds.Edge("option 2", "webhook:crm", ("menus", "main", "options", "2"), False),
        kinds.Edge("on timeout", "group:sales", ("menus", "main", "on_timeout"), True),
        kinds.Edge("on invalid entry", "group:sales", ("menus", "main", "on_invalid"), True),
    ]
    assert [(e.label, e.to) for e in kinds.edges(c, "duty:nights")] == [
        ("nobody on duty", "hangup"), ("on fail", "voicemail:101")]
    assert [(e.label, e.to) for e in kinds.edges(c, "ext:103")] == [("on fail", "voicemail:103")]
    assert kinds.edges(c, "group:nope") == [] and kinds.edges(c, "hangup") == []


def test_a_failed_step_leaves_by_its_kinds_exits():
    r = router(simple("manager:personal", managers={"personal": {"next": "group:sales"}},
                      groups={"sales": {"name": "Sales", "members": [101], "on_fail": "hangup"}}))
    f = facts(caller="0671234567")
    state = State(contacts={"+380671234567": Contact("Shop", "102")})
    d = r.first_step(f, state)
    assert d.step.dest == "manager:personal"
    d = r.next_step(d.step, Outcome.NO_ANSWER, f, state)       # a manager's exits all lead to `next`
    assert d.step.dest == "group:sales"
    d = r.next_step(d.step, Outcome.BUSY, f, state)
    assert d.step.dest == "hangup"
