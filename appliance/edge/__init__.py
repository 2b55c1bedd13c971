"""The SIP edge: registrar and record-routing proxy between desk phones and the engine.

pjsua2 drops incoming REGISTER, so phones register here; the edge keeps their
bindings (in memory, written behind to the store), relays their requests to
the engine on loopback with the authenticated extension in `X-PBX-Extension`,
and relays the engine's requests to the address each phone registered from.
"""

from appliance.edge.bindings import Binding, Flow
from appliance.edge.events import AuthFailed, BindingAdded, BindingRemoved, SourceBanned
from appliance.edge.guard import GuardPolicy
from appliance.edge.proxy import EXTENSION_HEADER
from appliance.edge.server import Edge

__all__ = [
    "AuthFailed", "Binding", "BindingAdded", "BindingRemoved", "EXTENSION_HEADER", "Edge", "Flow",
    "GuardPolicy", "SourceBanned",
]
