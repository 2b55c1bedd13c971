"""Phones that configure themselves: the files desk phones and softphones fetch from the appliance.

Pure functions, no I/O: `formats` writes one vendor's file for an `Account`
(the server, port, transport and credentials of one SIP line); `tokens`
makes the secrets in the files' addresses and checks them in constant time;
`mac` reads a MAC address as an owner types it or as a phone asks for its
file.  The panel (`web/areas/provision.py`) serves the files and the store
(`appliance/store/provisioning.py`) keeps the phones.  See docs/provisioning.md.
"""

from __future__ import annotations

from appliance.provision.formats import VENDORS, Account, linphone, render
from appliance.provision.mac import mac_of_file, normalise_mac
from appliance.provision.tokens import make_secret, make_token, same_secret, token_hash

__all__ = ["VENDORS", "Account", "linphone", "render", "mac_of_file", "normalise_mac", "make_secret",
           "make_token", "same_secret", "token_hash"]
