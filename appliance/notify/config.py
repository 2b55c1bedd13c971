"""The `notify` section of the configuration: where events for the owner's CRM go.

    notify:
      urls: ["https://crm.example.com/pbx-hook"]
      secret: "a long random string"   # the key of each POST's HMAC-SHA256 signature
      timeout_seconds: 5                # one attempt's limit

Every key is optional; without `urls` no event is kept for delivery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

from appliance.errors import ConfigError

KEYS = ("urls", "secret", "timeout_seconds")
TIMEOUT_RANGE = (1, 60)
MAX_URLS = 10


@dataclass(frozen=True)
class NotifyConfig:
    urls: tuple[str, ...] = field(default_factory=tuple)
    secret: str = ""
    timeout_seconds: float = 5.0

    @classmethod
    def from_setting(cls, setting: Mapping[str, Any] | None) -> "NotifyConfig":
        s = dict(setting or {})
        return cls(tuple(s.get("urls") or ()), str(s.get("secret") or ""), float(s.get("timeout_seconds", 5)))


def check_url(url: Any, path: tuple) -> str:
    if not isinstance(url, str):
        raise ConfigError(f"a webhook URL is text such as https://crm.example.com/hook, not {url!r}", path)
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"a webhook URL must start with http:// or https:// and name a host, not {url!r}", path)
    return url.strip()


def parse_notify(item: Any) -> dict:
    """Check the section; returns the keys given, ready to store."""
    path: tuple = ("notify",)
    if item is None:
        return {}
    if not isinstance(item, dict):
        raise ConfigError("notify must be a mapping", path)
    out: dict[str, Any] = {}
    for key in item:
        if key not in KEYS:
            raise ConfigError(f"unknown key {key!r} in notify (known: {', '.join(KEYS)})", (*path, key))
    if "urls" in item:
        urls = item["urls"]
        if not isinstance(urls, list) or len(urls) > MAX_URLS:
            raise ConfigError(f"urls must be a list of at most {MAX_URLS} URLs", (*path, "urls"))
        out["urls"] = [check_url(u, (*path, "urls", i)) for i, u in enumerate(urls)]
    if "secret" in item:
        if not isinstance(item["secret"], str):
            raise ConfigError("secret must be text", (*path, "secret"))
        out["secret"] = item["secret"]
    if "timeout_seconds" in item:
        value, (low, high) = item["timeout_seconds"], TIMEOUT_RANGE
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ConfigError(f"timeout_seconds must be a number of seconds from {low} to {high}",
                              (*path, "timeout_seconds"))
        out["timeout_seconds"] = value
    return out
