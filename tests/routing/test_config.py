"""The routing section: reading, dumping, and refusing flows that lose calls."""

import pytest

from appliance.configfile import ConfigFileError, load_text
from appliance.errors import ConfigError
from appliance.routing import config

from .helpers import EXAMPLES, EXTS, in_file, simple


def refuse(section, exts=EXTS) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        config.parse(section, exts)
    return e.value


def test_example_parses_round_trips_and_matches_the_whole_file():
    whole = load_text((EXAMPLES / "office.yaml").read_text())
    exts = {e["number"]: e["name"] for e in whole.extensions}
    assert in_file((EXAMPLES / "routing.yaml").read_text(), exts).routing == whole.routing
    c = config.parse(whole.routing, exts)
    assert config.parse(config.dump(c), exts) == c
    assert config.dump(c) == whole.routing
    assert c.webhooks["crm"].timeout == 1.5
    assert c.menus["main"].options["0"] == "ext:100"


def test_extension_numbers_arrive_as_ints_or_strings():
    c = config.parse({"routes": [{"name": "A", "to": 101}],
                      "groups": {"g": {"members": [101, "102"], "on_fail": 103}}}, EXTS)
    assert c.routes[0].to == "ext:101"
    assert [m.target for m in c.groups["g"].members] == ["101", "102"]
    assert c.groups["g"].exits.busy == "ext:103"
    # The file's loader reads 101 as a number and '102' as text; both are extensions.
    routing = in_file("routes:\n  - {name: A, to: 101}\ngroups:\n  g: {members: [101, '102'], on_fail: 103}\n").routing
    assert routing["routes"][0]["to"] == "ext:101"
    assert routing["groups"]["g"]["members"] == [{"ext": "101"}, {"ext": "102"}]


@pytest.mark.parametrize("written", ["True", "TRUE", "yes", "on"])
def test_only_lowercase_true_and_false_are_booleans_in_a_file(written):
    section = f"routes:\n  - {{name: A, to: group:g}}\ngroups:\n  g: {{members: [101], confirm: {written}, on_fail: hangup}}\n"
    with pytest.raises(ConfigFileError) as e:
        in_file(section)
    assert "'confirm' should be true or false" in e.value.reason
    assert in_file(section.replace(f"confirm: {written}", "confirm: false")).routing["groups"]["g"]["confirm"] is False


def test_issue_example_message_names_the_path():
    section = {
        "routes": [{"name": "Shop 1", "numbers": ["0441111111"], "to": 101},
                   {"name": "Shop 2", "numbers": ["0442222222"], "to": "schedule:hours"}],
        "unmatched": "hangup",
        "schedules": {"hours": {"name": "Hours", "hours": {"mon-fri": "09:00-18:00"}, "open": 101,
                                "closed": "night:main"}},
        "night": {"main": {"name": "Main", "day": 102, "night": "group:sales"}},
        "groups": {"sales": {"name": "Sales", "members": [], "on_fail": "hangup"}},
    }
    e = refuse(section)
    assert e.message == ("route 'Shop 2' → schedule 'Hours' → closed → night switch 'Main' → night → "
                         "group 'Sales' has no members")
    assert e.path == ("groups", "sales", "members")


def test_missing_destination():
    e = refuse(simple("menu:main", menus={"main": {"prompt": "p", "options": {1: "group:nope"}, "on_fail": "hangup"}}))
    assert "route 'All' → menu 'main' → option 1 → group:nope: no such destination" == e.message
    assert e.path == ("menus", "main", "options", "1")
    e = refuse(simple("queue:nope"))
    assert e.path == ("routes", 0, "to")


def test_unknown_extension_and_external_number_as_destination():
    assert refuse(simple(999)).message == "999 is not an extension"
    e = refuse(simple("0671234567"))
    assert "external number" in e.message and e.path == ("routes", 0, "to")


def test_forced_loops_are_refused_but_caller_choices_are_not():
    loop = simple("group:a", groups={
        "a": {"name": "A", "members": [101], "on_fail": "group:b"},
        "b": {"name": "B", "members": [102], "on_no_answer": "group:a", "on_busy": "hangup",
              "on_unavailable": "hangup", "on_failure": "hangup"}})
    e = refuse(loop)
    assert "loop" in e.message and "group 'A'" in e.message and "group 'B'" in e.message
    menu_back = simple("menu:m", menus={"m": {"prompt": "p", "options": {1: "group:a"}, "on_fail": "hangup"}},
                       groups={"a": {"name": "A", "members": [101], "on_fail": "menu:m"}})
    config.parse(menu_back, EXTS)   # a caller who does nothing ends at hang up
    silent_loop = simple("menu:m", menus={"m": {"prompt": "p", "options": {1: 101}, "on_fail": "group:a"}},
                         groups={"a": {"name": "A", "members": [101], "on_fail": "menu:m"}})
    assert "loop" in refuse(silent_loop).message


def test_schedule_gaps():
    sched = {"name": "Hours", "hours": {"mon-fri": "09:00-18:00"}, "open": 101}
    e = refuse(simple("schedule:h", schedules={"h": sched}))
    assert e.message == "route 'All' → schedule 'Hours' leaves Fri 18:00–Mon 09:00 with nowhere to go: add 'closed'"
    assert e.path == ("schedules", "h", "closed")
    always = {"name": "Always", "hours": {"mon-sun": ["00:00-12:00", "12:00-24:00"]}, "open": 101}
    config.parse(simple("schedule:h", schedules={"h": always}), EXTS)
    holidays = {**always, "holidays": ["01-01"]}
    assert "holidays" in refuse(simple("schedule:h", schedules={"h": holidays})).message
    config.parse(simple("schedule:h", schedules={"h": {**sched, "closed": "hangup"}}), EXTS)


