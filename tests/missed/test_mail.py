"""E-mail about missed calls, through a real SMTP server on loopback (aiosmtpd): a new case, a voicemail with
its recording, the daily summary; servers that refuse (550, a wrong login, nothing listening) keep the message
with a clear reason and send it later; the `mail` section and extensions' `email` in the configuration file."""

from __future__ import annotations

import email
import email.policy
import logging
import wave
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from appliance.configfile import ConfigFileError, export_config, import_config, load_text
from appliance.missed.service import MissedService
from appliance.notify.deliver import Deliverer
from appliance.store import Store
from appliance.store.mail import MailOutbox
from appliance.store.missed import Outbox
from tests.conftest import free_port

T0 = datetime(2025, 3, 4, 8, 0, tzinfo=timezone.utc)     # Tuesday 10:00 in Kyiv
CUSTOMER = "+380671234567"


class Server:
    """An SMTP server on 127.0.0.1 that keeps what it accepted; it may refuse recipients or want a login."""

    def __init__(self, refuse: str | None = None, login: tuple[str, str] | None = None):
        self.received: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse = refuse
        self.refuse_only: set[str] | None = None    # refuse these recipients only
        server = self

        class Handler:
            async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
                if server.refuse and (server.refuse_only is None or address in server.refuse_only):
                    return server.refuse
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, smtp, session, envelope):
                server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                server.received.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
                return "250 Message accepted for delivery"

        def authenticator(smtp, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and (auth_data.login.decode(), auth_data.password.decode()) == login
            return AuthResult(success=ok, handled=False)   # not handled: the server answers 535 itself

        self.port = free_port()
        options = {"authenticator": authenticator, "auth_require_tls": False} if login else {}
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **options)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp():
    server = Server()
    yield server
    server.stop()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def seconds(self) -> float:
        return self.now.timestamp()


def office(port: int, *, owner: str = "boss@example.com", extra: str = "", language: str = "uk") -> str:
    return f"""\
version: 1
timezone: Europe/Kyiv
calls:
  language: {language}
extensions:
  - {{number: "101", name: Olha, password: secret-101, email: olha@example.com}}
  - {{number: "102", name: Petro, password: secret-102, email: petro@example.com}}
  - {{number: "103", name: Iryna, password: secret-103}}
contacts:
  - {{number: "0671234567", name: Будівельний двір, manager: "102"}}
routing:
  unmatched: hangup
mail:
  host: 127.0.0.1
  port: {port}
  security: none
  from: "Офісна АТС <pbx@example.com>"
  owner: {owner}
  summary_at: "18:00"
  timeout_seconds: 5
{extra}"""


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(tmp_path, smtp):
    with Store(tmp_path) as s:
        import_config(s, office(smtp.port))
        yield s


@pytest.fixture
def svc(store, clock):
    return MissedService(store, None, clock)


@pytest.fixture
def worker(tmp_path, clock):
    return Deliverer(tmp_path, clock=clock.seconds)


def finish(store: Store, call_id: str, *, caller: str = CUSTOMER, at: datetime = T0, outcome: str = "missed",
           recording: Path | None = None, box: str = "102") -> None:
    path = [{"kind": "group", "group": "office"}]
    if recording is not None:
        path.append({"kind": "voicemail", "box": box, "file": str(recording)})
    path.append({"kind": "end", "reason": "voicemail" if recording else "no answer", "rung": ["103", "101"]})
    row = {"id": call_id, "started_at": (at - timedelta(seconds=25)).isoformat(), "ended_at": at.isoformat(),
           "direction": "inbound", "caller": caller, "dialled": "+380441112233", "trunk": "provider",
           "extension": None, "answered_by": None, "outcome": outcome, "wait_s": 25.0, "talk_s": 0.0, "path": path}
    store.finish_call(row, {"caller": caller, "dialled": "+380441112233", "at": at.isoformat(), "manager": None})


def recording(data: Path, box: str = "102") -> Path:
    folder = data / "voicemail" / box
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "2025-03-04T07-59-35-c1.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(range(256)) * 64)
    return path


