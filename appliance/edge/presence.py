"""What each extension's busy lamp shows: its dialogs (RFC 4235), kept from the appliance's events.

`DialogStates` owns the model.  It is fed only with the events the appliance
publishes (the engine's call events and the night service's
`NightModeChanged`), on the appliance's loop, and does no I/O: `on_event`
returns the lamps (extensions, or `*28`) whose document changed.
`dialog_info()` turns one lamp's dialogs into an `application/dialog-info+xml`
document.

How the engine's events become dialogs, per call and extension:

- a desk phone's own call (`CallStarted` with `extension`): a dialog with
  direction `initiator`, `trying`, `early` once the far end rings, `confirmed`
  once someone (or the engine: a menu, voicemail, a queue) answered it;
- an extension rung for a call (`LegRinging`): direction `recipient`, `early`;
  the legs placed to it are counted, so one of its phones refusing leaves the
  lamp blinking while another still rings;
- `CallAnswered` / `CallTransferred` / `CallPickedUp`: the answering extension's
  dialog `confirmed`, everyone else still ringing for that call `terminated`;
- a new routing step: whoever rang for the step before is no longer rung;
- `CallEnded`: every dialog of the call `terminated`.

A dialog that ended is shown once as `terminated` (phones that know only a
dialog's end need it), then left out: a document without dialogs is idle.

The night key: `*28` is one `confirmed` dialog while the first night switch
of the routing is in night mode (the switch the night LED shows), `*28N`
while the N-th is.
"""

from __future__ import annotations

import enum
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Iterable

NAMESPACE = "urn:ietf:params:xml:ns:dialog-info"
CONTENT_TYPE = "application/dialog-info+xml"
NIGHT_CODE = "*28"
MAX_SWITCHES = 9  # *281 .. *289, as the feature code (appliance/engine/nightcode.py)
PICKUP_PREFIX = "**"  # directed pickup of a ringing extension (docs/engine.md)
# Routing steps in which the engine itself answers the caller.
ANSWERING_STEPS = frozenset({"play", "menu", "voicemail", "queue"})


class DialogState(enum.StrEnum):
    """RFC 4235 section 3.7.1 (proceeding is never told: the engine reports no 1xx but ringing)."""

    TRYING = "trying"
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass
class Dialog:
    id: str
    direction: str  # "initiator" or "recipient"; "" for the night key
    state: DialogState
    remote: str = ""  # the other party's number
    remote_name: str = ""


@dataclass
class _Call:
    caller: str = ""
    caller_name: str = ""
    dialled: str = ""
    extension: str = ""  # the desk phone that placed it, if any
    lamps: set[str] = field(default_factory=set)  # extensions with a dialog for this call
    placed: dict[str, int] = field(default_factory=dict)  # extension -> its legs placed and not yet ended


