"""Each vendor's configuration file for one SIP line, written from the meaning of its keys.

A format is a function from an `Account` to the file's bytes; `VENDORS`
names them with the media type they are served as and the file name the
phone asks for.  Only the first line (account 1) is written, and only what a
phone needs to register and call: the server, its port and transport, the
user and its password, the name on the display, SRTP for a TLS line.  The
phone keeps every other setting it has.

Values come from the owner (the name) and from the appliance (the rest); a
name loses line breaks and control characters before it is written, so it
cannot add a key to a key=value file, and XML is written through
ElementTree, which escapes it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Callable

TRANSPORTS = ("udp", "tcp", "tls")


@dataclass(frozen=True)
class Account:
    """One SIP line as a phone must be told it."""

    server: str  # host name or address the phone reaches the edge at
    port: int
    transport: str  # one of TRANSPORTS
    user: str  # the extension's number: user and authentication name alike
    password: str
    name: str  # shown on the phone's display
    realm: str
    version: int = 0  # grows when the file's content changes (Fanvil applies only a higher version)

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport {self.transport!r} is none of {', '.join(TRANSPORTS)}")

    @property
    def srtp(self) -> bool:
        """Media keys travel in SDP, so SRTP only where TLS hides them (docs/edge.md)."""
        return self.transport == "tls"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _clean(value: str) -> str:
    return _CONTROL.sub(" ", value).strip()


# -- Yealink: <mac>.cfg, "#!version:1.0.0.1" then key = value lines -----------------------------

# account.X.sip_server.Y.transport_type: 0 UDP, 1 TCP, 2 TLS.
_YEALINK_TRANSPORT = {"udp": 0, "tcp": 1, "tls": 2}


def yealink(a: Account) -> bytes:
    lines = [
        "#!version:1.0.0.1",  # the first line must be exactly this for the phone to read the file
        "## account 1: extension " + a.user,
        "account.1.enable = 1",
        f"account.1.label = {a.user}",
        f"account.1.display_name = {_clean(a.name)}",
        f"account.1.user_name = {a.user}",
        f"account.1.auth_name = {a.user}",
        f"account.1.password = {a.password}",
        f"account.1.sip_server.1.address = {a.server}",
        f"account.1.sip_server.1.port = {a.port}",
        f"account.1.sip_server.1.transport_type = {_YEALINK_TRANSPORT[a.transport]}",
        # 0 off, 2 compulsory: an SRTP line refuses plain RTP.
        f"account.1.srtp_encryption = {2 if a.srtp else 0}",
    ]
    return ("\n".join(lines) + "\n").encode()


# -- Grandstream: cfg<mac>.xml, <gs_provision> with P-values --------------------------------------

# P130 SIP transport: 0 UDP, 1 TCP, 2 TLS.  P183 SRTP mode: 0 off, 2 enabled and forced.
_GS_TRANSPORT = {"udp": 0, "tcp": 1, "tls": 2}


def grandstream(a: Account, mac: str = "") -> bytes:
    root = ET.Element("gs_provision", version="1")
    if mac:
        ET.SubElement(root, "mac").text = mac
    config = ET.SubElement(root, "config", version="1")
    values = {
        "P271": "1",  # account 1 active
        "P270": a.user,  # account name
        "P47": f"{a.server}:{a.port}",  # SIP server
        "P35": a.user,  # SIP user ID
        "P36": a.user,  # authenticate ID
        "P34": a.password,  # authenticate password
        "P3": _clean(a.name),  # display name
        "P31": "1",  # SIP registration
        "P130": str(_GS_TRANSPORT[a.transport]),
        "P183": "2" if a.srtp else "0",
    }
    for key, value in values.items():
        ET.SubElement(config, key).text = value
    return _xml(root)


# -- Fanvil: <mac>.cfg, "<<VOIP CONFIG FILE>>" then modules of "Name :value" lines --------------

# SIP1 Transport: 0 UDP, 1 TCP, 2 TLS.
_FANVIL_TRANSPORT = {"udp": 0, "tcp": 1, "tls": 2}


def fanvil(a: Account) -> bytes:
    values = [
        ("SIP1 Phone Number", a.user),
        ("SIP1 Display Name", _clean(a.name)),
        ("SIP1 Register Addr", a.server),
        ("SIP1 Register Port", str(a.port)),
        ("SIP1 Register User", a.user),
        ("SIP1 Register Pswd", a.password),
        ("SIP1 Register TTL", "3600"),
        ("SIP1 Enable Reg", "1"),
        ("SIP1 Transport", str(_FANVIL_TRANSPORT[a.transport])),
        ("SIP1 Enable SRTP", "1" if a.srtp else "0"),
    ]
    # The phone applies a file whose version is higher than the one it runs.
    lines = [f"<<VOIP CONFIG FILE>>Version:2.{a.version % 10**10:010d}", "", "<SIP CONFIG MODULE>",
             "--SIP Line List--  :"]
    lines += [f"{name:<19}:{value}" for name, value in values]
    lines += ["", "<<END OF FILE>>"]
    return ("\r\n".join(lines) + "\r\n").encode()


# -- Snom: <mac>.xml, <settings><phone-settings> with per-line keys (suffix 1: line 1) ------------


def snom(a: Account) -> bytes:
    root = ET.Element("settings")
    settings = ET.SubElement(root, "phone-settings", e="2")
    host = f"{a.server}:{a.port}" + ("" if a.transport == "udp" else f";transport={a.transport}")
    values = {
        "user_active1": "on",
        "user_realname1": _clean(a.name),
        "user_name1": a.user,
        "user_pname1": a.user,  # the authentication name
        "user_pass1": a.password,
        "user_host1": host,
        "user_srtp1": "on" if a.srtp else "off",
    }
    for key, value in values.items():
        ET.SubElement(settings, key, perm="").text = value
    return _xml(root)


# -- Linphone (softphones): remote provisioning, <config> of <section>s of <entry>s ---------------


def linphone(a: Account, ha1: str, algorithm: str) -> bytes:
    """The document Linphone's remote provisioning reads.

    It carries the digest's HA1 instead of the password (auth_info's `ha1`
    entry): the appliance keeps only digests, and the softphone answers the
    challenge with it just the same.  `transient_provisioning` makes the app
    drop the address once it has applied the file: it opens only once.
    """
    root = ET.Element("config", xmlns="http://www.linphone.org/xsds/lpconfig.xsd")
    proxy = f"<sip:{a.server}:{a.port};transport={a.transport}>"
    identity = f'"{_clean(a.name).replace(chr(34), "")}" <sip:{a.user}@{a.server}>'
    sections = {
        "proxy_0": {"reg_proxy": proxy, "reg_identity": identity, "reg_sendregister": "1",
                    "reg_expires": "3600", "realm": a.realm},
        "auth_info_0": {"username": a.user, "userid": a.user, "ha1": ha1, "algorithm": algorithm,
                        "realm": a.realm, "domain": a.server},
        "sip": {"media_encryption": "srtp" if a.srtp else "none"},
        "misc": {"transient_provisioning": "1"},
    }
    for name, entries in sections.items():
        section = ET.SubElement(root, "section", name=name)
        for key, value in entries.items():
            ET.SubElement(section, "entry", name=key, overwrite="true").text = value
    return _xml(root)


def _xml(root: ET.Element) -> bytes:
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


@dataclass(frozen=True)
class Vendor:
    label: str
    write: Callable[[Account, str], bytes]  # (account, mac) -> the file
    media_type: str
    file_name: str  # the name the phone asks for, with {mac}


VENDORS: dict[str, Vendor] = {
    "yealink": Vendor("Yealink", lambda a, mac: yealink(a), "text/plain; charset=utf-8", "{mac}.cfg"),
    "grandstream": Vendor("Grandstream", grandstream, "application/xml", "cfg{mac}.xml"),
    "fanvil": Vendor("Fanvil", lambda a, mac: fanvil(a), "text/plain; charset=utf-8", "{mac}.cfg"),
    "snom": Vendor("Snom", lambda a, mac: snom(a), "application/xml", "{mac}.xml"),
}


def render(vendor: str, account: Account, mac: str) -> tuple[bytes, str]:
    """(the file, its media type) for a vendor's phone; KeyError for a vendor not in VENDORS."""
    v = VENDORS[vendor]
    return v.write(account, mac), v.media_type
