"""SIP without I/O: messages, URIs, headers and digest authentication, tested on bytes.

Nothing in this package opens a socket or reads the clock; the edge does.
"""

from appliance.sip.digest import Credentials, NonceSigner, challenge, parse_credentials, verify
from appliance.sip.errors import SipError
from appliance.sip.headers import Headers, Via, canonical, parse_cseq, parse_via, split_list
from appliance.sip.message import REASONS, Request, Response, StreamFramer, parse, response_to
from appliance.sip.uri import NameAddr, OtherURI, SipURI, param, parse_name_addr, parse_uri

__all__ = [
    "Credentials", "Headers", "NameAddr", "NonceSigner", "OtherURI", "REASONS", "Request",
    "Response", "SipError", "SipURI", "StreamFramer", "Via", "canonical", "challenge", "param",
    "parse", "parse_credentials", "parse_cseq", "parse_name_addr", "parse_uri", "parse_via",
    "response_to", "split_list", "verify",
]
