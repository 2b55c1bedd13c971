"""Inbound routes through the panel: the ordered list, the unmatched destination, and the
validator's refusals shown next to the field with nothing saved."""

from __future__ import annotations

import re

from appliance.store import Store
from appliance.store.panel import PanelTables
from tests.web.conftest import post_form
from web import office


def routing(data_dir) -> dict:
    with Store(data_dir) as store:
        return office.document(store)["routing"]


def versions(data_dir) -> int:
    with Store(data_dir) as store:
        return len(PanelTables(store).versions())


def add_route(owner, **fields):
    data = {"name": "Shop", "numbers": "", "callers": "", "to": "group:office", **fields}
    return post_form(owner, "/routes/new", data)


def test_the_list_shows_routes_unmatched_and_the_preview(owner):
    page = owner.get("/routes/").data.decode()
    assert 'id="unmatched-form"' in page and 'name="unmatched"' in page
    assert 'id="route-preview"' in page
    assert re.search(r'<option selected value="group:office">', page)
