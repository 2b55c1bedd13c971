"""HTTPS for the panel: the owner's certificate, or one made on the first start.

A made certificate is self-signed (the browser asks once to trust it), valid
for ten years, for the appliance's name and addresses; it and its key are
kept in the data directory (`panel-tls/`, the key readable by the owner
only) and reused.  `openssl` does the making.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import subprocess
from pathlib import Path


class TlsError(Exception):
    pass


def self_signed(data_dir: Path, addresses: list[str], *, folder: str = "panel-tls", stem: str = "panel") -> tuple[Path, Path]:
    """(certificate, key) in data_dir/<folder>, made when missing (the SIP edge keeps its own in sip-tls/)."""
    folder = Path(data_dir) / folder
    cert, key = folder / f"{stem}.crt", folder / f"{stem}.key"
    if cert.exists() and key.exists():
        return cert, key
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    names = {f"DNS:{socket.gethostname()}", "DNS:localhost", "IP:127.0.0.1"}
    for a in addresses:
        try:
            names.add(f"IP:{ipaddress.ip_address(a)}")
        except ValueError:
            names.add(f"DNS:{a}")
    cmd = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650",
           "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={socket.gethostname()}",
           "-addext", "subjectAltName=" + ",".join(sorted(names))]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        raise TlsError(f"could not make the certificate {cert} with openssl: {e}") from None
    os.chmod(key, 0o600)
    return cert, key


def context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as e:
        raise TlsError(f"the panel's certificate {cert} or key {key} cannot be used: {e}") from None
    return ctx