def deliver(worker: Deliverer, store: Store) -> float:
    return worker.run_once(store, Outbox(store))


def test_a_new_case_mails_the_person_it_was_given_to(store, svc, worker, smtp):
    finish(store, "c1")
    svc.file_call("c1")
    deliver(worker, store)
    [msg] = smtp.received
    assert smtp.envelopes == [("pbx@example.com", ["petro@example.com"])]   # the contact's manager
    assert msg["To"] == "petro@example.com" and "pbx@example.com" in msg["From"]
    assert msg["Subject"] == "Пропущений дзвінок: Будівельний двір (+380671234567)"
    text = msg.get_content()
    assert "Вам доручено пропущений дзвінок" in text
    assert "Перший дзвінок: 04.03.2025 10:00" in text and "чекав 25 с" in text and "у групі" in text
    assert MailOutbox(store).pending() == 0


def test_messages_follow_the_language_callers_hear(tmp_path, smtp, clock):
    with Store(tmp_path / "en") as store:
        import_config(store, office(smtp.port, language="en"))
        finish(store, "c1")
        MissedService(store, None, clock).file_call("c1")
        Deliverer(tmp_path / "en", clock=clock.seconds).run_once(store, Outbox(store))
    [msg] = smtp.received
    assert msg["Subject"] == "Missed call: Будівельний двір (+380671234567)" and msg["To"] == "petro@example.com"
    assert "A missed call was given to you" in msg.get_content()
    assert "First call: 2025-03-04 10:00" in msg.get_content()


def test_a_person_without_an_address_gets_no_mail(store, svc, worker, smtp):
    store.set_setting("missed", {"assign_to": "103"})
    finish(store, "c1", caller="+380501112233")
    svc.file_call("c1")
    assert MailOutbox(store).pending() == 0


def test_a_voicemail_goes_with_its_recording(store, svc, worker, smtp, tmp_path):
    wav = recording(tmp_path)
    finish(store, "c1", outcome="voicemail", recording=wav)
    svc.file_call("c1")
    deliver(worker, store)
    [msg] = smtp.received      # one message: the voicemail one says the case is new too
    assert msg["To"] == "petro@example.com"
    assert msg["Subject"] == "Голосове повідомлення від Будівельний двір (+380671234567)"
    assert "запис у вкладенні" in msg.get_body(("plain",)).get_content()
    [part] = list(msg.iter_attachments())
    assert part.get_content_type() == "audio/wav" and part.get_filename() == wav.name
    assert part.get_content() == wav.read_bytes()


def test_a_recording_the_engine_is_still_writing_waits(store, svc, worker, smtp, tmp_path, clock):
    wav = recording(tmp_path)
    data = wav.read_bytes()
    wav.write_bytes(data[:44])                              # the header's sizes not written yet...
    wav.write_bytes(wav.read_bytes()[:40] + b"\0\0\0\0" + data[44:])
    finish(store, "c1", outcome="voicemail", recording=wav)
    svc.file_call("c1")
    deliver(worker, store)
    [row] = MailOutbox(store).waiting()
    assert smtp.received == [] and "not finished yet" in row.last_error
    with wave.open(str(wav), "wb") as w:                   # ...until the engine closes the file
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(data[44:])
    clock.now += timedelta(seconds=2)
    deliver(worker, store)
    [msg] = smtp.received
    assert [p.get_filename() for p in msg.iter_attachments()] == [wav.name]