class DialogStates:
    """Dialogs per lamp, from events.  `on_event(event) -> changed lamps`; `dialogs(lamp)`; `settle(lamp)`."""

    def __init__(self) -> None:
        self.lamps: dict[str, dict[str, Dialog]] = {}  # lamp -> dialog id -> dialog
        self.calls: dict[str, _Call] = {}
        self.night: list[str] = []  # each night switch's mode, in the routing's order
        # One table from event kind to what it changes.
        self.handlers = {
            "CallStarted": self._started, "LegStarted": self._leg_started, "LegRinging": self._ringing,
            "LegEnded": self._leg_ended, "CallAnswered": self._answered, "StepStarted": self._step,
            "CallTransferred": self._transferred, "CallPickedUp": self._picked_up, "CallEnded": self._ended,
        }

    # -- reading -----------------------------------------------------------------

    def dialogs(self, lamp: str) -> list[Dialog]:
        """The lamp's dialogs now, those that just ended included (shown once)."""
        if is_night_code(lamp):
            index = 0 if lamp == NIGHT_CODE else int(lamp[len(NIGHT_CODE):]) - 1
            on = index < len(self.night) and self.night[index] == "night"
            return [Dialog("night", "", DialogState.CONFIRMED)] if on else []
        return list(self.lamps.get(lamp, {}).values())

    def settle(self, lamp: str) -> None:
        """Forget the lamp's terminated dialogs once they were told."""
        dialogs = self.lamps.get(lamp)
        if dialogs is None:
            return
        for key in [k for k, d in dialogs.items() if d.state is DialogState.TERMINATED]:
            del dialogs[key]
        if not dialogs:
            del self.lamps[lamp]

    def night_lamps(self) -> set[str]:
        return {NIGHT_CODE, *(f"{NIGHT_CODE}{n}" for n in range(1, MAX_SWITCHES + 1))}

    # -- events in ------------------------------------------------------------------

    def set_night(self, modes: list[str]) -> set[str]:
        """Each switch's mode in the routing's order; returns the night keys that changed."""
        before = {lamp: bool(self.dialogs(lamp)) for lamp in self.night_lamps()}
        self.night = list(modes)
        return {lamp for lamp, lit in before.items() if bool(self.dialogs(lamp)) != lit}

    def on_event(self, event: dict) -> set[str]:
        handler = self.handlers.get(str(event.get("kind")))
        call_id = event.get("call_id")
        if handler is None or not call_id:
            return set()
        changed: set[str] = set()
        handler(str(call_id), event, changed)
        return changed

    def _dialog(self, call_id: str, lamp: str) -> Dialog | None:
        return self.lamps.get(lamp, {}).get(call_id)

    def _set(self, call_id: str, lamp: str, direction: str, state: DialogState, changed: set[str]) -> Dialog:
        call = self.calls.setdefault(call_id, _Call())
        d = self._dialog(call_id, lamp)
        if d is None:
            remote, name = (call.dialled, "") if direction == "initiator" else (call.caller, call.caller_name)
            d = self.lamps.setdefault(lamp, {})[call_id] = Dialog(call_id, direction, state, remote, name)
            changed.add(lamp)
        elif d.state is not state or d.direction != direction:
            d.state, d.direction = state, direction
            changed.add(lamp)
        call.lamps.add(lamp)
        return d

    def _end(self, call_id: str, lamp: str, changed: set[str]) -> None:
        d = self._dialog(call_id, lamp)
        if d is not None and d.state is not DialogState.TERMINATED:
            d.state = DialogState.TERMINATED
            changed.add(lamp)

    def _started(self, call_id: str, e: dict, changed: set[str]) -> None:
        call = self.calls[call_id] = _Call(str(e.get("caller") or ""), str(e.get("caller_name") or ""),
                                           str(e.get("dialled") or ""), str(e.get("extension") or ""))
        if call.extension and e.get("direction") in ("internal", "outbound"):
            self._set(call_id, call.extension, "initiator", DialogState.TRYING, changed)

    def _leg_started(self, call_id: str, e: dict, changed: set[str]) -> None:
        placed = self.calls.setdefault(call_id, _Call()).placed
        target = str(e.get("target") or "")
        placed[target] = placed.get(target, 0) + 1

    def _ringing(self, call_id: str, e: dict, changed: set[str]) -> None:
        target = str(e.get("target") or "")
        call = self.calls.setdefault(call_id, _Call())
        d = self._dialog(call_id, target)
        if not target or target == call.extension or (d is not None and d.state is DialogState.CONFIRMED):
            return
        call.placed[target] = max(call.placed.get(target, 0), 1)
        self._set(call_id, target, "recipient", DialogState.EARLY, changed)
        own = self._dialog(call_id, call.extension) if call.extension else None
        if own is not None and own.state is DialogState.TRYING:
            self._set(call_id, call.extension, "initiator", DialogState.EARLY, changed)

    def _leg_ended(self, call_id: str, e: dict, changed: set[str]) -> None:
        call = self.calls.get(call_id)
        target = str(e.get("target") or "")
        if call is None:
            return
        left = call.placed[target] = max(call.placed.get(target, 0) - 1, 0)
        d = self._dialog(call_id, target)
        if left == 0 and d is not None and d.direction == "recipient" and d.state is DialogState.EARLY:
            self._end(call_id, target, changed)  # none of its phones rings for the call any more

    def _answered(self, call_id: str, e: dict, changed: set[str]) -> None:
        by = str(e.get("by") or "")
        call = self.calls.setdefault(call_id, _Call())
        for lamp in list(call.lamps):
            d = self._dialog(call_id, lamp)
            if d is not None and d.direction == "recipient" and lamp != by:
                self._end(call_id, lamp, changed)
        if by and by != call.extension:
            self._set(call_id, by, "recipient", DialogState.CONFIRMED, changed)
        if call.extension:
            self._set(call_id, call.extension, "initiator", DialogState.CONFIRMED, changed)
        call.placed.clear()

    def _transferred(self, call_id: str, e: dict, changed: set[str]) -> None:
        by = str(e.get("by") or "")
        if by:
            self._end(call_id, by, changed)  # the transferor's leg ended
        self._answered(call_id, {"by": e.get("to")}, changed)

    def _picked_up(self, call_id: str, e: dict, changed: set[str]) -> None:
        picker = e.get("picker")
        if picker:
            # The picker's own call became a leg of this one and ends without a CallEnded.
            self._ended(str(picker), {}, changed)

    def _step(self, call_id: str, e: dict, changed: set[str]) -> None:
        call = self.calls.get(call_id)
        if call is None:
            return
        for lamp in list(call.lamps):
            d = self._dialog(call_id, lamp)
            if d is not None and d.direction == "recipient" and d.state is DialogState.EARLY:
                self._end(call_id, lamp, changed)
        call.placed.clear()
        if call.extension and str(e.get("step") or "") in ANSWERING_STEPS:
            self._set(call_id, call.extension, "initiator", DialogState.CONFIRMED, changed)

    def _ended(self, call_id: str, e: dict, changed: set[str]) -> None:
        call = self.calls.pop(call_id, None)
        if call is None:
            return
        for lamp in call.lamps:
            self._end(call_id, lamp, changed)


