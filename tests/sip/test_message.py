import pytest

from appliance.sip import Headers, SipError, StreamFramer, parse, response_to
from appliance.sip.headers import split_list
from tests.sip.malformed import CORPUS

INVITE = (
    b"INVITE sip:202@pbx.example SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK776asdhds;rport\r\n"
    b"Via: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.2:5070;branch=z9hG4bK2;received=198.51.100.1\r\n"
    b"Max-Forwards: 70\r\n"
    b'To: "Sales Desk" <sip:202@pbx.example>\r\n'
    b"From: <sip:201@pbx.example>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@192.0.2.10\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:201@192.0.2.10:5062>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n\r\nv=0\n"
)


def test_round_trip_is_byte_for_byte():
    assert parse(INVITE).to_bytes() == INVITE


def test_repeated_and_comma_joined_vias_keep_their_order():
    msg = parse(INVITE)
    assert [v.branch for v in msg.vias] == ["z9hG4bK776asdhds", "z9hG4bK1", "z9hG4bK2"]
    assert msg.headers.get_all("via")[1].startswith("SIP/2.0/TCP 10.0.0.1")
    assert msg.vias[2].response_address() == ("198.51.100.1", 5070)
    assert msg.vias[1].response_address() == ("10.0.0.1", 5060)


def test_compact_forms_are_the_same_headers():
    compact = (
        b"OPTIONS sip:pbx SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bKa\r\nt: <sip:pbx>\r\n"
        b"f: <sip:201@pbx>;tag=9\r\ni: abc\r\nCSeq: 2 OPTIONS\r\nm: <sip:201@h>\r\nl: 0\r\n\r\n"
    )
    msg = parse(compact)
    assert msg.call_id == "abc"
    assert msg.headers.get("Contact") == "<sip:201@h>"
    assert msg.headers.get("CONTENT-LENGTH") == "0"
    assert msg.from_.tag == "9"
    assert msg.to_bytes() == compact


def test_folded_header_lines_are_joined():
    msg = parse(INVITE.replace(b"Max-Forwards: 70\r\n", b"Subject: one\r\n  two\r\nMax-Forwards: 70\r\n"))
    assert msg.headers.get("subject") == "one two"


def test_body_beyond_content_length_is_discarded():
    msg = parse(INVITE + b"trailing junk")
    assert msg.body == b"v=0\n"


def test_content_length_is_rewritten_from_the_body():
    msg = parse(INVITE).with_(body=b"v=0\r\no=x\r\n")
    out = msg.to_bytes()
    assert b"Content-Length: 10\r\n" in out and out.endswith(b"\r\n\r\nv=0\r\no=x\r\n")
    assert b"Content-Length" in parse(out.replace(b"Content-Length: 10\r\n", b"")).to_bytes()


def test_leading_crlf_and_bare_lf_are_tolerated():
    msg = parse(b"\r\n\r\n" + INVITE.replace(b"\r\n", b"\n"))
    assert msg.method == "INVITE" and msg.cseq == (314159, "INVITE")


def test_response_round_trip_and_reason_with_spaces():
    raw = (
        b"SIP/2.0 180 Ringing Loudly Now\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\n"
        b"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    msg = parse(raw)
    assert (msg.status, msg.reason) == (180, "Ringing Loudly Now")
    assert msg.to_bytes() == raw


def test_response_to_copies_dialog_headers_and_adds_a_to_tag():
    req = parse(INVITE)
    res = response_to(req, 486, to_tag="abc", headers=(("Retry-After", "30"),))
    raw = res.to_bytes()
    assert raw.startswith(b"SIP/2.0 486 Busy Here\r\n")
    assert raw.count(b"Via:") == 2
    assert b'To: "Sales Desk" <sip:202@pbx.example>;tag=abc\r\n' in raw
    assert b"Retry-After: 30\r\n" in raw and b"Contact" not in raw


def test_split_list_respects_quotes_and_brackets():
    assert split_list('"a, b" <sip:x@y;p=1>;q=0.5, <sip:z@w>') == ['"a, b" <sip:x@y;p=1>;q=0.5', "<sip:z@w>"]


def test_headers_editing_keeps_order():
    h = Headers((("Via", "a"), ("To", "t"), ("Via", "b")))
    assert h.prepend("Via", "new").fields == (("Via", "new"), ("Via", "a"), ("To", "t"), ("Via", "b"))
    assert h.set("To", "u").fields == (("Via", "a"), ("To", "u"), ("Via", "b"))
    assert h.remove("via").fields == (("To", "t"),)
    assert h.replace_values("Via", ["b"]).fields == (("Via", "b"), ("To", "t"))


@pytest.mark.parametrize("name,data,status", CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_corpus_raises_with_a_status(name, data, status):
    with pytest.raises(SipError) as info:
        parse(data, max_size=16384)
    err = info.value
    if status is None:
        assert err.message is None or err.message.headers.get("via") is None
    else:
        assert err.status_hint == status
        assert err.message is not None and err.message.headers.get("via")


def test_stream_framer_cuts_messages_and_counts_pings():
    framer = StreamFramer()
    data = b"\r\n\r\n" + INVITE + INVITE
    msgs, pings = framer.feed(data[:100])
    assert (msgs, pings) == ([], 1)
    msgs, pings = framer.feed(data[100:])
    assert msgs == [INVITE, INVITE] and pings == 0
    assert framer.buffer == b""


def test_stream_framer_requires_content_length_and_limits_size():
    with pytest.raises(SipError) as info:
        StreamFramer().feed(INVITE.replace(b"Content-Length: 4\r\n", b""))
    assert info.value.status_hint == 400
    with pytest.raises(SipError) as info:
        StreamFramer(max_size=1000).feed(INVITE.replace(b"Content-Length: 4", b"Content-Length: 5000"))
    assert info.value.status_hint == 513
    with pytest.raises(SipError):
        parse(INVITE.replace(b"Content-Length: 4\r\n", b""), stream=True)


@pytest.mark.parametrize("header, value", [
    ("Max-Forwards", "9" * 5000), ("Max-Forwards", "\u00b2"), ("Content-Length", "\u00b2"),
    ("CSeq", "\u0663 OPTIONS"), ("Expires", "9" * 5000), ("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa;rport=\u00b9"),
])
def test_numbers_that_int_would_refuse_are_a_400_not_an_exception(header, value):
    # str.isdigit() accepts superscripts and other scripts' digits, int() does not,
    # nor more than 4,300 digits: each must end as a SipError the edge can answer.
    lines = ["OPTIONS sip:pbx SIP/2.0", "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa", "From: <sip:a@pbx>;tag=1",
             "To: <sip:pbx>", "Call-ID: c1", "CSeq: 1 OPTIONS", "Max-Forwards: 70", "Content-Length: 0"]
    lines = [line for line in lines if not line.startswith(header + ":")] + [f"{header}: {value}"]
    with pytest.raises(SipError) as e:
        parse(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert e.value.status_hint == 400
