"""Routing for the analog line's tests: the line's number and the provider's ring extension 101 and 102."""

from __future__ import annotations

from dataclasses import replace

from appliance.routing.model import RoutingConfig, Route
from appliance.routing.router import Router

LINE_NUMBER = "+380443330000"
PROVIDER_NUMBER = "+380441234567"


def office(store) -> Router:
    known = {e["number"]: e["name"] for e in store.extensions()}
    return Router(replace(RoutingConfig(routes=(
        Route("line", "ext:101", numbers=(LINE_NUMBER,)),
        Route("provider", "ext:102", numbers=(PROVIDER_NUMBER,)),
    )), known_extensions=known))
