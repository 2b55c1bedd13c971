import pytest

from appliance.sip import OtherURI, SipError, SipURI, parse_name_addr, parse_uri


def test_sip_uri_parts():
    uri = parse_uri("sip:201:secret@[2001:db8::1]:5070;transport=TCP;lr?Subject=hi")
    assert isinstance(uri, SipURI)
    assert (uri.user, uri.password, uri.host, uri.port) == ("201", "secret", "[2001:db8::1]", 5070)
    assert uri.transport == "tcp"
    assert dict(uri.params)["lr"] is None
    assert uri.headers == "Subject=hi"
    assert str(uri) == "sip:201:secret@[2001:db8::1]:5070;transport=TCP;lr?Subject=hi"


def test_escaped_user_compares_equal_to_plain():
    a = parse_uri("sip:%32%30%31@PBX.example;Transport=udp")
    b = parse_uri("sip:201@pbx.example;transport=UDP")
    assert a.user_unescaped == "201"
    assert a.key() == b.key()
    assert parse_uri("sip:sips%3Auser%40example.com@example.net").user_unescaped == "sips:user@example.com"


def test_user_with_telephone_parameters():
    uri = parse_uri("sip:+380441234567;phone-context=pbx@gw.example;user=phone")
    assert uri.user == "+380441234567;phone-context=pbx" and uri.host == "gw.example"


def test_other_schemes_are_kept():
    assert parse_uri("tel:+380441234567") == OtherURI("tel", "+380441234567")
    assert parse_name_addr("<urn:service:sos>").uri.scheme == "urn"


@pytest.mark.parametrize("text", ["sip:", "sip:@host", "sip:a@", "sip:a b@h", "sip:h:70000", "sip:h;=x", "sip:a@h%4"])
def test_bad_uris(text):
    with pytest.raises(SipError) as info:
        parse_uri(text)
    assert info.value.status_hint == 400


def test_name_addr_forms():
    na = parse_name_addr('"Front \\"Desk\\"" <sip:201@pbx;transport=tcp>;tag=abc;expires=60')
    assert na.display == '"Front \\"Desk\\""' and na.tag == "abc" and na.param("expires") == "60"
    assert na.uri.transport == "tcp"
    assert str(na) == '"Front \\"Desk\\"" <sip:201@pbx;transport=tcp>;tag=abc;expires=60'
    # Without brackets, parameters belong to the header (RFC 3261 20.10).
    bare = parse_name_addr("sip:201@pbx;tag=xyz")
    assert bare.uri.params == () and bare.tag == "xyz" and str(bare) == "sip:201@pbx;tag=xyz"
    tokens = parse_name_addr("Front Desk <sip:201@pbx>")
    assert tokens.display == "Front Desk"
