"""The machine's own address, as other hosts reach it.

Used where an address must be written for others to use: the edge's
Record-Route towards phones, the SDP of the engine's legs, the banner.
"""

from __future__ import annotations

import socket


def primary_address() -> str:
    """The IPv4 address the default route leaves from; 127.0.0.1 on a machine with no network.

    connect() on a UDP socket sends nothing: it only picks the route (to a
    documentation address, RFC 5737)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"