def test_the_daily_summary_goes_to_the_owner_once_at_its_time(store, svc, worker, smtp, clock):
    finish(store, "c1")
    svc.file_call("c1")
    finish(store, "c2", caller="+380501112233", at=T0 + timedelta(minutes=30))
    svc.file_call("c2")
    finish(store, "c3", caller="+380501112233", at=T0 + timedelta(minutes=40))
    svc.file_call("c3")
    deliver(worker, store)
    smtp.received.clear()
    clock.now = datetime(2025, 3, 4, 15, 59, tzinfo=timezone.utc)     # 17:59 in Kyiv
    assert not svc.summary_if_due()
    clock.now = datetime(2025, 3, 4, 16, 0, tzinfo=timezone.utc)
    assert svc.summary_if_due()
    assert not svc.summary_if_due()                                   # once a day
    deliver(worker, store)
    [msg] = smtp.received
    assert msg["To"] == "boss@example.com" and msg["Subject"] == "Необроблені пропущені дзвінки: 2"
    lines = [line for line in msg.get_content().splitlines() if line.startswith("- ")]
    assert lines == [
        "- Будівельний двір (+380671234567): 1 дзвінок, перший 04.03.2025 10:00, відкрита 8 год, доручена: 102",
        "- +380501112233: 2 дзвінки, перший 04.03.2025 10:30, відкрита 7 год 30 хв, доручена: 103",
    ]


def test_no_summary_on_a_day_with_nothing_open(store, svc, worker, smtp, clock):
    clock.now = datetime(2025, 3, 4, 16, 0, tzinfo=timezone.utc)
    assert not svc.summary_if_due()
    assert MailOutbox(store).pending() == 0 and store.get_setting("mail_summary_sent") == "2025-03-04"


def test_a_server_answering_550_keeps_the_message_with_its_reason_and_it_goes_later(store, svc, worker, smtp,
                                                                                    clock, caplog):
    smtp.refuse = "550 5.1.1 <petro@example.com>: mailbox unavailable"
    finish(store, "c1")
    svc.file_call("c1")
    with caplog.at_level(logging.WARNING, logger="appliance.notify"):
        wait = deliver(worker, store)
    [row] = MailOutbox(store).waiting()
    assert row.attempts == 1 and row.next_at == clock.seconds() + 2 and wait == 2
    assert "refused the recipient" in row.last_error and "550 5.1.1" in row.last_error
    assert "mailbox unavailable" in caplog.text and "not sent" in caplog.text
    smtp.refuse = None
    deliver(worker, store)                       # not due yet: not tried
    assert smtp.received == [] and MailOutbox(store).waiting()[0].attempts == 1
    clock.now += timedelta(seconds=2)
    deliver(worker, store)
    assert [m["To"] for m in smtp.received] == ["petro@example.com"] and MailOutbox(store).pending() == 0


def test_nothing_listening_is_a_clear_reason_and_the_back_off_doubles(store, svc, worker, clock):
    store.set_setting("mail", {**store.get_setting("mail"), "port": free_port()})
    finish(store, "c1")
    svc.file_call("c1")
    for attempt, delay in ((1, 2), (2, 4), (3, 8)):
        deliver(worker, store)
        [row] = MailOutbox(store).waiting()
        assert row.attempts == attempt and row.next_at == clock.seconds() + delay
        assert "refused the connection: no SMTP server listens there" in row.last_error
        clock.now += timedelta(seconds=delay)


def test_a_refused_recipient_does_not_hold_up_the_others(store, svc, worker, smtp):
    smtp.refuse, smtp.refuse_only = "550 5.1.1 no such user", {"petro@example.com"}
    finish(store, "c1")                                   # to 102, Petro
    store.set_setting("missed", {"assign_to": "101"})
    finish(store, "c2", caller="+380501112233")           # to 101, Olha
    svc.file_call("c1")
    svc.file_call("c2")
    deliver(worker, store)
    assert [m["To"] for m in smtp.received] == ["olha@example.com"]
    [row] = MailOutbox(store).waiting()
    assert row.to == "petro@example.com" and row.attempts == 1


def test_a_server_that_cannot_be_reached_fails_every_waiting_message_in_one_attempt(store, svc, worker, clock):
    port = free_port()
    store.set_setting("mail", {**store.get_setting("mail"), "port": port})
    attempts = []
    real = worker.mailer
    worker.mailer = lambda config, message: attempts.append(message["To"]) or real(config, message)
    finish(store, "c1")
    store.set_setting("missed", {"assign_to": "101"})
    finish(store, "c2", caller="+380501112233")
    svc.file_call("c1")
    svc.file_call("c2")
    assert deliver(worker, store) == 2
    assert len(attempts) == 1
    rows = MailOutbox(store).waiting()
    assert [(r.attempts, r.next_at) for r in rows] == [(1, clock.seconds() + 2)] * 2
    assert all("refused the connection" in r.last_error for r in rows)