def test_routes_must_take_every_call_and_not_hide_each_other():
    e = refuse({"routes": [{"name": "Shop", "numbers": ["0441111111"], "to": 101}]})
    assert e.path == ("unmatched",) and "match no route" in e.message
    e = refuse({"routes": [{"name": "Any", "to": 101}, {"name": "Shop", "numbers": ["0441111111"], "to": 102}]})
    assert e.message == "route 'Shop' can never take a call: route 'Any' above it takes them all"
    assert e.path == ("routes", 1)


@pytest.mark.parametrize("section,path,words", [
    (simple(101, colour="red"), ("colour",), "no setting"),
    (simple("group:g", groups={"g": {"strategy": "fastest", "members": [101], "on_fail": "hangup"}}),
     ("groups", "g", "strategy"), "not a strategy"),
    (simple("group:g", groups={"g": {"members": [101]}}), ("groups", "g", "on_fail"), "fails"),
    (simple("group:g", groups={"g": {"members": [101, 101], "on_fail": "hangup"}}), ("groups", "g", "members", 1), "twice"),
    (simple("group:g", groups={"g": {"members": [101], "ring_time": "long", "on_fail": "hangup"}}),
     ("groups", "g", "ring_time"), "whole number"),
    (simple("schedule:s", schedules={"s": {"hours": {"mon": "9-18"}, "open": 101, "closed": 102}}),
     ("schedules", "s", "hours", "mon", 0), "time"),
    (simple("schedule:s", schedules={"s": {"hours": {"moon": "09:00-18:00"}, "open": 101, "closed": 102}}),
     ("schedules", "s", "hours", "moon"), "day"),
    (simple("schedule:s", schedules={"s": {"holidays": ["2025-02-30"], "open": 101, "closed": 102}}),
     ("schedules", "s", "holidays", 0), "not a date"),
    (simple("webhook:w", webhooks={"w": {"url": "ftp://x", "fallback": 101}}), ("webhooks", "w", "url"), "http"),
    (simple("webhook:w", webhooks={"w": {"url": "http://x", "fallback": 101, "timeout": "soon"}}),
     ("webhooks", "w", "timeout"), "seconds"),
    (simple("menu:m", menus={"m": {"prompt": "p", "on_fail": "parent"}}), ("menus", "m", "on_fail"), "menu option"),
    (simple("duty:d", duty={"d": {"nobody": 101, "on_fail": 101, "roster": [{"number": "0671110001"}]}}),
     ("duty", "d", "roster", 0), "dates or weekdays"),
    (simple("night:n", night={"n": {"day": 101, "night": 102, "schedule": "nope"}}), ("night", "n", "schedule"),
     "does not exist"),
])
def test_shape_errors_name_their_path(section, path, words):
    e = refuse(section)
    assert e.path == path
    assert words in e.message


def test_validate_lists_every_problem():
    c = config.read({"routes": [{"name": "A", "to": "group:x"}],
                     "groups": {"g": {"name": "G", "members": [], "on_fail": "queue:q"}}}, EXTS)
    problems = config.validate(c)
    messages = [p.message for p in problems]
    assert any("group:x: no such destination" in m for m in messages)
    assert any("group 'G' has no members" in m for m in messages)
    assert any("queue:q: no such destination" in m for m in messages)


def test_rich_config_round_trips():
    section = in_file("""
timezone: Europe/Kyiv
routes:
  - {name: A, numbers: ["0441234567"], callers: ["067*", anonymous], trunks: [main], to: schedule:h}
unmatched: voicemail:box
extension_defaults: {ring_time: 30, on_fail: voicemail, skip_busy: true, max_calls: 2}
extensions:
  101: {ring_time: 10, on_busy: 102, on_fail: voicemail}
groups:
  g: {strategy: one_by_one, rounds: 3, members: [101, {ext: 102, tier: 2, rings: 2, skip_dnd: false},
      {number: "0501234567", confirm: false}], on_fail: queue:q, on_busy: voicemail:box, announce: wait}
queues:
  q: {members: [201, 202], exit_key: "#", exit_to: hangup, callback: true, on_fail: voicemail:box}
menus:
  m: {prompt: p, options: {1: group:g, 2: parent, "*9": repeat}, direct_dial: [101, 102], on_fail: hangup}
schedules:
  h: {hours: {mon-fri: ["09:00-13:00", "14:00-18:00"], sun: "22:00-02:00"}, holidays: ["01-01", "2025-05-01"],
      open: menu:m, closed: night:n, timezone: Europe/Warsaw}
night:
  n: {day: 101, night: duty:d}
duty:
  d: {roster: [{weekdays: "sat,sun", number: "0671110001"}, {dates: ["2025-01-01"], number: "0671110002"}],
      nobody: announcement:a, on_fail: external:e, changeover: "09:30"}
announcements:
  a: {prompt: closed, then: voicemail:box}
externals:
  e: {number: "+380501234567", on_fail: webhook:w}
webhooks:
  w: {url: "https://x.example/r", fallback: manager:p, timeout: "0.8", allow_numbers: true}
managers:
  p: {next: hangup, learn: true, wrapup: 5}
voicemail:
  box: {name: Box, email: a@example.com}
""").routing
    c = config.parse(section, EXTS)
    assert c.groups["g"].strategy == "linear" and c.groups["g"].members[1].ring_time == 10
    assert c.schedules["h"].timezone == "Europe/Warsaw"
    assert c.duty["d"].changeover == 9 * 60 + 30
    dumped = config.dump(c)
    assert config.parse(dumped, EXTS) == c
    import json
    assert config.parse(json.loads(json.dumps(dumped)), EXTS) == c   # the store keeps it as JSON
