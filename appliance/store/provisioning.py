"""The store's accessors for phones that configure themselves (tables in migrations_remote).

`provisioned_phones`: a desk phone by MAC address, the extension it is, its
vendor's format, the secret in its file's address, and the SIP password the
file carries.  That password is kept in clear: the phone has to be sent it,
and nothing else of the appliance reads this table (docs/provisioning.md).
`created_at` is when the file's content last changed (a new password).
`provision_tokens`: a softphone's one-time token, as its SHA-256 digest.
"""

from __future__ import annotations

from typing import Any

from appliance.store import Store

PHONE_COLUMNS = ("mac", "extension", "vendor", "secret", "password", "created_at", "fetched_at")


class ProvisioningTables:
    def __init__(self, store: Store):
        self.store = store

    # -- desk phones ---------------------------------------------------------------

    def phone(self, mac: str) -> dict[str, Any] | None:
        row = self.store.db.execute(
            f"select {', '.join(PHONE_COLUMNS)} from provisioned_phones where mac = ?", [mac]).fetchone()
        return dict(zip(PHONE_COLUMNS, row)) if row else None

    def phones(self, extension: str | None = None) -> list[dict[str, Any]]:
        sql = f"select {', '.join(PHONE_COLUMNS)} from provisioned_phones"
        rows = (self.store.db.execute(sql + " where extension = ? order by mac", [extension]) if extension is not None
                else self.store.db.execute(sql + " order by extension, mac"))
        return [dict(zip(PHONE_COLUMNS, r)) for r in rows.fetchall()]

    def assign(self, mac: str, extension: str, vendor: str, secret: str, password: str, now: float) -> None:
        """A new phone; the caller has given the extension `password` in the same transaction."""
        with self.store.transaction():
            self.store.db.execute(
                "insert into provisioned_phones (mac, extension, vendor, secret, password, created_at) "
                "values (?, ?, ?, ?, ?, ?)", [mac, extension, vendor, secret, password, now])
            # The extension's other phones get the password it has now.
            self.store.db.execute("update provisioned_phones set password = ?, created_at = ? where extension = ?",
                                  [password, now, extension])

    def set_password(self, extension: str, password: str, now: float) -> int:
        """The extension has a new password: its phones' files carry it from now on; returns how many."""
        with self.store.transaction():
            cur = self.store.db.execute(
                "update provisioned_phones set password = ?, created_at = ? where extension = ?",
                [password, now, extension])
        return cur.rowcount

    def unassign(self, mac: str) -> bool:
        with self.store.transaction():
            cur = self.store.db.execute("delete from provisioned_phones where mac = ?", [mac])
        return cur.rowcount > 0

    def forget_extension(self, extension: str) -> None:
        """The extension is gone: its phones' files and its softphone's token with it."""
        with self.store.transaction():
            self.store.db.execute("delete from provisioned_phones where extension = ?", [extension])
            self.store.db.execute("delete from provision_tokens where extension = ?", [extension])

    def fetched(self, mac: str, now: float) -> None:
        with self.store.transaction():
            self.store.db.execute("update provisioned_phones set fetched_at = ? where mac = ?", [now, mac])

    # -- softphones' one-time tokens -------------------------------------------------------

    def new_token(self, extension: str, token_hash: str, expires_at: float) -> None:
        """The extension's token; any earlier one of it stops working."""
        with self.store.transaction():
            self.store.db.execute("delete from provision_tokens where extension = ?", [extension])
            self.store.db.execute("insert into provision_tokens (token_hash, extension, expires_at) values (?, ?, ?)",
                                  [token_hash, extension, expires_at])

    def use_token(self, token_hash: str, now: float) -> str | None:
        """The token's extension, once: the token is deleted in the same transaction (used or expired)."""
        with self.store.transaction():
            row = self.store.db.execute(
                "select extension, expires_at from provision_tokens where token_hash = ?", [token_hash]).fetchone()
            if row is None:
                return None
            self.store.db.execute("delete from provision_tokens where token_hash = ?", [token_hash])
        return row[0] if row[1] > now else None

    def token_waiting(self, extension: str, now: float) -> bool:
        row = self.store.db.execute("select 1 from provision_tokens where extension = ? and expires_at > ?",
                                    [extension, now]).fetchone()
        return row is not None
