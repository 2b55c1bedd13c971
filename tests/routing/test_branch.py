"""Another shop's extensions: the branch kind, group members over a branch trunk, the desk dial plan."""

from __future__ import annotations

import pytest

from appliance.configfile import ConfigFileError, load_text
from appliance.errors import ConfigError
from appliance.routing import config
from appliance.routing.branch import format_ranges, in_ranges, parse_ranges
from appliance.routing.desk import desk_call
from appliance.routing.facts import State
from appliance.routing.router import Router
from appliance.routing.steps import Forward, Hangup, Outcome, Ring, Voicemail

from .helpers import EMPTY, facts

EXTS = {"101": "Desk 101", "102": "Desk 102"}
LINKS = {"shop2": parse_ranges("200-299")}
SECTION = {
    "routes": [{"name": "Shop", "to": "group:sales"}],
    "groups": {"sales": {"name": "Sales", "members": [101, "shop2/201", {"branch": "shop2", "ext": 202}],
                         "on_fail": "branch:shop2"}},
    "branches": {"shop2": {"name": "Shop 2", "ring_time": 20, "on_fail": "voicemail:101"}},
}


def router(section=SECTION, links=LINKS) -> Router:
    return Router(config.parse(section, EXTS, branches=links))


def test_ranges_are_read_written_and_matched_by_value_and_length():
    r = parse_ranges(["200-249, 260", 3000])
    assert r == ((200, 249), (260, 260), (3000, 3000))
    assert format_ranges(r) == "200-249, 260, 3000"
    assert in_ranges("201", r) and in_ranges("260", r) and not in_ranges("250", r)
    assert not in_ranges("0201", r) and not in_ranges("2010", r) and in_ranges("3000", r)
    for bad in ("299-200", "20-299", "abc", "", "020-029"):
        with pytest.raises(ConfigError):
            parse_ranges(bad)


def test_a_group_rings_members_in_both_shops_and_goes_on_to_the_other_shop():
    r = router()
    d = r.first_step(facts(), EMPTY)
    assert isinstance(d.step, Ring)
    assert [(leg.target, leg.branch) for leg in d.step.legs] == [("101", ""), ("shop2/201", "shop2"),
                                                                  ("shop2/202", "shop2")]
    nxt = r.next_step(d.step, Outcome.NO_ANSWER, facts(), EMPTY)
    assert isinstance(nxt.step, Ring) and nxt.step.dest == "branch:shop2"
    assert nxt.step.legs[0].target == "shop2" and nxt.step.legs[0].branch == "shop2"
    assert nxt.step.for_seconds == 20
    # Nobody answers there either: the branch's own exits.
    last = r.next_step(nxt.step, Outcome.NO_ANSWER, facts(), EMPTY)
    assert isinstance(last.step, Voicemail) and last.step.box == "101"


def test_an_answer_in_the_other_shop_is_named_by_branch_and_extension():
    r = router()
    d = r.first_step(facts(), EMPTY)
    done = r.next_step(d.step, Outcome.ANSWERED, facts(), EMPTY, by="shop2/201")
    assert done.step.by == "shop2/201"


def test_with_the_link_down_the_branch_is_unavailable_and_its_members_skipped():
    down = State(links={"shop2": False})
    r = router()
    d = r.first_step(facts(), down)
    assert [leg.target for leg in d.step.legs] == ["101"]
    assert "shop2/201 unreachable" in d.trace[-1].text
    nxt = r.next_step(d.step, Outcome.NO_ANSWER, facts(), down)
    assert isinstance(nxt.step, Voicemail), nxt.trace
    assert any("unreachable" in t.text for t in nxt.trace)


def test_an_extension_at_a_branch_as_a_destination():
    section = {"routes": [{"name": "All", "to": "branch:shop2/205"}],
               "branches": {"shop2": {"on_fail": "hangup"}}}
    r = router(section)
    d = r.first_step(facts(), EMPTY)
    assert d.step.legs[0].target == "shop2/205" and d.step.name == "extension 205 at branch 'shop2'"
    assert isinstance(r.next_step(d.step, Outcome.BUSY, facts(), EMPTY).step, Hangup)


def test_references_are_checked_against_the_branch_trunks_when_they_are_known():
    with pytest.raises(ConfigError, match="not among branch shop2's extensions"):
        router({**SECTION, "groups": {"sales": {"members": ["shop2/301"], "on_fail": "hangup"}}})
    with pytest.raises(ConfigError, match="'shop3' is not a branch trunk"):
        router({**SECTION, "branches": {"shop3": {"on_fail": "hangup"}}})
    with pytest.raises(ConfigError, match="branch:shop2/301: no such destination"):
        router({"routes": [{"name": "All", "to": "branch:shop2/301"}], "branches": {"shop2": {"on_fail": "hangup"}}})
    with pytest.raises(ConfigError, match="no such destination"):
        router({"routes": [{"name": "All", "to": "branch:shop2"}]})  # no branches entry: no exits
    # A page that does not know the trunks takes them as written.
    assert config.parse(SECTION, EXTS).groups["sales"].members[1].branch == "shop2"


def test_the_section_dumps_and_reads_back():
    c = config.parse(SECTION, EXTS, branches=LINKS)
    assert config.parse(config.dump(c), EXTS, branches=LINKS) == c
    assert config.dump(c)["groups"]["sales"]["members"][1] == {"branch": "shop2", "ext": "201"}


def test_a_desk_phone_dials_a_colleague_in_the_other_shop_by_extension():
    kw = dict(extensions={"101", "102"}, features=(), is_office_number=lambda n: False, branches=LINKS)
    step = desk_call("101", "201", **kw)
    assert isinstance(step, Ring) and step.dest == "branch:shop2/201"
    assert step.legs[0].branch == "shop2" and step.legs[0].target == "shop2/201"
    assert isinstance(desk_call("101", "102", **kw), Ring) and desk_call("101", "102", **kw).legs[0].branch == ""
    # Outside the ranges it is an outside number as before.
    assert isinstance(desk_call("101", "0671234567", **kw), Forward)


BRANCH_FILE = """\
version: 1
extensions:
  - {number: 101, name: Desk 101, password: change-me-101x}
trunks:
  - name: shop2
    kind: branch
    host: 192.0.2.20
    port: 5070
    secret: a-long-shared-secret
    extensions: "200-299"
routing:
  routes: [{name: Shop, to: group:sales}]
  groups:
    sales: {members: [101, shop2/201], on_fail: branch:shop2}
  branches:
    shop2: {name: Shop 2, on_fail: hangup}
"""


def test_the_configuration_file_takes_a_branch_trunk_and_checks_it():
    parsed = load_text(BRANCH_FILE)
    (t,) = parsed.trunks
    assert t["kind"] == "branch" and t["numbers"] == ["200-299"] and t["password"] == "a-long-shared-secret"
    assert parsed.routing["groups"]["sales"]["members"][1] == {"branch": "shop2", "ext": "201"}
    with pytest.raises(ConfigFileError, match="shared secret of at least 16"):
        load_text(BRANCH_FILE.replace("a-long-shared-secret", "short"))
    with pytest.raises(ConfigFileError, match="extension 101 is this appliance's own"):
        load_text(BRANCH_FILE.replace('"200-299"', '"100-299"'))
    with pytest.raises(ConfigFileError, match="not among branch shop2's extensions"):
        load_text(BRANCH_FILE.replace("shop2/201", "shop2/301"))
