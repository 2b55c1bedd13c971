"""What the edge tells the rest of the appliance, as events named in the past tense."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BindingAdded:
    extension: str
    contact: str
    source: str  # "udp:203.0.113.5:5062"
    user_agent: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class BindingRemoved:
    extension: str
    contact: str
    reason: str  # "unregistered", "expired", "replaced"


@dataclass(frozen=True, slots=True)
class SourceBanned:
    address: str
    until: float
    reason: str  # "auth failures", "flood"


@dataclass(frozen=True, slots=True)
class AuthFailed:
    address: str
    username: str
