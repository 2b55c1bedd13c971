"""The webhook step: what routing asks the owner's URL, and how it reads the answer.

The engine POSTs `request(...)` as JSON and hands back the body (parsed JSON,
or the text if it was not JSON).  An answer may be any of

    {"extension": "101"}            {"number": "+380671234567"}
    {"destination": "group:sales"}  "101"   "+380671234567"   "queue:support"

Anything else, a timeout or an error sends the call to the webhook's fallback.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Mapping

from .facts import Call, Contact
from .numbers import is_external, normalise


def request(call: Call, now: datetime, contact: Contact | None, route: str) -> dict[str, Any]:
    return {
        "caller": call.caller,
        "dialled": call.dialled,
        "trunk": call.trunk,
        "time": now.isoformat(timespec="seconds"),
        "route": route,
        "contact": None if contact is None else {
            "name": contact.name, "company": contact.company,
            "manager": contact.manager, "vip": contact.vip,
        },
    }


def read_answer(answer: Any, *, is_extension: Callable[[str], bool],
                exists: Callable[[str], bool], allow_numbers: bool) -> tuple[str | None, str]:
    """(destination reference, explanation), or (None, why the answer is unusable)."""
    if isinstance(answer, Mapping):
        if "extension" in answer:
            return _extension(str(answer["extension"]), is_extension)
        if "number" in answer:
            return _number(str(answer["number"]), allow_numbers)
        if "destination" in answer:
            return _destination(str(answer["destination"]), exists)
        return None, f"answer has none of extension, number, destination: {dict(answer)!r:.80}"
    if isinstance(answer, (str, int)) and not isinstance(answer, bool):
        text = str(answer).strip()
        if ":" in text or text == "hangup":
            return _destination(text, exists)
        if is_extension(text):
            return _extension(text, is_extension)
        if is_external(text):
            return _number(text, allow_numbers)
        return None, f"answer {text!r:.40} is not an extension, number or destination"
    return None, f"answer of type {type(answer).__name__} is not understood"


def _extension(ext: str, is_extension: Callable[[str], bool]) -> tuple[str | None, str]:
    if is_extension(ext):
        return f"ext:{ext}", f"extension {ext}"
    return None, f"{ext!r:.40} is not an extension"


def _number(number: str, allow: bool) -> tuple[str | None, str]:
    n = normalise(number)
    if not is_external(n):
        return None, f"{number!r:.40} is not an external number"
    if not allow:
        return None, f"external number {n} refused: the webhook may not send calls outside (allow_numbers)"
    return f"number:{n}", f"external number {n}"


def _destination(ref: str, exists: Callable[[str], bool]) -> tuple[str | None, str]:
    if exists(ref):
        return ref, f"destination {ref}"
    return None, f"{ref!r:.60} is not a configured destination"
