"""SIP over TLS for phones (RFC 3261 26.2, RFC 5630): the edge's certificate and its server context.

The certificate is the owner's (`pbx run --sip-cert/--sip-key`) or one made
on the first start by `web.tls.self_signed` (openssl, self-signed, ten years)
and kept in `<data>/sip-tls/`.  A self-signed certificate cannot be checked
against a CA, so the panel shows its SHA-256 fingerprint: the number to
compare with what a phone shows when it first connects.
"""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path


class TlsError(Exception):
    pass

FOLDER = "sip-tls"
STEM = "sip"


def certificate(data_dir: Path, addresses: list[str], cert: Path | None = None,
                key: Path | None = None) -> tuple[Path, Path]:
    """(certificate, key): the owner's when given, else the one made on the first start."""
    if cert and key:
        return Path(cert), Path(key)
    from web import tls  # the panel's maker, reused: one way to make a certificate

    try:
        return tls.self_signed(data_dir, addresses, folder=FOLDER, stem=STEM)
    except tls.TlsError as e:
        raise TlsError(str(e)) from None


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """TLS 1.2 or later; phones are not asked for a certificate (they prove themselves with digest)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as e:
        raise TlsError(f"the SIP certificate {cert} or key {key} cannot be used: {e}") from None
    return ctx


def fingerprint(cert: Path) -> str:
    """The SHA-256 fingerprint of the (first) certificate in a PEM file, as AB:CD:... (what phones and browsers show)."""
    pem = Path(cert).read_text(encoding="ascii", errors="replace")
    end = pem.find("-----END CERTIFICATE-----")
    if end < 0:
        raise TlsError(f"{cert} holds no PEM certificate")
    der = ssl.PEM_cert_to_DER_cert(pem[: end + len("-----END CERTIFICATE-----")] + "\n")
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
