"""The secrets in provisioning addresses.

A desk phone's secret is in its file's address for as long as the phone is
assigned (the panel shows it again, so the store keeps it).  A softphone's
token opens its file once: the store keeps only its SHA-256 digest, and the
address is shown once, on the answer that made it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def make_secret() -> str:
    """A desk phone's secret: 24 random bytes, URL-safe (32 characters)."""
    return secrets.token_urlsafe(24)


def make_token() -> tuple[str, str]:
    """A softphone's one-time token and the digest the store keeps."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_secret(given: str, kept: str) -> bool:
    """Compared in constant time, so the answer's timing tells nothing about how much was right."""
    return hmac.compare_digest(given.encode(), kept.encode())
