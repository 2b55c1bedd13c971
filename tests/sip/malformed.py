"""A corpus of messages a SIP server must refuse, one per category of RFC 4475 section 3.1.2.

Each entry: (name, bytes, expected status or None).  None means too little
parses to answer: the message is dropped.  The messages are written for this
project; the categories (not the text) follow RFC 4475.
"""

from __future__ import annotations


def _req(start: str, *headers: str, body: str = "", length: str | None = None) -> bytes:
    base = [
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKcorpus1",
        "Max-Forwards: 70",
        "From: <sip:201@pbx>;tag=c0rpus",
        "To: <sip:202@pbx>",
        "Call-ID: corpus-1@192.0.2.10",
    ]
    names = {h.split(":", 1)[0].lower() for h in headers}
    lines = [start] + [h for h in base if h.split(":", 1)[0].lower() not in names] + list(headers)
    if length is None:
        length = str(len(body.encode()))
    lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


CORPUS: list[tuple[str, bytes, int | None]] = [
    # Content-Length larger than the body that arrived in the datagram.
    ("content-length-too-large", _req("OPTIONS sip:pbx SIP/2.0", "CSeq: 1 OPTIONS", body="v=0\r\n", length="500"), 400),
    ("content-length-negative", _req("OPTIONS sip:pbx SIP/2.0", "CSeq: 1 OPTIONS", length="-5"), 400),
    ("content-length-not-a-number", _req("OPTIONS sip:pbx SIP/2.0", "CSeq: 1 OPTIONS", length="ten"), 400),
    # Scalar fields out of range.
    ("cseq-too-large", _req("OPTIONS sip:pbx SIP/2.0", "CSeq: 36893488147419103232 OPTIONS"), 400),
    ("max-forwards-too-large", _req("OPTIONS sip:pbx SIP/2.0", "CSeq: 1 OPTIONS", "Max-Forwards: 300"), 400),
    ("expires-not-a-number", _req("REGISTER sip:pbx SIP/2.0", "CSeq: 1 REGISTER", "Expires: soon"), 400),
    # Unterminated quoted display name.
    ("unbalanced-quote", _req("OPTIONS sip:pbx SIP/2.0", "CSeq: 1 OPTIONS", 'From: "Front Desk <sip:201@pbx>;tag=x'), 400),
    # Request-URI in angle brackets, with whitespace, or with unescaped spaces.
    ("request-uri-in-brackets", _req("OPTIONS <sip:pbx> SIP/2.0", "CSeq: 1 OPTIONS"), 400),
    ("request-uri-with-spaces", _req("OPTIONS sip:front desk@pbx SIP/2.0", "CSeq: 1 OPTIONS"), 400),
    ("request-uri-bad-escape", _req("OPTIONS sip:fr%zzont@pbx SIP/2.0", "CSeq: 1 OPTIONS"), 400),
    ("request-uri-bad-port", _req("OPTIONS sip:pbx:99999 SIP/2.0", "CSeq: 1 OPTIONS"), 400),
    ("request-uri-bad-host", _req("OPTIONS sip:201@pb_x! SIP/2.0", "CSeq: 1 OPTIONS"), 400),
    # Leading whitespace on the start line.
    ("start-line-leading-space", _req(" OPTIONS sip:pbx SIP/2.0", "CSeq: 1 OPTIONS"), 400),
    # An addr-spec with parameters and a URI header without angle brackets.
    ("addr-spec-with-uri-headers", _req("OPTIONS sip:pbx SIP/2.0", "CSeq: 1 OPTIONS", "To: sip:202@pbx?Subject=x"), 400),
    ("bad-display-name", _req("OPTIONS sip:pbx SIP/2.0", "CSeq: 1 OPTIONS", "From: Front@Desk <sip:201@pbx>;tag=x"), 400),
    ("to-without-closing-bracket", _req("OPTIONS sip:pbx SIP/2.0", "CSeq: 1 OPTIONS", "To: <sip:202@pbx"), 400),
    # A SIP version we do not speak.
    ("version-7", _req("OPTIONS sip:pbx SIP/7.0", "CSeq: 1 OPTIONS"), 505),
    # CSeq method that is not the request's.
    ("cseq-method-mismatch", _req("OPTIONS sip:pbx SIP/2.0", "CSeq: 1 INVITE"), 400),
    ("cseq-method-mismatch-unknown", _req("NEWMETHOD sip:pbx SIP/2.0", "CSeq: 1 OLDMETHOD"), 400),
    # Unknown Request-URI scheme.
    ("unknown-scheme", _req("OPTIONS nope:pbx SIP/2.0", "CSeq: 1 OPTIONS"), 416),
    # Headers that must be single, twice.
    ("two-call-ids", _req("OPTIONS sip:pbx SIP/2.0", "CSeq: 1 OPTIONS", "Call-ID: a@x", "i: b@x"), 400),
    ("two-content-lengths", _req("OPTIONS sip:pbx SIP/2.0", "CSeq: 1 OPTIONS", "l: 3"), 400),
    # Mandatory headers missing (but enough left to answer).
    ("no-call-id", b"OPTIONS sip:pbx SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKc2\r\nFrom: <sip:201@pbx>;tag=a\r\nTo: <sip:pbx>\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", 400),
    ("bad-via", _req("OPTIONS sip:pbx SIP/2.0", "CSeq: 1 OPTIONS", "Via: SIP/2.0/UDP 192.0.2.10:port;branch=z9hG4bKx"), 400),
    # Header lines that are not headers.
    ("header-without-colon", _req("OPTIONS sip:pbx SIP/2.0", "CSeq: 1 OPTIONS", "This is not a header"), None),
    ("binary-garbage", bytes(range(256)) * 4, None),
    ("only-a-start-line", b"OPTIONS sip:pbx SIP/2.0\r\n\r\n", None),
    ("response-status-out-of-range", b"SIP/2.0 4294967301 Big\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKc3\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", None),
    ("not-utf8-header", b"OPTIONS sip:pbx SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKc4\r\nFrom: \xff\xfe <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", None),
    ("oversized", _req("OPTIONS sip:pbx SIP/2.0", "CSeq: 1 OPTIONS", "Subject: " + "x" * 40000), 513),
]
