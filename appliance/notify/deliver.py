"""The outbox's delivery worker: one thread, one HTTP POST or one e-mail at a time, nothing else waits on it.

Each URL gets its events in outbox order; a URL that fails keeps its head
event and is tried again after a back-off (`backoff`), while the other URLs
go on.  A delivery is at least once: a crash between the receiver's 2xx and
the row's deletion sends the event again, with the same `X-PBX-Event-Id`.

E-mails (the mail outbox, appliance.store.mail) go out the same way: each
row is one message, sent over SMTP (appliance.notify.mail.send), deleted
once the server took it, else kept with the server's reason and tried again
after the same back-off.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import wave
from email.message import EmailMessage
from pathlib import Path
from typing import Callable

from appliance.notify.config import NotifyConfig
from appliance.notify.mail import MailConfig, MailRefused, compose, send

log = logging.getLogger("appliance.notify")

SIGNATURE_HEADER = "X-PBX-Signature"
# Seconds before attempt n+1 after n failures: doubling from 2 s up to 10 minutes.
BACKOFF_FIRST, BACKOFF_MAX = 2.0, 600.0
# A voicemail whose WAV header is still unwritten waits this many attempts
# (2 + 4 + 8 + 16 + 32 s) for the engine; then the message goes without it.
UNFINISHED_TRIES = 5
IDLE_WAIT = 30.0   # look again at least this often (a row written by a `pbx` command outside the appliance)


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: `sha256=` and the hex HMAC-SHA256 of the body (RFC 2104)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(attempts: int, first: float = BACKOFF_FIRST, most: float = BACKOFF_MAX) -> float:
    return min(most, first * (2 ** max(0, attempts - 1)))


def body_of(event_id: int, kind: str, stored: str) -> bytes:
    """What is POSTed: the stored event with its outbox id and kind."""
    return json.dumps({"id": event_id, "kind": kind, **json.loads(stored)}, ensure_ascii=False,
                      sort_keys=True).encode()


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    """One attempt; raises OSError (urllib's errors are OSErrors) unless the answer is 2xx."""
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        if not 200 <= resp.status < 300:
            raise OSError(f"HTTP {resp.status}")


class Deliverer:
    """The worker thread; it opens its own store connection (a connection belongs to one thread)."""

    def __init__(self, data: str | Path, *, clock: Callable[[], float] = time.time,
                 first_backoff: float = BACKOFF_FIRST, max_backoff: float = BACKOFF_MAX,
                 sender: Callable[[str, bytes, dict[str, str], float], None] = post,
                 mailer: Callable[[MailConfig, EmailMessage], None] = send):
        self.data = data
        self.clock = clock
        self.first_backoff, self.max_backoff = first_backoff, max_backoff
        self.sender = sender
        self.mailer = mailer
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="notify", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        """A new event was written: look now (any thread)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _main(self) -> None:
        from appliance.store import Store
        from appliance.store.missed import Outbox

        with Store(self.data) as store:
            outbox = Outbox(store)
            while not self._stopping.is_set():
                try:
                    wait = self.run_once(store, outbox)
                except Exception:  # noqa: BLE001 - the worker must outlive one bad turn
                    log.exception("notify: a delivery turn failed")
                    wait = IDLE_WAIT
                self._wake.wait(wait)
                self._wake.clear()

    def run_once(self, store, outbox) -> float:
        """Try every URL's head event and every e-mail that is due; returns how long to wait before the next turn."""
        return min(self._webhooks(store, outbox), self.mail_once(store))

    def mail_once(self, store) -> float:
        """Send every e-mail that is due; returns how long until the next one is."""
        from appliance.store.mail import MailOutbox

        mails = MailOutbox(store)
        config = MailConfig.from_setting(store.get_setting("mail"))
        if not config.enabled:
            dropped = mails.drop_all() if mails.pending() else 0
            if dropped:
                log.warning("mail: %d messages dropped: mail is not configured (no host or from address)", dropped)
            return IDLE_WAIT
        wait = IDLE_WAIT
        due = mails.due(self.clock())
        for i, m in enumerate(due):
            if self._stopping.is_set():
                break
            try:
                self.mailer(config, self._message(config, m))
            except MailRefused as e:
                # A server that cannot be used at all fails every message now: they all wait,
                # each with the reason, rather than each waiting for its own time-out in turn.
                for w in ([m] if e.this_message else due[i:]):
                    delay = backoff(w.attempts + 1, self.first_backoff, self.max_backoff)
                    mails.failed(w.id, self.clock() + delay, str(e))
                    log.warning("mail: message %d (%s) to %s not sent: %s; again in %.0f s", w.id, w.kind, w.to, e,
                                delay)
                    wait = min(wait, delay)
                if e.this_message:
                    continue
                break
            mails.sent(m.id)
            log.info("mail: message %d (%s) sent to %s", m.id, m.kind, m.to)
        later = mails.next_at()
        if later is not None:
            wait = min(wait, max(0.0, later - self.clock()))
        return wait

    def _message(self, config: MailConfig, m) -> EmailMessage:
        """The e-mail of an outbox row; a voicemail's recording is read now, once the engine finished it."""
        attachment = None
        if m.attachment:
            path = Path(m.attachment)
            voicemail = (Path(self.data) / "voicemail").resolve()
            if not path.resolve().is_relative_to(voicemail):
                raise MailRefused(f"the attachment {path} is not a voicemail recording; not sent", this_message=True)
            if path.is_file():
                try:
                    with wave.open(str(path), "rb") as w:
                        finished = w.getnframes() > 0
                except (OSError, EOFError, wave.Error):
                    finished = False
                if finished:
                    attachment = (path.name, path.read_bytes())
                elif m.attempts < UNFINISHED_TRIES:
                    raise MailRefused(f"the recording {path.name} is not finished yet", this_message=True)
                else:
                    log.warning("mail: message %d goes without its recording %s, which has no sound", m.id, path)
            else:
                log.warning("mail: message %d goes without its recording %s, which was deleted", m.id, path)
        return compose(config, m.to, m.subject, m.body, attachment)

    def _webhooks(self, store, outbox) -> float:
        config = NotifyConfig.from_setting(store.get_setting("notify"))
        dropped = outbox.drop_urls_except(config.urls)
        if dropped:
            log.warning("notify: %d deliveries to URLs no longer configured were dropped", dropped)
        wait = IDLE_WAIT
        for d in outbox.heads():
            if self._stopping.is_set():
                break
            now = self.clock()
            if d.next_at > now:
                wait = min(wait, d.next_at - now)
                continue
            body = body_of(d.event_id, d.kind, d.body)
            headers = {"X-PBX-Event": d.kind, "X-PBX-Event-Id": str(d.event_id), SIGNATURE_HEADER: sign(config.secret, body)}
            try:
                self.sender(d.url, body, headers, config.timeout_seconds)
            except (OSError, ValueError, http.client.HTTPException) as e:
                delay = backoff(d.attempts + 1, self.first_backoff, self.max_backoff)
                outbox.failed(d.event_id, d.url, self.clock() + delay, f"{type(e).__name__}: {e}")
                log.info("notify: %s refused event %d (%s); again in %.0f s", d.url, d.event_id, e, delay)
                wait = min(wait, delay)
                continue
            outbox.delivered(d.event_id, d.url)
            wait = 0.0    # the URL's next event may be waiting
        return wait
