"""Routing for the tests of steps that talk to the caller: announcements, menus, voicemail, queues.

Prompts are named `t-...` so that the tests' tone recordings never meet the
engine's own spoken prompts.  Queue settings a test wants to change are read
from the store setting `test_queue` when the router is made.
"""

from __future__ import annotations

from dataclasses import replace

from appliance.routing.model import (
    Announcement, Availability, Exits, Member, Menu, Queue, RoutingConfig, Route, VoicemailBox,
)
from tests.engine.routes import SALES_NUMBER, _router

BOX = VoicemailBox("sales", "Sales")


def _to(dest: str) -> RoutingConfig:
    return RoutingConfig(
        routes=(Route("sales", dest, numbers=(SALES_NUMBER,)),),
        menus={
            "main": Menu("main", "Main", "t-main",
                         {"1": "ext:101", "2": "ext:102", "3": "menu:sub"},
                         on_timeout="ext:103", on_invalid="hangup", timeout=2, inter_digit=1, retries=1,
                         invalid_prompt="t-invalid", direct_dial=("103",)),
            "sub": Menu("sub", "Support", "t-sub", {"0": "parent", "1": "ext:103"},
                        on_timeout="hangup", on_invalid="hangup", timeout=3, inter_digit=1, retries=0),
        },
        announcements={"info": Announcement("info", "Info", "t-info", "ext:102")},
        voicemail={"sales": BOX},
    )


def menu(store):
    return _router(store, _to("menu:main"))


def announcement(store):
    return _router(store, _to("announcement:info"))


def voicemail(store):
    return _router(store, _to("voicemail:sales"))


def queue(store):
    """Queue `support` (agent 103 unless `test_queue` says otherwise)."""
    opts = dict(store.get_setting("test_queue", {}) or {})
    members = tuple(Member(m) for m in opts.pop("members", ["103"]))
    q = Queue("support", "Support", opts.pop("strategy", "ringall"), members,
              Exits("ext:102", "hangup", "hangup", "hangup"),
              ring_time=8, retry=1, max_wait=30, announce_every=2, music="default",
              availability=Availability(True, True, True, 0, 1))
    q = replace(q, **opts)
    return _router(store, RoutingConfig(
        routes=(Route("sales", "queue:support", numbers=(SALES_NUMBER,)),),
        queues={"support": q}, voicemail={"sales": BOX}))

