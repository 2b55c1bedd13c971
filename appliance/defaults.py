"""What a new appliance starts with, checked by routing before it is saved.

The store seeds plain data on the first start (timezone, realm, extensions
101-103, and `store.DEFAULT_ROUTING`: one group that rings every desk phone)
and knows nothing of routing.  `seed_defaults(store)` is the first start as
the appliance runs it: the store's seeding, with the default routing read by
routing's parser (so a default that could lose calls fails at once) and saved
in the canonical form `pbx config export` writes and `pbx config import`
reads back unchanged.
"""

from __future__ import annotations

from appliance.routing.config import dump, parse
from appliance.store import Store


def canonical_routing(document: dict, extensions: dict[str, str], timezone: str) -> dict:
    """A routing document as routing reads and writes it back; ConfigError if it is not valid."""
    return dump(parse(document, extensions, timezone=timezone))


def seed_defaults(store: Store) -> dict[str, str] | None:
    """First run: the store's defaults, with the routing checked.

    Returns {number: password} for the extensions created (shown once), or
    None when the appliance was seeded before.
    """
    return store.seed_defaults(check_routing=canonical_routing)