def test_a_wrong_login_is_said_plainly(tmp_path, clock):
    server = Server(login=("pbx", "right-password"))
    try:
        with Store(tmp_path) as store:
            import_config(store, office(server.port, extra="  username: pbx\n  password: wrong-password\n"))
            finish(store, "c1")
            MissedService(store, None, clock).file_call("c1")
            worker = Deliverer(tmp_path, clock=clock.seconds)
            worker.run_once(store, Outbox(store))
            [row] = MailOutbox(store).waiting()
            assert "refused the login of 'pbx'" in row.last_error and "535" in row.last_error
            mail = store.get_setting("mail")
            store.set_setting("mail", {**mail, "password": "right-password"})
            clock.now += timedelta(seconds=2)
            worker.run_once(store, Outbox(store))
            assert MailOutbox(store).pending() == 0 and len(server.received) == 1
    finally:
        server.stop()


def test_mail_switched_off_keeps_nothing(store, svc, worker, smtp):
    finish(store, "c1")
    svc.file_call("c1")
    store.set_setting("mail", {})
    deliver(worker, store)
    assert MailOutbox(store).pending() == 0 and smtp.received == []
    finish(store, "c2", caller="+380501112233")
    svc.file_call("c2")
    assert MailOutbox(store).pending() == 0


# -- the configuration file ------------------------------------------------------


@pytest.mark.parametrize("line, words", [
    ("  port: 70000", "port must be a whole number from 1 to 65535, not 70000 (at mail.port)"),
    ("  security: ssl", "security must be one of none, starttls, tls, not 'ssl' (at mail.security)"),
    ("  from: the office", "from must be an e-mail address such as office@example.com, not 'the office' (at mail.from)"),
    ("  owner: boss@", "owner must be an e-mail address"),
    ("  summary_at: '25:00'", "summary_at must be a time of day such as 09:00"),
    ("  timeout_seconds: 0", "timeout_seconds must be a number of seconds from 1 to 120"),
    ("  username: pbx", "a login needs both username and password; password is missing"),
    ("  sender: x@example.com", "unknown key 'sender' in mail"),
])
def test_a_bad_mail_value_is_refused_with_its_line(line, words):
    text = office(2525).replace("  timeout_seconds: 5\n", line + "\n")
    with pytest.raises(ConfigFileError) as e:
        load_text(text)
    assert words in str(e.value)
    assert e.value.line == text.splitlines().index(line) + 1 or words.startswith("a login")


def test_a_bad_extension_address_is_refused_with_its_line():
    text = office(2525).replace("email: olha@example.com", "email: olha at example.com")
    with pytest.raises(ConfigFileError) as e:
        load_text(text)
    assert e.value.line == 6 and "email must be an e-mail address" in str(e.value) and "extensions[0].email" in str(e.value)


def test_mail_and_addresses_are_exported_and_imported_back(tmp_path):
    with Store(tmp_path / "a") as a:
        import_config(a, office(2525))
        exported = export_config(a)
        assert a.extension("101")["email"] == "olha@example.com" and a.extension("103")["email"] is None
    assert "  email: olha@example.com\n" in exported and "  summary_at: 18:00\n" in exported
    with Store(tmp_path / "b") as b:
        import_config(b, exported)
        assert export_config(b) == exported
        assert b.get_setting("mail")["from"] == "Офісна АТС <pbx@example.com>"
    without = exported.replace("  email: olha@example.com\n", "")
    with Store(tmp_path / "a") as a:
        import_config(a, without)
        assert a.extension("101")["email"] is None      # an address taken out of the file is gone


def test_every_mail_key_is_documented():
    from appliance.notify.mail import KEYS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "config.md").read_text()
    section = doc[doc.index("## `mail`"):]
    section = section[:section.index("\n## ", 1)]
    assert [k for k in KEYS if f"`{k}`" not in section] == []
    assert "`email`" in doc[doc.index("## `extensions`"):]
