"""A simple desk phone, played by sipp: it answers with several codecs and ignores re-INVITEs.

Real phones answer an offer with every codec they share (PCMU, PCMA and
telephone-event here).  pjsua would then re-INVITE on its own to narrow the
answer to one codec; a phone that does not expect that offer leaves the
dialog half-open and does not take its next call.  The engine must send no
offer the phone did not ask for: the scenario fails on any message it does
not expect, and it takes two calls in a row, the second cancelled while
ringing (200 to the CANCEL, 487 to the INVITE).
"""

from __future__ import annotations

import subprocess
import time

import pytest

from appliance.edge.sipp import sipp_path
from tests.conftest import free_port
from tests.engine import harness

pytestmark = pytest.mark.sip

_HEAD = """[last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]"""

SCENARIO = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="simple phone">
  <recv request="INVITE"/>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      {_HEAD}
      [last_CSeq:]
      Contact: <sip:104@[local_ip]:[local_port]>
      Content-Length: 0

    ]]>
  </send>
  <recv request="CANCEL" timeout="1500" ontimeout="answer"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      {_HEAD}
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <send>
    <![CDATA[
      SIP/2.0 487 Request Terminated
      {_HEAD}
      CSeq: [last_cseq_number] INVITE
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK" next="done"/>
  <label id="answer"/>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      {_HEAD}
      [last_CSeq:]
      Contact: <sip:104@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=phone 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [local_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 8 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=sendrecv

    ]]>
  </send>
  <recv request="ACK"/>
  <recv request="BYE"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      {_HEAD}
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <label id="done"/>
</scenario>
"""


def test_phone_answering_with_several_codecs_takes_two_calls(world, tmp_path):
    assert sipp_path(), "sipp is part of the test setup (apt-get install sip-tester)"
    port = free_port()
    with world.store() as st:
        st.add_extension("104", "Simple phone", "pw104")
        st.db["bindings"].insert({
            "extension": "104", "contact": f"sip:104@127.0.0.1:{port}", "source_host": "127.0.0.1",
            "source_port": port, "transport": "udp", "q": 1.0, "expires_at": time.time() + 3600,
            "registered_at": time.time()})
    world.engine.send(cmd="reload")
    world.engine.expect(kind="done", cmd="reload")
    scenario = tmp_path / "phone.xml"
    scenario.write_text(SCENARIO)
    sipp = subprocess.Popen(
        [sipp_path(), "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-mp", str(free_port()),
         "-m", "2", "-nostdin", "-timeout", "40s", "-trace_err", "-error_file", str(tmp_path / "errors.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        time.sleep(0.5)
        p = world.phones["101"]
        # First call: answered (the phone answers after 1.5 s), talked over for 3 s.
        p.send(cmd="call", uri=f"sip:104@127.0.0.1:{world.sip_port}", headers=harness.edge_headers("101"))
        first = p.expect(ev="calling")["id"]
        p.expect(ev="state", id=first, state="confirmed", timeout=5)
        time.sleep(3)  # a codec-locking re-INVITE would come at once
        p.send(cmd="hangup", id=first)
        p.expect(ev="state", id=first, state="disconnected")
        # Second call: the caller gives up while it rings.
        p.send(cmd="call", uri=f"sip:104@127.0.0.1:{world.sip_port}", headers=harness.edge_headers("101"))
        second = p.expect(ev="calling")["id"]
        p.expect(ev="state", id=second, state="early")
        p.send(cmd="hangup", id=second)
        p.expect(ev="state", id=second, state="disconnected")
        _, err = sipp.communicate(timeout=15)
    finally:
        if sipp.poll() is None:
            sipp.kill()
            sipp.wait()
        with world.store() as st:
            st.remove_extension("104")
        world.engine.send(cmd="reload")
    errors = (tmp_path / "errors.log").read_text() if (tmp_path / "errors.log").exists() else ""
    assert sipp.returncode == 0, f"sipp: exit {sipp.returncode}\n{err}\n{errors}"
