"""Call events out to the owner's webhooks: written to the outbox with the event, delivered signed and in order.

The engine (its runner, with real pjsua2 peers) writes CallStarted,
CallAnswered and CallEnded of a customer's call into the outbox in the same
transaction as the event row; the outbox's worker (run here as `pbx run`
runs it) delivers them to a local HTTP receiver that checks every signature.
"""

from __future__ import annotations

import time

import pytest

from appliance.notify.deliver import Deliverer
from tests.missed.test_outbox import SECRET, Receiver

pytestmark = pytest.mark.sip


def test_a_customer_call_reaches_the_webhook_as_started_answered_ended(world):
    receiver = Receiver()
    with world.store() as st:
        st.set_setting("notify", {"urls": [receiver.url], "secret": SECRET})
    world.engine.send(cmd="reload")
    world.engine.expect(kind="done", cmd="reload")
    deliverer = Deliverer(world.data)
    try:
        world.route("ringall")
        pid = world.ip_call(caller="+380501230077")
        call_id = world.engine.expect(kind="CallStarted")["call_id"]
        inc = world.phones["102"].expect(ev="incoming")
        world.phones["102"].send(cmd="answer", id=inc["id"])
        world.provider.expect(ev="state", id=pid, state="confirmed")
        world.provider.send(cmd="hangup", id=pid)
        world.engine.expect(kind="CallEnded")
        world.flush()
        deliverer.start()
        deadline = time.monotonic() + 10
        while len([e for e in receiver.received if e["call_id"] == call_id]) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        mine = [e for e in receiver.received if e["call_id"] == call_id]
        assert [e["kind"] for e in mine] == ["CallStarted", "CallAnswered", "CallEnded"], receiver.received
        assert mine[0]["caller"] == "+380501230077" and mine[1]["by"] == "102"
        assert mine[2]["outcome"] == "answered" and mine[2]["answered_by"] == "102"
        assert receiver.bad_signatures == 0
        assert [e["id"] for e in mine] == sorted(e["id"] for e in mine)
    finally:
        deliverer.stop()
        receiver.close()
        with world.store() as st:
            st.set_setting("notify", None)
        world.engine.send(cmd="reload")
        world.engine.expect(kind="done", cmd="reload")
