"""Routing's decisions for desk phones' calls, transfers and a trunk's dialled number."""

from __future__ import annotations

from appliance.routing.desk import desk_call, dialled_number, transfer_target
from appliance.routing.steps import Feature, Forward, Pickup, Refuse, Ring, Routed

EXTS = {"101", "102", "103"}


def call(number: str, **kw) -> object:
    args = dict(extensions=EXTS, features={"*28"}, is_office_number=lambda n: n == "0441234567")
    args.update(kw)
    return desk_call("101", number, **args)


def test_what_a_desk_phone_dialled_means():
    assert call("12a") == Refuse(484, "'12a' is not a number: only digits, *, # and +")
    assert call("**102") == Pickup("102") and call("*8") == Pickup("")
    assert call("*28") == Feature("*28")
    assert isinstance(call("*99"), Refuse) and call("*99").status == 404
    assert call("101").status == 486
    ring = call("102")
    assert isinstance(ring, Ring) and ring.dest == "ext:102" and [leg.target for leg in ring.legs] == ["102"]
    assert call("0441234567") == Routed("+380441234567")
    out = call("0671234567")
    assert isinstance(out, Forward) and out.number == "+380671234567" and not out.confirm


def test_outside_numbers_follow_the_dial_rules_and_the_limit():
    assert call("+48221234567").status == 403  # international is not in the default rules
    assert isinstance(call("+48221234567", rules=["international"]), Forward)
    refused = call("0671234567", active=2, limit=2)
    assert isinstance(refused, Refuse) and "2 outside calls" in refused.reason


def test_transfer_targets():
    kw = dict(extensions=EXTS, rules=None, limit=None, may_use_trunk=True, seconds=25)
    ring = transfer_target("101", "103", **kw)
    assert isinstance(ring, Ring) and ring.for_seconds == 25
    assert transfer_target("101", "101", **kw).status == 403
    assert transfer_target("101", "", **kw).status == 484
    fwd = transfer_target("101", "0671234567", **kw)
    assert isinstance(fwd, Forward) and fwd.number == "+380671234567" and fwd.for_seconds == 25
    assert transfer_target("101", "0671234567", **{**kw, "may_use_trunk": False}).status == 403


def test_the_dialled_number_of_a_trunk_call():
    numbers = ["0441234567", "0322345678"]
    assert dialled_number(numbers, "0322345678", "pbxuser", {"pbxuser"}) == "+380322345678"  # To wins
    assert dialled_number(numbers, "pbxuser", "0441234567", {"pbxuser"}) == "+380441234567"
    assert dialled_number(numbers, "", "pbxuser", {"pbxuser"}) == "+380441234567"  # the account: first number
    assert dialled_number([], "x", "0501234567", set()) == "+380501234567"
