"""The edge's door policy: scanners, floods and repeated authentication failures.

All decisions take `now` from the caller.  A ban silences an address (IP,
any port): nothing it sends is answered, which is what makes scanning slow
and password guessing pointless.  The engine's own address is never counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# User-Agent substrings of well-known SIP scanners and war-diallers (lower case).
SCANNERS = (
    "friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sipscan", "sundayddr", "iwar",
    "sivus", "vaxsipuseragent", "pplsip", "smap", "sipsak 0.9.6-1", "fperson", "voip-scanner",
)


def is_scanner(user_agent: str | None) -> bool:
    if not user_agent:
        return False
    ua = user_agent.lower()
    return any(s in ua for s in SCANNERS)


@dataclass
class GuardPolicy:
    max_failures: int = 5
    failure_window: float = 600.0
    failure_ban: float = 1800.0
    flood_requests: int = 30
    flood_window: float = 2.0
    flood_ban: float = 600.0


@dataclass
class Guard:
    policy: GuardPolicy = field(default_factory=GuardPolicy)
    trusted: frozenset[str] = frozenset()
    bans: dict[str, tuple[float, str]] = field(default_factory=dict)  # address -> (until, reason)
    _failures: dict[str, list[float]] = field(default_factory=dict)
    _windows: dict[str, list[float]] = field(default_factory=dict)  # address -> [start, count]

    def banned(self, address: str, now: float) -> bool:
        ban = self.bans.get(address)
        if ban is None:
            return False
        if ban[0] <= now:
            del self.bans[address]
            return False
        return True

    def request_seen(self, address: str, now: float, phones: int = 0) -> tuple[float, str] | None:
        """Count a request for the flood limit; returns a new ban when this one crosses it.

        An address that `phones` registered phones use (an office behind one NAT)
        gets the limit once per phone: their calls are many messages, and banning
        the address would cut off every phone there.
        """
        if address in self.trusted:
            return None
        w = self._windows.get(address)
        if w is None or now - w[0] > self.policy.flood_window:
            self._windows[address] = [now, 1]
            return None
        w[1] += 1
        if w[1] > self.policy.flood_requests * max(1, phones):
            del self._windows[address]
            return self._ban(address, now + self.policy.flood_ban, "flood")
        return None

    def auth_failed(self, address: str, now: float) -> tuple[float, str] | None:
        """Count a failed authentication; returns a new ban at the limit."""
        if address in self.trusted:
            return None
        cutoff = now - self.policy.failure_window
        times = [t for t in self._failures.get(address, []) if t > cutoff]
        times.append(now)
        if len(times) >= self.policy.max_failures:
            self._failures.pop(address, None)
            return self._ban(address, now + self.policy.failure_ban, "auth failures")
        self._failures[address] = times
        return None

    def _ban(self, address: str, until: float, reason: str) -> tuple[float, str]:
        self.bans[address] = (until, reason)
        return until, reason

    def sweep(self, now: float) -> None:
        """Forget counters and bans that no longer matter (keeps memory flat under a scan)."""
        self._windows = {a: w for a, w in self._windows.items() if now - w[0] <= self.policy.flood_window}
        cutoff = now - self.policy.failure_window
        self._failures = {a: t for a, t in self._failures.items() if t and t[-1] > cutoff}
        self.bans = {a: b for a, b in self.bans.items() if b[0] > now}
