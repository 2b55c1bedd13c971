"""Schema changes e-mail needs, registered after the voicemail's.

`extensions.email`: where a person's mail goes (an optional key of an
extension in the configuration).  `mail_outbox`: messages waiting to be
sent, one row each, written in the transaction of the change they report and
deleted once the SMTP server took them (appliance.store.mail); a failed
attempt keeps the row with its reason and the time of the next attempt.
"""

from __future__ import annotations

from sqlite_utils import Database

from appliance.store.schema import migrations


@migrations()
def m_mail_001_outbox(db: Database) -> None:
    if "email" not in db["extensions"].columns_dict:
        db["extensions"].add_column("email", str)
    # AUTOINCREMENT: ids are never given again, so a log line names one message for good.
    db.execute("create table if not exists mail_outbox (id integer primary key autoincrement, "
               "kind text not null, created_at text not null, to_addr text not null, subject text not null, "
               "body text not null, attachment text, attempts integer not null default 0, "
               "next_at real not null default 0, last_error text)")
    db["mail_outbox"].create_index(["next_at"], if_not_exists=True)
