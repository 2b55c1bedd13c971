"""Schema for desk phones' subscriptions to busy lamps (the dialog event package), registered after the call-backs'.

`subscriptions`: one row per subscription the edge accepted (RFC 6665), the
dialog it lives in (Call-ID, the phone's tag and ours, the phone's Contact and
route set, the headers the NOTIFYs carry), where the phone is (NAT: the
address and transport it subscribed from), which lamp it watches (`resource`:
an extension or a night key), when it expires, and the dialog's counters
(our CSeq, the dialog-info `version`), so that after a restart every phone
gets a NOTIFY with the current state and versions that keep increasing.
"""

from __future__ import annotations

from sqlite_utils import Database

from appliance.store.schema import migrations


@migrations()
def m_subscriptions_001_table(db: Database) -> None:
    db.execute(
        "create table if not exists subscriptions ("
        "call_id text not null, remote_tag text not null, local_tag text not null, "
        "subscriber text not null, resource text not null, entity text not null, event text not null, "
        "remote_uri text not null, local_uri text not null, contact text not null, route text not null default '[]', "
        "transport text not null, source_host text not null, source_port integer not null, "
        "expires_at real not null, cseq integer not null default 0, version integer not null default 0, "
        "created_at real not null, primary key (call_id, remote_tag))")
    db["subscriptions"].create_index(["expires_at"], if_not_exists=True)
