"""The one error of the SIP core: a message we cannot accept, with the status to answer."""

from __future__ import annotations

from typing import Any


class SipError(ValueError):
    """A SIP message that cannot be accepted.

    `status_hint` is the response status a server should answer with (400 Bad
    Request, 416 Unsupported URI Scheme, 420 Bad Extension, 505 Version Not
    Supported, 513 Message Too Large...).  `message` is whatever part of the
    message did parse (a Request or Response whose headers were read), or None
    when too little of it parsed to answer at all: then the message is dropped.
    """

    def __init__(self, status_hint: int, reason: str, message: Any = None, headers: tuple = ()):
        super().__init__(f"{status_hint} {reason}")
        self.status_hint = status_hint
        self.reason = reason
        self.message = message
        # Extra header fields the answer should carry (Unsupported for 420...).
        self.headers = tuple(headers)


def is_decimal(text: str, max_digits: int = 10) -> bool:
    """ASCII digits only, at most `max_digits` of them: safe to pass to int().

    str.isdigit() also accepts other scripts' digits and superscripts ("²"),
    which int() refuses, and int() refuses more than 4,300 digits: a header
    value must pass here before it is converted."""
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()
