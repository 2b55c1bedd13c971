"""Schema for voicemail messages the owner has listened to, registered after the panel's.

The engine keeps a message as files only (`voicemail/<box>/<start>-<call>.wav`
and a `.json` beside it saying who called), so whether a message was heard is
the one thing about it that needs a row: `voicemail_heard`, keyed by the
message's id (`<box>/<file name without .wav>`).
"""

from __future__ import annotations

from sqlite_utils import Database

from appliance.store.schema import migrations


@migrations()
def m_voicemail_001_heard(db: Database) -> None:
    db["voicemail_heard"].create({"message": str, "heard_at": str}, pk="message",
                                 not_null={"message", "heard_at"}, if_not_exists=True)
