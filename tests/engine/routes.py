"""Routing configurations for the engine's integration tests, as Router factories.

The engine runner loads one with `--router tests.engine.routes:NAME` (or the
"router" command); each is a function of the engine's store.
"""

from __future__ import annotations

from dataclasses import replace

from appliance.routing.model import Exits, External, Group, Member, RoutingConfig, Route, Webhook
from appliance.routing.router import Router

MOBILE = "+380671112233"
SALES_NUMBER = "+380441234567"   # the IP trunk's number
OFFICE_NUMBER = "+380442222222"  # the registered trunk's number
TO_103 = Exits("ext:103", "ext:103", "ext:103", "ext:103")
HANGUP = Exits("hangup", "hangup", "hangup", "hangup")


def _router(store, cfg: RoutingConfig) -> Router:
    known = {e["number"]: e["name"] for e in store.extensions()}
    return Router(replace(cfg, known_extensions=known))


def _group(strategy: str, ring_time: int, exits: Exits = HANGUP, rounds: int = 1) -> Group:
    return Group("sales", "Sales", strategy, tuple(Member(n) for n in ("101", "102", "103")), exits,
                 ring_time=ring_time, rounds=rounds)


def _groups(store, strategy: str, ring_time: int, **kw) -> Router:
    return _router(store, RoutingConfig(
        routes=(Route("sales", "group:sales", numbers=(SALES_NUMBER, OFFICE_NUMBER, "200")),),
        groups={"sales": _group(strategy, ring_time, **kw)}))


def ringall(store) -> Router:
    return _groups(store, "ringall", 20)


def ringall_short(store) -> Router:
    return _groups(store, "ringall", 3)


def linear(store) -> Router:
    return _groups(store, "linear", 2)


def memory(store) -> Router:
    return _groups(store, "memory", 2)


def roundrobin(store) -> Router:
    return _groups(store, "roundrobin", 2)


def fewest_calls(store) -> Router:
    return _groups(store, "fewest_calls", 2)


def forward_mobile(store) -> Router:
    """Calls go to the duty mobile; if it does not take the call, extension 103 rings."""
    return _router(store, RoutingConfig(
        routes=(Route("sales", "external:duty", numbers=(SALES_NUMBER,)),),
        externals={"duty": External("duty", "Sales", MOBILE, TO_103, ring_time=8, confirm=True)}))


def webhook(store) -> Router:
    url = store.get_setting("test_webhook_url")
    return _router(store, RoutingConfig(
        routes=(Route("sales", "webhook:crm", numbers=(SALES_NUMBER,)),),
        webhooks={"crm": Webhook("crm", "CRM", url, fallback="ext:103", exits=HANGUP, timeout=1.0)}))


def _tiered(store, strategy: str, ring_time: int, widen_after: int = 2) -> Router:
    members = tuple(Member(n, tier=t) for n, t in (("101", 1), ("102", 2), ("103", 3)))
    group = Group("sales", "Sales", strategy, members, HANGUP, ring_time=ring_time, widen_after=widen_after)
    return _router(store, RoutingConfig(
        routes=(Route("sales", "group:sales", numbers=(SALES_NUMBER,)),), groups={"sales": group}))


def tiers(store) -> Router:
    """Tier 1 (101) at once, 102 after 2 s, 103 after 4 s; nobody stops ringing."""
    return _tiered(store, "tiers", 10)


def escalation(store) -> Router:
    """101 alone for 2 s, then 102 alone, then 103 alone."""
    return _tiered(store, "escalation", 2)


def random_order(store) -> Router:
    return _groups(store, "random", 2)


def longest_idle(store) -> Router:
    return _groups(store, "longest_idle", 2)


def announced(store) -> Router:
    """Ring all, after the group's greeting (the prompt `sales-hello`)."""
    group = replace(_group("ringall", 20), announce="sales-hello")
    return _router(store, RoutingConfig(
        routes=(Route("sales", "group:sales", numbers=(SALES_NUMBER,)),), groups={"sales": group}))


def after_hours_duty(store) -> Router:
    """The shop's night switch (set to night by the test) sends calls to the duty mobile of the
    roster, every day; if it does not take the call, voicemail."""
    from appliance.routing.config import parse

    known = {e["number"]: e["name"] for e in store.extensions()}
    doc = {
        "routes": [{"name": "Shop", "numbers": [SALES_NUMBER], "to": "night:shop"}],
        "night": {"shop": {"name": "Shop", "day": "group:sales", "night": "duty:nights"}},
        "groups": {"sales": {"name": "Sales", "members": ["101", "102", "103"], "on_fail": "hangup"}},
        "duty": {"nights": {"name": "Nights", "roster": [{"weekdays": "mon-sun", "number": MOBILE}],
                            "ring_time": 8, "confirm": True, "nobody": "voicemail:shop",
                            "on_fail": "voicemail:shop"}},
        "voicemail": {"shop": {"name": "Shop"}},
        "unmatched": "hangup",
    }
    return Router(parse(doc, known, timezone=store.timezone))
