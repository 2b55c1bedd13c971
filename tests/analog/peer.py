"""The test peer agent (tests/peers/agent.py) with one more command: {"cmd": "stats"} prints the RTP its
confirmed calls received (RFC 3550 jitter, loss), as "ev": "stats"."""

from __future__ import annotations

import argparse

from appliance.engine.benchpeer import rtp_figures, stream_stat
from tests.peers.agent import Agent, say


class StatsAgent(Agent):
    def run_command(self, cmd: dict) -> None:
        if cmd["cmd"] == "stats":
            stats = [stream_stat(c) for c in self.calls.values() if c.state == "confirmed"]
            say(ev="stats", **rtp_figures([s for s in stats if s is not None]))
            return
        super().run_command(cmd)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", default="agent")
    a = ap.parse_args()
    StatsAgent(a.port, a.name).loop()
