"""Schema changes the SIP edge needs, to be registered after the store's own migrations.

`m_edge_001_binding_instance` keeps a binding's `+sip.instance` (RFC 5626):
a phone that re-registers from a new address after a NAT rebinding sends
the same instance, and its old contact is then replaced instead of lingering
until it expires.  The edge works without the column (it then keys on the
contact alone); registering this migration turns the feature on across restarts.
"""

from __future__ import annotations

from sqlite_utils import Database


def m_edge_001_binding_instance(db: Database) -> None:
    if "instance" not in db["bindings"].columns_dict:
        db["bindings"].add_column("instance", str)
