from appliance.sip import NonceSigner, challenge, parse_credentials, verify
from appliance.sip.digest import Credentials, expected_response, ha1

# RFC 7616 section 3.9.1: the same request answered with MD5 and SHA-256.
RFC_USER, RFC_REALM, RFC_PASSWORD = "Mufasa", "http-auth@example.org", "Circle of Life"
RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def rfc_credentials(algorithm, response):
    return Credentials(RFC_USER, RFC_REALM, RFC_NONCE, "/dir/index.html", response, algorithm, "auth", "00000001", RFC_CNONCE)


def test_rfc7616_examples():
    md5 = rfc_credentials("MD5", "8ca523f5e9506fed4657c9700eebdbec")
    sha = rfc_credentials("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1")
    assert verify(md5, "GET", "/dir/index.html", ha1(RFC_USER, RFC_REALM, RFC_PASSWORD, "MD5"))
    assert verify(sha, "GET", "/dir/index.html", ha1(RFC_USER, RFC_REALM, RFC_PASSWORD, "SHA-256"))
    assert not verify(md5, "GET", "/dir/index.html", ha1(RFC_USER, RFC_REALM, "wrong", "MD5"))


def header_for(method, uri, password, nonce, algorithm="MD5", digest_uri=None):
    cred = Credentials("201", "pbx", nonce, digest_uri or uri, "", algorithm, "auth", "00000001", "0a4f113b")
    response = expected_response(cred, method, ha1("201", "pbx", password, algorithm))
    return (
        f'Digest username="201", realm="pbx", nonce="{nonce}", uri="{digest_uri or uri}", '
        f'response="{response}", algorithm={algorithm}, cnonce="0a4f113b", qop=auth, nc=00000001'
    )


def test_parse_and_verify_a_sip_register():
    nonce = NonceSigner(b"k").issue(1000.0)
    cred = parse_credentials(header_for("REGISTER", "sip:pbx", "pw", nonce, "SHA-256"))
    assert (cred.username, cred.algorithm, cred.nc) == ("201", "SHA-256", "00000001")
    assert verify(cred, "REGISTER", "sip:pbx", ha1("201", "pbx", "pw", "SHA-256"))
    assert not verify(cred, "INVITE", "sip:pbx", ha1("201", "pbx", "pw", "SHA-256"))


def test_digest_uri_must_be_the_request_uri():
    nonce = NonceSigner(b"k").issue(1000.0)
    cred = parse_credentials(header_for("REGISTER", "sip:pbx", "pw", nonce, digest_uri="sip:other"))
    assert not verify(cred, "REGISTER", "sip:pbx", ha1("201", "pbx", "pw"))
    same = parse_credentials(header_for("REGISTER", "sip:pbx", "pw", nonce, digest_uri="sip:PBX"))
    assert verify(same, "REGISTER", "sip:pbx", ha1("201", "pbx", "pw"))


def test_nonces_expire_and_are_bound_to_the_client():
    signer = NonceSigner(b"secret", lifetime=300)
    nonce = signer.issue(1000.0, "192.0.2.1")
    assert signer.check(nonce, 1299.0, "192.0.2.1") == "ok"
    assert signer.check(nonce, 1301.0, "192.0.2.1") == "stale"
    assert signer.check(nonce, 1001.0, "192.0.2.2") == "bad"
    assert NonceSigner(b"other").check(nonce, 1001.0, "192.0.2.1") == "bad"
    assert signer.check("garbage!", 1001.0) == "bad"


def test_challenge_text():
    assert challenge("pbx", "n1", "SHA-256", stale=True) == 'Digest realm="pbx", nonce="n1", algorithm=SHA-256, qop="auth", stale=true'


def test_another_scheme_is_no_credentials():
    # RFC 4475 3.3.7: an unknown scheme is ignored, so the request is challenged afresh.
    assert parse_credentials("NoOneKnowsThisScheme opaque-data=here") is None
    assert parse_credentials("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==") is None
    assert parse_credentials("") is None
