"""E-mail: the `mail` section of the configuration, and sending one message over SMTP.

    mail:
      host: smtp.example.com
      port: 587                  # default by security: 25 none, 587 starttls, 465 tls
      security: starttls         # none | starttls (RFC 3207) | tls (implicit TLS, RFC 8314)
      username: pbx@example.com  # with password, or neither
      password: "..."
      from: "Office PBX <pbx@example.com>"
      owner: boss@example.com    # the daily summary of unhandled missed calls goes here
      summary_at: "09:00"        # when, in the office's time zone
      timeout_seconds: 20        # one attempt's limit

Without `host` no mail is kept.  Messages wait in the mail outbox
(appliance.store.mail) and the outbox's worker (appliance.notify.deliver)
sends them with `send`; a refusal is a `MailRefused` whose text says what the
server did, in words the owner can act on.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any, Mapping

from appliance.errors import ConfigError

KEYS = ("host", "port", "security", "username", "password", "from", "owner", "summary_at", "timeout_seconds")
SECURITIES = ("none", "starttls", "tls")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}
TIMEOUT_RANGE = (1, 120)
DEFAULT_SUMMARY_AT = "09:00"


@dataclass(frozen=True)
class MailConfig:
    host: str = ""
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password: str = ""
    sender: str = ""
    owner: str = ""
    summary_at: str = DEFAULT_SUMMARY_AT
    timeout_seconds: float = 20.0

    @property
    def enabled(self) -> bool:
        return bool(self.host and self.sender)

    @classmethod
    def from_setting(cls, setting: Mapping[str, Any] | None) -> "MailConfig":
        s = dict(setting or {})
        security = str(s.get("security") or "starttls")
        return cls(str(s.get("host") or ""), int(s.get("port") or DEFAULT_PORTS.get(security, 587)), security,
                   str(s.get("username") or ""), str(s.get("password") or ""), str(s.get("from") or ""),
                   str(s.get("owner") or ""), str(s.get("summary_at") or DEFAULT_SUMMARY_AT),
                   float(s.get("timeout_seconds", 20)))


class MailRefused(Exception):
    """One attempt failed; the text says why (it goes to the log and onto the outbox row).

    `this_message`: the server refused this message (its recipient, sender or
    content); otherwise the server itself could not be used (not reachable, a
    wrong login, TLS), and every other message would fail the same way now."""

    def __init__(self, reason: str, this_message: bool = False):
        super().__init__(reason)
        self.this_message = this_message


# -- checking -------------------------------------------------------------------


def is_address(text: str) -> bool:
    """An RFC 5322 mailbox: `name@domain`, optionally as `Name <name@domain>`; no line breaks."""
    if "\r" in text or "\n" in text:
        return False
    _name, addr = parseaddr(text)
    local, at, domain = addr.rpartition("@")
    return bool(at and local and domain and "." in domain and not any(c.isspace() for c in addr)
                and "@" not in domain and not domain.startswith(".") and not domain.endswith("."))


def check_address(value: Any, path: tuple, what: str) -> str:
    if not isinstance(value, str) or not is_address(value.strip()):
        raise ConfigError(f"{what} must be an e-mail address such as office@example.com, not {value!r}", path)
    return value.strip()


def summary_minutes(text: str) -> int:
    """"09:30" -> 570; ValueError for anything that is not a time of day."""
    hours, sep, minutes = text.partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2 or len(hours) > 2:
        raise ValueError(text)
    h, m = int(hours), int(minutes)
    if h > 23 or m > 59:
        raise ValueError(text)
    return h * 60 + m


def parse_mail(item: Any) -> dict:
    """Check the section; returns the keys given, ready to store."""
    path: tuple = ("mail",)
    if item is None:
        return {}
    if not isinstance(item, dict):
        raise ConfigError("mail must be a mapping", path)
    for key in item:
        if key not in KEYS:
            raise ConfigError(f"unknown key {key!r} in mail (known: {', '.join(KEYS)})", (*path, key))
    out: dict[str, Any] = {}
    for key in ("host", "username", "password"):
        if key in item:
            value = item[key]
            if not isinstance(value, str) or any(c in value for c in "\r\n"):
                raise ConfigError(f"{key} must be text on one line", (*path, key))
            out[key] = value.strip() if key != "password" else value
    if "host" in out and (not out["host"] or any(c.isspace() or c in "/@" for c in out["host"])):
        raise ConfigError(f"host must be the SMTP server's name or address, not {item['host']!r}", (*path, "host"))
    if "security" in item:
        if item["security"] not in SECURITIES:
            raise ConfigError(f"security must be one of {', '.join(SECURITIES)}, not {item['security']!r}",
                              (*path, "security"))
        out["security"] = item["security"]
    if "port" in item:
        port = item["port"]
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ConfigError(f"port must be a whole number from 1 to 65535, not {port!r}", (*path, "port"))
        out["port"] = port
    if "from" in item:
        out["from"] = check_address(item["from"], (*path, "from"), "from")
    if "owner" in item:
        out["owner"] = check_address(item["owner"], (*path, "owner"), "owner")
    if "summary_at" in item:
        try:
            summary_minutes(str(item["summary_at"]))
        except ValueError:
            raise ConfigError(f"summary_at must be a time of day such as 09:00, not {item['summary_at']!r}",
                              (*path, "summary_at")) from None
        out["summary_at"] = str(item["summary_at"])
    if "timeout_seconds" in item:
        value, (low, high) = item["timeout_seconds"], TIMEOUT_RANGE
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ConfigError(f"timeout_seconds must be a number of seconds from {low} to {high}",
                              (*path, "timeout_seconds"))
        out["timeout_seconds"] = value
    if bool(out.get("username")) != bool(out.get("password")):
        missing = "password" if out.get("username") else "username"
        raise ConfigError(f"a login needs both username and password; {missing} is missing", (*path, missing))
    if out.get("host") and "from" not in out:
        raise ConfigError("mail needs a from address (the sender of every message) when a host is given", path)
    return out


# -- sending --------------------------------------------------------------------


def compose(config: MailConfig, to: str, subject: str, text: str,
            attachment: tuple[str, bytes] | None = None) -> EmailMessage:
    """One plain-text message (UTF-8), with a WAV file attached when given as (file name, bytes)."""
    msg = EmailMessage()
    msg["From"] = config.sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=parseaddr(config.sender)[1].rpartition("@")[2] or None)
    msg.set_content(text)
    if attachment is not None:
        name, data = attachment
        msg.add_attachment(data, maintype="audio", subtype="wav", filename=name)
    return msg


def _server_said(e: smtplib.SMTPResponseException) -> str:
    text = e.smtp_error.decode("utf-8", "replace") if isinstance(e.smtp_error, bytes) else str(e.smtp_error)
    return f"{e.smtp_code} {' '.join(text.split())}"


def reason_of(e: BaseException, config: MailConfig) -> str:
    """What went wrong, for the log and the outbox row: who refused what, and the server's words."""
    where = f"{config.host}:{config.port}"
    if isinstance(e, smtplib.SMTPAuthenticationError):
        return f"the SMTP server {where} refused the login of {config.username!r}: {_server_said(e)}"
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        said = "; ".join(f"{rcpt}: {code} {msg.decode('utf-8', 'replace') if isinstance(msg, bytes) else msg}"
                         for rcpt, (code, msg) in e.recipients.items())
        return f"the SMTP server {where} refused the recipient ({said})"
    if isinstance(e, smtplib.SMTPSenderRefused):
        return f"the SMTP server {where} refused the sender {config.sender!r}: {_server_said(e)}"
    if isinstance(e, smtplib.SMTPDataError):
        return f"the SMTP server {where} refused the message: {_server_said(e)}"
    if isinstance(e, smtplib.SMTPNotSupportedError):
        return f"the SMTP server {where} does not offer what was asked ({e}); check security and the login"
    if isinstance(e, smtplib.SMTPResponseException):
        return f"the SMTP server {where} answered {_server_said(e)}"
    if isinstance(e, smtplib.SMTPServerDisconnected):
        return f"the SMTP server {where} closed the connection ({e or 'no reason given'})"
    if isinstance(e, ConnectionRefusedError):
        return f"{where} refused the connection: no SMTP server listens there"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return f"the SMTP server {where} did not answer within {config.timeout_seconds:g} s"
    if isinstance(e, ssl.SSLError):
        return f"TLS with {where} failed: {e.reason or e}"
    if isinstance(e, socket.gaierror):
        return f"the SMTP server's name {config.host!r} was not found ({e.strerror or e})"
    return f"sending through {where} failed: {type(e).__name__}: {e}"


def send(config: MailConfig, message: EmailMessage) -> None:
    """One attempt over one connection; raises MailRefused with the reason unless the server took it."""
    context = ssl.create_default_context()
    try:
        if config.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout_seconds,
                                                  context=context)
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_seconds)
        with smtp:
            if config.security == "starttls":
                smtp.starttls(context=context)
            if config.username:
                smtp.login(config.username, config.password)
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as e:
        this_message = isinstance(e, (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError))
        raise MailRefused(reason_of(e, config), this_message) from e
