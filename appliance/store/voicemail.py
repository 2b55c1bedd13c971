"""Voicemail messages: the files the engine records, and which of them the owner has heard.

The engine (appliance/engine/ivr.py) records a message into
`<data>/voicemail/<box>/<started>-<call id>.wav` and writes what it knows about
the caller into a `.json` file of the same name.  It keeps no row per message,
so the files are the list; the `voicemail_heard` table (migrations_voicemail)
adds whether each was heard.  A message is named by its id `<box>/<stem>`, and
only ids found by listing the folder are ever turned into a path, so no name a
browser sends can reach outside it.
"""

from __future__ import annotations

import json
import wave
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from appliance.store import Store


@dataclass(frozen=True)
class Message:
    id: str             # "<box>/<stem>"
    box: str
    path: Path          # the WAV file
    caller: str
    caller_name: str
    dialled: str
    call_id: str
    started_at: str     # ISO time in UTC
    seconds: float | None  # None while the engine is still recording it (its header not yet written)
    heard_at: str | None


class Voicemail:
    def __init__(self, store: Store, folder: Path):
        self.store = store
        self.folder = Path(folder)

    def messages(self) -> list[Message]:
        """Every message, newest first."""
        heard = self._heard()
        found = [self._message(wav, heard) for wav in self._files()]
        return sorted(found, key=lambda m: (m.started_at, m.id), reverse=True)

    def message(self, message_id: str) -> Message | None:
        """The message with this id, only if listing the folder finds it."""
        for m in self.messages():
            if m.id == message_id:
                return m
        return None

    def mark_heard(self, message_id: str, at: str) -> None:
        with self.store.transaction():
            self.store.db.execute("insert or ignore into voicemail_heard (message, heard_at) values (?, ?)",
                                  [message_id, at])

    def delete(self, message: Message) -> None:
        """Remove the recording, what the engine wrote beside it, and its heard row."""
        message.path.unlink(missing_ok=True)
        message.path.with_suffix(".json").unlink(missing_ok=True)
        with self.store.transaction():
            self.store.db.execute("delete from voicemail_heard where message = ?", [message.id])

    def _heard(self) -> dict[str, str]:
        return dict(self.store.db.execute("select message, heard_at from voicemail_heard").fetchall())

    def _files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return [wav for box in self.folder.iterdir() if box.is_dir() and not box.is_symlink()
                for wav in box.glob("*.wav") if wav.is_file() and not wav.is_symlink()]

    def _message(self, wav: Path, heard: dict[str, str]) -> Message:
        about = _about(wav.with_suffix(".json"))
        message_id = f"{wav.parent.name}/{wav.stem}"
        started = about.get("started_at") or datetime.fromtimestamp(
            wav.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
        return Message(message_id, wav.parent.name, wav, str(about.get("caller") or ""),
                       str(about.get("caller_name") or ""), str(about.get("dialled") or ""),
                       str(about.get("call_id") or ""), str(started), _seconds(wav), heard.get(message_id))


def _about(path: Path) -> dict:
    """What the engine wrote about the caller; nothing when the file is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _seconds(wav: Path) -> float | None:
    try:
        with wave.open(str(wav), "rb") as w:
            rate = w.getframerate()
            return round(w.getnframes() / rate, 1) if rate else None
    except (OSError, EOFError, wave.Error):
        return None
