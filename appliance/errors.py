"""Errors shared across the appliance's parts."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration that cannot be accepted.

    `path` names where the problem is, as the keys and list indexes that lead
    to it from the top of the configuration document, for example
    ("routing", "groups", "sales", "members", 2).  The config file loader turns
    a path into a line number; the panel puts the message next to the field.
    """

    def __init__(self, message: str, path: tuple[str | int, ...] = ()):
        super().__init__(message)
        self.message = message
        self.path = tuple(path)

    def at(self, *prefix: str | int) -> "ConfigError":
        """The same error, seen from a document that holds this one under `prefix`."""
        return ConfigError(self.message, (*prefix, *self.path))

    def __str__(self) -> str:
        if not self.path:
            return self.message
        return f"{format_path(self.path)}: {self.message}"


def format_path(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
