"""Missed-call cases in the appliance: finished calls in, cases and their events out.

`MissedService` is the one writer of cases.  Inside `pbx run` it hears every
event the appliance publishes (`on_event`); for `CallEnded` and `CallMissed`
it reads the call's record from the store (the engine's recorder thread may
write it a moment after the event, so an unfinished record is read again
shortly) and applies the rules of appliance.missed.cases.  `pbx missed` uses
the same class on the store when the appliance is not running.

Every change is saved with its outbox event (and its e-mail, when one goes
out) in one transaction, then published to control subscribers:

    {"kind": "MissedCaseOpened" | "MissedCaseJoined" | "MissedCaseAssigned" | "MissedCaseEscalated"
             | "MissedCaseClosed",
     "at": ISO, "call_id": id or null, "case": {the case's row}}

A timer (`tick`, every TICK_SECONDS inside `pbx run`) escalates open cases
past their deadline (appliance.missed.workhours) and writes the owner's daily
summary when it is due.

`auto` (appliance.missed.dialer) calls open cases back automatically when
`missed.auto_callback` is on; a finished call that was one of its attempts
is settled there (`file_call` hands it over first), so it closes its case
once, as `callback`.  A failed attempt is told to subscribers as
`MissedCallbackFailed` {"case", "attempts"}.

Control commands:

    missed.list   {all?: bool}                    -> {"cases": [case rows], "open": n}
    missed.done   {id, note?, by?}                -> {"case": row}
    missed.assign {id, ext, by?}                  -> {"case": row}
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from appliance.missed import cases as mc, letters, workhours
from appliance.missed.cases import Call, CallKind, Case, CaseError, Ending
from appliance.missed.config import Escalation, escalation_of, rules_of
from appliance.missed.dialer import AutoDialer
from appliance.notify.config import NotifyConfig
from appliance.notify.mail import MailConfig, summary_minutes
from appliance.routing.schedule import Clock
from appliance.store import IN_PROGRESS, Store
from appliance.store.mail import SUMMARY_SENT, MailOutbox, email_of
from appliance.store.missed import MissedTables, Outbox

log = logging.getLogger("appliance.missed")

OPENED, JOINED, ASSIGNED, CLOSED = "MissedCaseOpened", "MissedCaseJoined", "MissedCaseAssigned", "MissedCaseClosed"
ESCALATED = "MissedCaseEscalated"
ATTEMPT_FAILED = "MissedCallbackFailed"   # an automatic callback did not reach the customer (to subscribers only)
BY_ESCALATION = "escalation"   # `assigned_by` of an escalated case: it is escalated once
TICK_SECONDS = 30.0            # how often the timer looks for deadlines and the daily summary
# A recording larger than this is not attached (a mail server refuses big
# messages; 3 minutes of 8 kHz 16-bit WAV is about 2.9 MB).
MAX_ATTACHMENT = 10 * 1024 * 1024
CALL_EVENTS = frozenset({"CallEnded", "CallMissed"})
# The engine's recorder writes a record soon after its event; look again this
# often, this many times, before leaving the call to the next start's catch-up.
RETRY_SECONDS, RETRIES = 0.1, 100
MAX_NOTE = 500


class MissedError(ValueError):
    """A missed command refused: no such case, no such extension, a closed case."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class MissedService:
    def __init__(self, store: Store, emit: Callable[[dict], None] | None = None,
                 clock: Callable[[], datetime] = utc_now, kick: Callable[[], None] | None = None):
        self.store = store
        self.emit = emit or (lambda event: None)
        self.clock = clock
        self.kick = kick or (lambda: None)   # wakes the outbox's worker after a commit
        self.tables = MissedTables(store)
        self.outbox = Outbox(store)
        self.mails = MailOutbox(store)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.auto = AutoDialer(self)   # automatic callbacks; dials once the appliance connects the engine

    # -- calls in ------------------------------------------------------------

    def on_event(self, event: dict) -> None:
        """Any event the appliance publishes; the ones about finished calls file their record."""
        kind = event.get("kind")
        if kind in CALL_EVENTS and event.get("call_id"):
            self._file_soon(str(event["call_id"]), RETRIES)
        elif kind == "CallsInterrupted":
            try:
                self.catch_up()
            except Exception:  # noqa: BLE001 - a subscriber must not break the event's other listeners
                log.exception("missed: filing interrupted calls failed")

    def _file_soon(self, call_id: str, tries: int) -> None:
        try:
            filed = self.file_call(call_id)
        except Exception:  # noqa: BLE001 - one bad record must not stop the others
            log.exception("missed: filing call %s failed", call_id)
            return
        if not filed and tries > 0 and self._loop is not None:
            self._loop.call_later(RETRY_SECONDS, self._file_soon, call_id, tries - 1)

    def file_call(self, call_id: str) -> bool:
        """Apply a finished call to the cases; False while its record is not written yet."""
        record = self.tables.call_record(call_id)
        if record is None or record.get("outcome") == IN_PROGRESS:
            return False
        if self.tables.has_call(call_id) or self.auto.settle(call_id):
            return True   # filed already, or an automatic callback: its attempt's, closing its case as `callback`
        call = Call.from_record(record, record["path"])
        kind = mc.classify(call, rules_of(self.store.get_setting("missed")))
        _FILERS[kind](self, call, record)
        return True

    def catch_up(self) -> int:
        """File the engine's open `missed` rows that no case holds yet (from before this part ran, or a crash)."""
        filed = 0
        for call_id in self.tables.unfiled_missed():
            filed += self.file_call(call_id)
        return filed

    def _missed(self, call: Call, record: dict) -> None:
        now = self.clock()
        with self.store.transaction():
            row = self.tables.open_case_of(call.number)
            if row is not None:
                case, kind = mc.join(Case.from_row(row), call), JOINED
            else:
                case, kind = mc.open_case(call, self._assignee(call, record), now), OPENED
            case = self._save(case)
            self.tables.add_call(case.id, call.id, call.at, call.wait_s, short=False)
            event = self._queue(kind, case, now, call.id)
            recording = _recording(record)
            if recording is not None:
                self._mail_voicemail(case, recording, now)
            elif kind == OPENED:
                self._mail_case(case, now)
        self._published(event)
        self.auto.poke()

    def _short(self, call: Call, record: dict) -> None:
        """A short abandon joins an open case of the number (the customer keeps trying), else is counted apart."""
        now = self.clock()
        with self.store.transaction():
            row = self.tables.open_case_of(call.number)
            if row is None:
                case = self._save(mc.short_abandon(call, now))
                self.tables.add_call(case.id, call.id, call.at, call.wait_s, short=True)
                return
            case = self._save(mc.join(Case.from_row(row), call))
            self.tables.add_call(case.id, call.id, call.at, call.wait_s, short=True)
            event = self._queue(JOINED, case, now, call.id)
        self._published(event)

    def _closing(self, call: Call, record: dict) -> None:
        how, by = mc.closing(call, mc.classify(call, rules_of(self.store.get_setting("missed"))))
        self.close_number(call.number, how, by, call_id=call.id)

    def _ignored(self, call: Call, record: dict) -> None:
        """Calls that neither open nor close a case (internal calls, short calls back, failures)."""

    def close_number(self, number: str, how: Ending, by: str, *, call_id: str | None = None,
                     note: str | None = None) -> dict | None:
        """Close the number's open case (a call back, an answered call, a successful callback); None: none open."""
        now = self.clock()
        with self.store.transaction():
            row = self.tables.open_case_of(mc.normalise(number))
            if row is None:
                return None
            case = self._save(mc.close(Case.from_row(row), how, by, now, note=note, call_id=call_id))
            self.tables.mark_missed_handled(self.tables.calls_of(case.id), by, case.closed_at, note or str(how))
            event = self._queue(CLOSED, case, now, call_id)
        self._published(event)
        return case.as_row()

    def callback_succeeded(self, number: str, by: str, call_id: str | None = None) -> dict | None:
        """The appliance's automatic callback reached the customer: their case ends."""
        return self.close_number(number, Ending.CALLBACK, by, call_id=call_id)

    def attempted(self, case_id: int) -> None:
        """An automatic callback of the case failed (its result is on the attempt): subscribers hear of it."""
        row = self.tables.case(case_id)
        if row is None:
            return
        at = self.clock().astimezone(timezone.utc).isoformat(timespec="milliseconds")
        self.emit({"kind": ATTEMPT_FAILED, "at": at, "call_id": None, "case": row,
                   "attempts": self.tables.attempts_of([case_id])[case_id]})

    def _assignee(self, call: Call, record: dict) -> str | None:
        """The caller's personal manager, else the `missed.assign_to` setting, else the first extension rung."""
        manager = self.tables.manager_of(call.number)
        if manager:
            return manager
        chosen = (self.store.get_setting("missed") or {}).get("assign_to")
        if chosen:
            return str(chosen)
        end = record["path"][-1] if record["path"] else {}
        for target in end.get("rung") or []:
            if self.store.extension(str(target)):
                return str(target)
        return None

    # -- people --------------------------------------------------------------

    def list(self, include_closed: bool = False) -> dict:
        rows = self.tables.cases(include_closed)
        names = self.tables.names_of(r["caller"] for r in rows)
        attempts = self.tables.attempts_of(r["id"] for r in rows)
        for row in rows:
            row["calls"] = self.tables.calls_of(row["id"])
            row["name"] = names.get(row["caller"], "")
            row["attempts"] = attempts.get(row["id"], [])
        return {"cases": rows, "open": self.tables.open_count()}

    def open_count(self) -> int:
        return self.tables.open_count()

    def done(self, case_id: Any, by: str, note: str | None = None) -> dict:
        """A person closes a case, with a note saying what was done."""
        now = self.clock()
        note = " ".join(str(note).split())[:MAX_NOTE] if note else None
        with self.store.transaction():
            case = self._case(case_id)
            case = self._save(self._guard(lambda: mc.close(case, Ending.DONE, _who(by), now, note=note)))
            self.tables.mark_missed_handled(self.tables.calls_of(case.id), case.closed_by, case.closed_at, note)
            event = self._queue(CLOSED, case, now, None)
        self._published(event)
        return {"case": case.as_row()}

    def assign(self, case_id: Any, extension: Any, by: str) -> dict:
        now = self.clock()
        ext = str(extension or "").strip()
        if not self.store.extension(ext):
            raise MissedError(f"no extension {ext!r} to assign the case to")
        with self.store.transaction():
            case = self._case(case_id)
            case = self._save(self._guard(lambda: mc.assign(case, ext, _who(by), now)))
            event = self._queue(ASSIGNED, case, now, None)
        self._published(event)
        return {"case": case.as_row()}

    def _case(self, case_id: Any) -> Case:
        try:
            row = self.tables.case(int(case_id))
        except (TypeError, ValueError):
            raise MissedError(f"a case id is a number, not {case_id!r}") from None
        if row is None:
            raise MissedError(f"no missed-call case {case_id}")
        return Case.from_row(row)

    @staticmethod
    def _guard(change: Callable[[], Case]) -> Case:
        try:
            return change()
        except CaseError as e:
            raise MissedError(str(e)) from None

    # -- the timer: deadlines and the daily summary ---------------------------

    def tick(self) -> None:
        """Escalate what is overdue, then write the daily summary if it is due."""
        self.escalate_due()
        self.summary_if_due()

    def escalate_due(self) -> list[dict]:
        """Give every open case past its deadline that nobody acted on to `missed.escalate_to`."""
        rule = escalation_of(self.store.get_setting("missed"))
        if rule is None or not self.store.extension(rule.escalate_to):
            return []
        now = self.clock()
        # A person assigned it, or it was escalated already: someone acted.
        waiting = [c for c in map(Case.from_row, self.tables.cases()) if c.assigned_by in (None, "system")]
        if not waiting:
            return []
        clock = self._working_hours(rule)
        return [self._escalate(case, rule, now) for case in waiting
                if workhours.overdue(mc.aware(case.opened_at), now, rule.deadline_minutes, clock)]

    def _escalate(self, case: Case, rule: Escalation, now: datetime) -> dict:
        before = case.assigned_to
        with self.store.transaction():
            case = self._save(mc.assign(case, rule.escalate_to, BY_ESCALATION, now))
            event = self._queue(ESCALATED, case, now, None)
            subject, text = letters.escalated(case.as_row(), self._facts(case), rule.deadline_minutes,
                                              before if before != rule.escalate_to else None)
            self._mail("escalated", email_of(self.store, rule.escalate_to) or self._mail_config().owner,
                       subject, text, now)
        log.info("missed: case %s open past %d working minutes, escalated to %s", case.id, rule.deadline_minutes,
                 rule.escalate_to)
        self._published(event)
        return case.as_row()

    def _working_hours(self, rule: Escalation) -> Clock | None:
        if rule.schedule is None:
            return None
        from appliance.routing.config import read

        extensions = {e["number"]: e["name"] for e in self.store.extensions()}
        routing = read(self.store.routing_document() or {}, extensions, timezone=self.store.timezone)
        schedule = routing.schedules.get(rule.schedule)
        if schedule is None:
            log.warning("missed: working_hours names schedule %r, which is gone; every minute counts", rule.schedule)
            return None
        return Clock(schedule)

    def summary_if_due(self) -> bool:
        """The owner's daily list of open cases, once a day at `mail.summary_at` (office time); True when written."""
        config = self._mail_config()
        if not config.enabled or not config.owner:
            return False
        now = self.clock()
        day = workhours.summary_due(now, self.store.timezone, summary_minutes(config.summary_at),
                                    self.store.get_setting(SUMMARY_SENT))
        if day is None:
            return False
        with self.store.transaction():
            rows = self.tables.cases()
            if rows:
                names = self.tables.names_of([r["caller"] for r in rows])
                subject, text = letters.summary(rows, names, letters.Facts(self._language(), self.store.timezone), now)
                self._mail("summary", config.owner, subject, text, now)
            self.store.set_setting(SUMMARY_SENT, day.isoformat())
        if rows:
            self.kick()
        return bool(rows)

    # -- mail ----------------------------------------------------------------

    def _mail_config(self) -> MailConfig:
        return MailConfig.from_setting(self.store.get_setting("mail"))

    def _language(self) -> str:
        return str((self.store.get_setting("engine") or {}).get("language") or "uk")

    def _facts(self, case: Case) -> letters.Facts:
        return letters.Facts(self._language(), self.store.timezone, self.tables.names_of([case.caller]).get(case.caller, ""))

    def _mail(self, kind: str, to: str | None, subject: str, text: str, now: datetime,
              attachment: str | None = None) -> None:
        """Keep a message in the mail outbox, inside the caller's transaction; nothing when mail is off or no one has an address."""
        if not to or not self._mail_config().enabled:
            return
        self.mails.add(kind, now.astimezone(timezone.utc).isoformat(timespec="milliseconds"), to, subject, text,
                       attachment)

    def _mail_case(self, case: Case, now: datetime) -> None:
        subject, text = letters.new_case(case.as_row(), self._facts(case))
        self._mail("case", email_of(self.store, case.assigned_to), subject, text, now)

    def _mail_voicemail(self, case: Case, recording: dict, now: datetime) -> None:
        """To the box's own extension, else the case's person, else the owner; the WAV goes with it."""
        path = Path(str(recording.get("file") or ""))
        try:
            attach = path.is_file() and path.stat().st_size <= MAX_ATTACHMENT
        except OSError:
            attach = False
        to = (email_of(self.store, str(recording.get("box") or "")) or email_of(self.store, case.assigned_to)
              or self._mail_config().owner)
        subject, text = letters.voicemail(case.as_row(), self._facts(case), attached=attach)
        self._mail("voicemail", to, subject, text, now, str(path) if attach else None)

    # -- saving and telling --------------------------------------------------

    def _save(self, case: Case) -> Case:
        case_id = self.tables.save_case(case.as_row())
        return Case.from_row({**case.as_row(), "id": case_id})

    def _queue(self, kind: str, case: Case, now: datetime, call_id: str | None) -> dict:
        """The event, put in the outbox inside the caller's transaction."""
        at = now.astimezone(timezone.utc).isoformat(timespec="milliseconds")
        event = {"kind": kind, "at": at, "call_id": call_id, "case": case.as_row()}
        urls = NotifyConfig.from_setting(self.store.get_setting("notify")).urls
        self.outbox.add(kind, at, {k: v for k, v in event.items() if k != "kind"}, urls)
        return event

    def _published(self, event: dict) -> None:
        """After the commit: subscribers and the outbox's worker hear of it."""
        self.kick()
        self.emit(event)

    # -- inside the appliance ------------------------------------------------

    def register(self, control: Any) -> None:
        from appliance.control import ControlError

        def guarded(fn: Callable[[dict], dict]) -> Callable[[dict], dict]:
            def handler(args: dict) -> dict:
                try:
                    return fn(args)
                except MissedError as e:
                    raise ControlError(str(e)) from None
            return handler

        control.command("missed.list", guarded(lambda a: self.list(bool(a.get("all")))))
        control.command("missed.done", guarded(lambda a: self.done(a.get("id"), a.get("by") or "control client",
                                                                   a.get("note"))))
        control.command("missed.assign", guarded(lambda a: self.assign(a.get("id"), a.get("ext"),
                                                                       a.get("by") or "control client")))

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Follow the events from now on, after filing what was missed while this part was not running."""
        self._loop = loop
        try:
            self.catch_up()
        except Exception:  # noqa: BLE001 - the appliance runs on; the next start tries again
            log.exception("missed: filing earlier missed calls failed")
        self._tick_and_again()
        self.auto.start(loop)

    def _tick_and_again(self) -> None:
        try:
            self.tick()
        except Exception:  # noqa: BLE001 - the timer must outlive one bad turn
            log.exception("missed: deadlines or the daily summary failed")
        if self._loop is not None:
            self._timer = self._loop.call_later(TICK_SECONDS, self._tick_and_again)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.auto.stop()
        self._loop = None


_FILERS: dict[CallKind, Callable[[MissedService, Call, dict], None]] = {
    CallKind.MISSED: MissedService._missed,
    CallKind.SHORT_ABANDON: MissedService._short,
    CallKind.CALLED_BACK: MissedService._closing,
    CallKind.ANSWERED: MissedService._closing,
    CallKind.OTHER: MissedService._ignored,
}


def _recording(record: dict) -> dict | None:
    """The voicemail the call left (the engine's `voicemail` note with its file), None when it left none."""
    if record.get("outcome") != "voicemail":
        return None
    for step in reversed(record.get("path") or []):
        if isinstance(step, dict) and step.get("kind") == "voicemail" and step.get("file"):
            return step
    return None


def _who(by: object) -> str:
    text = " ".join(str(by or "").split())
    if not text:
        raise MissedError("say who handles the case (by)")
    return text[:80]