def is_night_code(lamp: str) -> bool:
    rest = lamp[len(NIGHT_CODE):]
    return lamp.startswith(NIGHT_CODE) and (rest == "" or (rest.isdigit() and len(rest) == 1 and rest != "0"))


def dialog_info(entity: str, version: int, dialogs: Iterable[Dialog], host: str) -> bytes:
    """A full dialog-info document (RFC 4235 section 4) for one lamp; `host` names the PBX in URIs."""
    root = ET.Element("dialog-info", {"xmlns": NAMESPACE, "version": str(version), "state": "full", "entity": entity})
    lamp = entity.split(":", 1)[-1].split("@", 1)[0]
    for d in dialogs:
        attrs = {"id": d.id}
        if d.direction:
            attrs["direction"] = d.direction
        node = ET.SubElement(root, "dialog", attrs)
        ET.SubElement(node, "state").text = str(d.state)
        if d.remote:
            remote = ET.SubElement(node, "remote")
            ident = ET.SubElement(remote, "identity", {"display": d.remote_name} if d.remote_name else {})
            ident.text = f"sip:{d.remote}@{host}"
            if d.direction == "recipient" and d.state is DialogState.EARLY:
                # Calling this target takes the ringing call (the engine's directed pickup).
                ET.SubElement(remote, "target", {"uri": f"sip:{PICKUP_PREFIX}{lamp}@{host}"})
            else:
                ET.SubElement(remote, "target", {"uri": f"sip:{d.remote}@{host}"})
        local = ET.SubElement(node, "local")
        ET.SubElement(local, "identity").text = entity
        ET.SubElement(local, "target", {"uri": entity})
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode").encode()


# -- the presence package (RFC 3856): the same lamp for phones and softphones that watch presence --

PIDF_TYPE = "application/pidf+xml"
PIDF_NS = "urn:ietf:params:xml:ns:pidf"
DM_NS = "urn:ietf:params:xml:ns:pidf:data-model"
RPID_NS = "urn:ietf:params:xml:ns:pidf:rpid"


def lamp_status(dialogs: Iterable[Dialog], online: bool, night_key: bool = False) -> tuple[bool, str, str]:
    """(basic open, RPID activity or "", note) of a lamp: offline, in a call, ringing or available."""
    live = [d for d in dialogs if d.state is not DialogState.TERMINATED]
    if night_key:
        return (True, "busy", "Night mode") if live else (True, "", "Day mode")
    if not online:
        return False, "", "Offline"
    if any(d.state is DialogState.CONFIRMED for d in live):
        return True, "on-the-phone", "On the phone"
    if live:
        return True, "", "Ringing"
    return True, "", "Available"


def pidf(entity: str, dialogs: Iterable[Dialog], online: bool, night_key: bool = False) -> bytes:
    """A presence document (PIDF, RFC 3863, with RPID, RFC 4480) for one lamp.

    The tuple's basic status is open while the extension has a registered phone; a person element
    carries the activity (`on-the-phone`, told also as `busy` for clients that know only that one)
    and a note a softphone shows as it is."""
    is_open, activity, note = lamp_status(dialogs, online, night_key)
    root = ET.Element("presence", {"xmlns": PIDF_NS, "xmlns:dm": DM_NS, "xmlns:rpid": RPID_NS, "entity": entity})
    tup = ET.SubElement(root, "tuple", {"id": "t1"})
    ET.SubElement(ET.SubElement(tup, "status"), "basic").text = "open" if is_open else "closed"
    ET.SubElement(tup, "contact").text = entity
    ET.SubElement(tup, "note").text = note
    person = ET.SubElement(root, "dm:person", {"id": "p1"})
    if activity:
        acts = ET.SubElement(person, "rpid:activities")
        ET.SubElement(acts, "rpid:busy")
        if activity != "busy":
            ET.SubElement(acts, f"rpid:{activity}")
    ET.SubElement(person, "dm:note").text = note
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode").encode()
