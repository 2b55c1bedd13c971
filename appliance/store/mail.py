"""The store's accessors for e-mail: the mail outbox and people's addresses (tables in migrations_mail).

`MailOutbox.add` works on the caller's connection, so a message is kept in
the transaction of the change it reports; the outbox's worker
(appliance.notify.deliver) reads what is due, and marks each row sent
(deleted) or failed (kept, with its reason and next attempt).
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.store import Store

SUMMARY_SENT = "mail_summary_sent"   # setting: the office-local date of the last daily summary


@dataclass(frozen=True)
class Mail:
    id: int
    kind: str
    created_at: str
    to: str
    subject: str
    body: str
    attachment: str | None   # a voicemail WAV's path, read when the message is sent
    attempts: int
    next_at: float
    last_error: str | None


_COLUMNS = "id, kind, created_at, to_addr, subject, body, attachment, attempts, next_at, last_error"


class MailOutbox:
    def __init__(self, store: Store):
        self.store = store

    def add(self, kind: str, created_at: str, to: str, subject: str, body: str,
            attachment: str | None = None) -> int:
        """Keep a message for sending; call inside the change's transaction."""
        cur = self.store.db.execute(
            "insert into mail_outbox (kind, created_at, to_addr, subject, body, attachment) values (?, ?, ?, ?, ?, ?)",
            [kind, created_at, to, subject, body, attachment])
        return int(cur.lastrowid)

    def due(self, now: float) -> list[Mail]:
        return [Mail(*r) for r in self.store.db.execute(
            f"select {_COLUMNS} from mail_outbox where next_at <= ? order by id", [now]).fetchall()]

    def waiting(self) -> list[Mail]:
        """Every message not sent yet, oldest first."""
        return [Mail(*r) for r in self.store.db.execute(f"select {_COLUMNS} from mail_outbox order by id").fetchall()]

    def next_at(self) -> float | None:
        return self.store.db.execute("select min(next_at) from mail_outbox").fetchone()[0]

    def sent(self, mail_id: int) -> None:
        with self.store.transaction():
            self.store.db.execute("delete from mail_outbox where id = ?", [mail_id])

    def failed(self, mail_id: int, next_at: float, error: str) -> None:
        with self.store.transaction():
            self.store.db.execute("update mail_outbox set attempts = attempts + 1, next_at = ?, last_error = ? "
                                  "where id = ?", [next_at, error[:500], mail_id])

    def drop_all(self) -> int:
        """Forget every waiting message (mail was switched off); returns how many."""
        with self.store.transaction():
            return self.store.db.execute("delete from mail_outbox").rowcount

    def pending(self) -> int:
        return self.store.db.execute("select count(*) from mail_outbox").fetchone()[0]


def email_of(store: Store, extension: str | None) -> str | None:
    """The extension's e-mail address, None when it has none (or there is no such extension)."""
    if not extension:
        return None
    row = store.db.execute("select email from extensions where number = ?", [str(extension)]).fetchone()
    return row[0] if row and row[0] else None
