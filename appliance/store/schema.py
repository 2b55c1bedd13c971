"""The store's schema, as an ordered list of migrations.

Each migration runs once per database file and is recorded in
`_sqlite_migrations`; running them again on a migrated file does nothing.
A change to the schema is a new function at the end, never an edit of one
that shipped.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("pbx")


@migrations()
def m001_initial(db: Database) -> None:
    db["settings"].create({"key": str, "value": str}, pk="key")

    # Digest HA1 values only (RFC 7616: H(username:realm:password)); the
    # password itself is never stored.
    db["extensions"].create(
        {
            "number": str,
            "name": str,
            "ha1_md5": str,
            "ha1_sha256": str,
            "realm": str,
            "dnd": int,
            "dial_rules": str,  # JSON list of allowed classes: local, mobile, international, premium
            "max_outbound": int,
            "created_at": str,
        },
        pk="number",
        defaults={"dnd": 0, "dial_rules": '["local", "mobile"]', "max_outbound": 2},
        not_null={"number", "name", "ha1_md5", "ha1_sha256", "realm"},
    )

    # A registered contact of an extension, with where it really came from
    # (NAT: the received/rport address) and how (UDP or TCP).
    db["bindings"].create(
        {
            "extension": str,
            "contact": str,
            "source_host": str,
            "source_port": int,
            "transport": str,
            "user_agent": str,
            "call_id": str,
            "cseq": int,
            "q": float,
            "expires_at": float,
            "registered_at": float,
        },
        pk=("extension", "contact"),
        foreign_keys=[("extension", "extensions", "number")],
    )
    db["bindings"].create_index(["expires_at"])

    db["bans"].create(
        {"address": str, "reason": str, "banned_at": float, "until": float},
        pk="address",
    )

    # SIP trunks.  A registering trunk needs the provider password in clear:
    # it is the client side of the digest exchange.
    db["trunks"].create(
        {
            "name": str,
            "kind": str,  # "register" or "ip"
            "host": str,
            "port": int,
            "transport": str,
            "username": str,
            "password": str,
            "auth_username": str,
            "from_domain": str,
            "numbers": str,  # JSON list of the trunk's own numbers (DIDs)
            "addresses": str,  # JSON list of provider addresses allowed in (IP trunks)
            "caller_id": str,  # default outbound caller ID
            "pass_caller_id": int,  # forward the customer's number on forwarded calls
            "register_expires": int,
            "enabled": int,
        },
        pk="name",
        defaults={
            "kind": "register",
            "port": 5060,
            "transport": "udp",
            "numbers": "[]",
            "addresses": "[]",
            "pass_caller_id": 0,
            "register_expires": 300,
            "enabled": 1,
        },
        not_null={"name", "kind", "host"},
    )

    # The routing configuration is one document, validated as a whole by
    # appliance.routing before it is saved.
    db["routing"].create({"id": int, "document": str, "updated_at": str}, pk="id")

    # Customers the office knows: their manager (personal manager routing)
    # and whether they go first in queues.
    db["contacts"].create(
        {
            "number": str,  # normalised, see appliance.routing numbers
            "name": str,
            "manager": str,
            "vip": int,
            "note": str,
            "learned": int,  # manager learned from the last answered call
            "updated_at": str,
        },
        pk="number",
        defaults={"vip": 0, "learned": 0},
    )

    # One row per call, written when the call starts ("in progress") and completed when it ends.
    db["calls"].create(
        {
            "id": str,
            "started_at": str,
            "answered_at": str,
            "ended_at": str,
            "direction": str,  # inbound, outbound, internal
            "caller": str,
            "dialled": str,
            "trunk": str,
            "extension": str,  # the extension that placed an internal/outbound call
            "answered_by": str,
            "outcome": str,  # answered, missed, abandoned, voicemail, failed, refused, in progress, interrupted, transferred
            "wait_s": float,
            "talk_s": float,
            "path": str,  # JSON list of the steps the call took
        },
        pk="id",
    )
    db["calls"].create_index(["started_at"])
    db["calls"].create_index(["caller"])

    db["missed"].create(
        {
            "id": int,
            "call_id": str,
            "caller": str,
            "dialled": str,
            "at": str,
            "manager": str,
            "status": str,  # open, handled
            "handled_by": str,
            "handled_at": str,
            "note": str,
        },
        pk="id",
        foreign_keys=[("call_id", "calls", "id")],
        defaults={"status": "open"},
    )
    db["missed"].create_index(["status", "at"])

    db["events"].create(
        {"id": int, "at": str, "kind": str, "call_id": str, "data": str},
        pk="id",
    )
    db["events"].create_index(["at"])

    # Strategy memory: round-robin positions, calls today, last call end.
    db["routing_state"].create({"key": str, "value": str}, pk="key")


@migrations()
def m002_binding_instance(db: Database) -> None:
    from appliance.store.migrations_edge import m_edge_001_binding_instance

    m_edge_001_binding_instance(db)


from appliance.store import migrations_engine  # noqa: E402,F401  (registers the engine's migrations)
from appliance.store import migrations_night  # noqa: E402,F401  (registers night mode's migrations)
from appliance.store import migrations_missed  # noqa: E402,F401  (registers missed cases' and the outbox's)
from appliance.store import migrations_panel  # noqa: E402,F401  (registers the panel's)
from appliance.store import migrations_voicemail  # noqa: E402,F401  (registers which voicemail messages were heard)
from appliance.store import migrations_mail  # noqa: E402,F401  (registers e-mail's: extensions' address, the mail outbox)
from appliance.store import migrations_callbacks  # noqa: E402,F401  (registers call-backs that keep a queue place)
from appliance.store import migrations_subscriptions  # noqa: E402,F401  (registers busy-lamp subscriptions)
from appliance.store import migrations_reports  # noqa: E402,F401  (registers the reports' indexes)
from appliance.store import migrations_autocall  # noqa: E402,F401  (registers automatic callbacks of missed cases)
from appliance.store import migrations_agents  # noqa: E402,F401  (registers agents' statuses and supervisors)
from appliance.store import migrations_recording  # noqa: E402,F401  (registers the call recordings' link)
from appliance.store import migrations_remote  # noqa: E402,F401  (registers extensions' TLS flag and provisioning)
from appliance.store import migrations_report_sums  # noqa: E402,F401  (registers the reports' sums per office hour)
