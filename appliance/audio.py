"""Prompt and music files: conversion with sox, their length and level, spoken defaults per language.

The panel (its own process, which never loads pjsua2) and the engine both use
this module, so nothing here imports pjsua2.  Every file the engine plays is
an 8 kHz mono 16-bit WAV: `DATA/prompts/<name>.wav` is the owner's own
prompt (any language), `DATA/prompts/<language>/<name>.wav` the appliance's
spoken default in that language, `DATA/music/<name>.wav` music.  A file is
written beside its place and renamed into it, so a player never opens half
a file.
"""

from __future__ import annotations

import array
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import wave
from dataclasses import dataclass
from pathlib import Path

RATE = 8000
LANGUAGES = ("uk", "en")
KINDS = {"prompt": "prompts", "music": "music"}  # kind -> folder under the data directory
LONGEST = {"prompt": 5 * 60, "music": 30 * 60}    # seconds
GREETING_SECONDS = (10, 20)      # what callers sit through happily before a greeting feels long
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SILENT_DB = -50.0                # a peak below this is nothing a caller would hear
QUIET_DB = -35.0                 # an RMS below this is hard to hear over a phone line
CLIPPED_SHARE = 0.001            # samples at full scale, as a share of all of them
log = logging.getLogger("appliance.audio")


class AudioError(Exception):
    """A file that cannot become a prompt or music: the message says why; `code` names the reason
    (unreadable, silent, too-long, no-sox) and `figures` its numbers, for a page to say it in its language."""

    def __init__(self, message: str, code: str, **figures: float):
        super().__init__(message)
        self.code, self.figures = code, figures


@dataclass(frozen=True)
class Figures:
    """What the owner is shown of a sound file: its length and how loud it is."""

    seconds: float
    peak_db: float       # dBFS, -inf for digital silence
    rms_db: float        # dBFS
    clipped: int         # samples at full scale

    @property
    def silent(self) -> bool:
        return self.peak_db < SILENT_DB

    @property
    def quiet(self) -> bool:
        return not self.silent and self.rms_db < QUIET_DB

    @property
    def is_clipped(self) -> bool:
        samples = max(1, round(self.seconds * RATE))
        return self.clipped >= 3 and self.clipped / samples >= CLIPPED_SHARE


# -- names and places ---------------------------------------------------------------------

def valid_name(name: str) -> bool:
    return bool(NAME.match(name or ""))


def folder(data_dir: Path, kind: str) -> Path:
    return Path(data_dir) / KINDS[kind]


def owned_path(data_dir: Path, kind: str, name: str) -> Path:
    """Where the owner's prompt or music `name` lives; ValueError for a name that could leave its folder."""
    if kind not in KINDS or not valid_name(name):
        raise ValueError(f"not a {kind} name: {name!r}")
    return folder(data_dir, kind) / f"{name}.wav"


def prompt_path(data_dir: Path, name: str, language: str = "uk") -> Path | None:
    """The file a prompt is played from: the owner's own (any language), else the spoken default
    in the caller's language; None when neither exists (a tone stands in)."""
    base = Path(data_dir) / "prompts"
    for path in (base / f"{name}.wav", base / language / f"{name}.wav"):
        if path.exists():
            return path
    return None


def owned(data_dir: Path, kind: str) -> list[str]:
    """The names of the owner's prompts (or music), sorted; the defaults' folders are not among them."""
    d = folder(data_dir, kind)
    if not d.is_dir():
        return []
    return sorted(p.stem for p in d.glob("*.wav") if valid_name(p.stem))


# -- conversion and measurement --------------------------------------------------------------

def _sox() -> str:
    sox = shutil.which("sox")
    if sox is None:
        raise AudioError("sox is not installed (scripts/setup installs it)", "no-sox")
    return sox


def convert(source: Path, dest: Path) -> None:
    """Convert a WAV or MP3 file to an 8 kHz mono 16-bit WAV at `dest` (written beside, then renamed).

    The type is read from the content, not the name: WAV first (its header is
    strict), then MP3.  Raises AudioError when sox can read it as neither;
    `dest` is then untouched."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".wav", prefix=".convert-", dir=dest.parent)
    os.close(fd)
    try:
        for kind in ("wav", "mp3"):
            done = subprocess.run([_sox(), "-V1", "-t", kind, str(source), "-t", "wav", "-r", str(RATE), "-c", "1",
                                   "-b", "16", "-e", "signed-integer", tmp], capture_output=True, timeout=300)
            if done.returncode == 0 and _frames(Path(tmp)) > 0:
                Path(tmp).replace(dest)
                return
        raise AudioError("not a WAV or MP3 file we can read", "unreadable")
    finally:
        Path(tmp).unlink(missing_ok=True)


def _frames(path: Path) -> int:
    try:
        with wave.open(str(path)) as w:
            return w.getnframes()
    except (wave.Error, EOFError, OSError):
        return 0


def measure(path: Path) -> Figures:
    """Length, peak, RMS and clipped samples of an 8 kHz mono 16-bit WAV (one the appliance wrote)."""
    try:
        with wave.open(str(path)) as w:
            if w.getsampwidth() != 2 or w.getnchannels() != 1:
                raise AudioError("not a 16-bit mono WAV", "unreadable")
            rate, frames = w.getframerate(), w.getnframes()
            clipped = 0
            while chunk := w.readframes(1 << 18):
                samples = array.array("h", chunk)
                clipped += samples.count(32767) + samples.count(-32768)
    except (wave.Error, EOFError) as e:
        raise AudioError(f"not a WAV file we can read ({e})", "unreadable") from e
    peak, rms = _levels(path)
    return Figures(seconds=frames / float(rate), peak_db=peak, rms_db=rms, clipped=clipped)


def _levels(path: Path) -> tuple[float, float]:
    """(peak, RMS) in dBFS from `sox stats`, which does in C what Python would take seconds for."""
    done = subprocess.run([_sox(), str(path), "-n", "stats"], capture_output=True, text=True, timeout=120)
    figures: dict[str, float] = {}
    for line in done.stderr.splitlines():
        for label, key in (("Pk lev dB", "peak"), ("RMS lev dB", "rms")):
            if line.startswith(label):
                figures[key] = float(line[len(label):].split()[0])
    if done.returncode != 0 or len(figures) != 2:
        raise AudioError("sox could not measure the file", "unreadable")
    return figures["peak"], figures["rms"]


def check(kind: str, figures: Figures, greeting: bool = False) -> list[str]:
    """Advice for the owner about a converted file (empty when it is fine).

    Raises AudioError for a file that must not be used: silence, or longer
    than a caller (or the disk) should bear."""
    if figures.silent:
        raise AudioError("the file is silent", "silent", peak_db=figures.peak_db)
    if figures.seconds > LONGEST[kind]:
        minutes, limit = figures.seconds / 60, LONGEST[kind] // 60
        raise AudioError(f"{minutes:.1f} minutes is too long; a {kind} may last {limit} minutes at most",
                         "too-long", minutes=minutes, limit=limit)
    notes = []
    if figures.quiet:
        notes.append("quiet")
    if figures.is_clipped:
        notes.append("clipped")
    low, high = GREETING_SECONDS
    if greeting and not low <= figures.seconds <= high:
        notes.append("greeting-length")
    return notes


def install(source: Path, data_dir: Path, kind: str, name: str, greeting: bool = False) -> tuple[Figures, list[str]]:
    """Convert an uploaded file and put it in place as the prompt or music `name`; (figures, notes).

    Nothing is written when the file is refused (AudioError)."""
    dest = owned_path(data_dir, kind, name)
    fd, staged = tempfile.mkstemp(suffix=".wav", prefix=".staged-", dir=_made(dest.parent))
    os.close(fd)
    try:
        convert(source, Path(staged))
        figures = measure(Path(staged))
        notes = check(kind, figures, greeting)
        Path(staged).replace(dest)
        return figures, notes
    finally:
        Path(staged).unlink(missing_ok=True)


def _made(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return d


# -- spoken prompts ---------------------------------------------------------------------------

_DIGITS_UK = ("нуль", "один", "два", "три", "чотири", "п'ять", "шість", "сім", "вісім", "дев'ять", "десять",
              "одинадцять", "дванадцять", "тринадцять", "чотирнадцять", "п'ятнадцять", "шістнадцять",
              "сімнадцять", "вісімнадцять", "дев'ятнадцять", "двадцять")
_TENS_UK = {30: "тридцять", 40: "сорок", 50: "п'ятдесят", 60: "шістдесят", 70: "сімдесят", 80: "вісімдесят",
            90: "дев'яносто"}
_NUMBERS = (*range(21), 30, 40, 50, 60, 70, 80, 90)

# What the engine says in its own words until the owner records better ones, per language.
SPEECH: dict[str, dict[str, str]] = {
    "en": {
        "queue-position": "You are caller number",
        "queue-wait": "Your estimated waiting time is about",
        "minutes": "minutes",
        "queue-callback": "To be called back, press",
        "queue-exit": "To leave the queue, press",
        "callback-confirm": "Thank you. We will call you back as soon as possible.",
        "vm-unavailable": "Nobody can take your call right now. Please leave a message after the tone.",
        "vm-busy": "The line is busy. Please leave a message after the tone.",
        **{f"digits/{n}": str(n) for n in _NUMBERS},
    },
    "uk": {
        "queue-position": "Ваш номер у черзі",
        "queue-wait": "Орієнтовний час очікування — приблизно",
        "minutes": "хвилин",
        "queue-callback": "Щоб ми вам передзвонили, натисніть",
        "queue-exit": "Щоб вийти з черги, натисніть",
        "callback-confirm": "Дякуємо. Ми передзвонимо вам якнайшвидше.",
        "vm-unavailable": "Зараз ніхто не може відповісти. Будь ласка, залиште повідомлення після сигналу.",
        "vm-busy": "Лінія зайнята. Будь ласка, залиште повідомлення після сигналу.",
        **{f"digits/{n}": _DIGITS_UK[n] if n <= 20 else _TENS_UK[n] for n in _NUMBERS},
    },
}
_speaking = threading.Lock()


def speak(path: Path, text: str, voice: str = "en") -> bool:
    """Say `text` with espeak-ng into `path` as a prompt (8 kHz mono, silence trimmed); False without it.

    Slow (a fraction of a second): run it in a worker thread, never on the
    engine thread."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, raw = tempfile.mkstemp(suffix=".wav", dir=path.parent)
    os.close(fd)
    try:
        subprocess.run([espeak, "-v", voice, "-s", "150", "-w", raw, text], check=True,
                       capture_output=True, timeout=30)
        with wave.open(raw) as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            data = w.readframes(w.getnframes())
        if width != 2 or channels != 1:
            raise ValueError(f"espeak-ng wrote {channels} channel(s) of {width * 8} bits")
        write_wav(path, trim(resample(data, rate, RATE)))
        return True
    finally:
        Path(raw).unlink(missing_ok=True)


def first(language: str) -> tuple[str, ...]:
    """Every language, the given one first (its prompts are made before the others')."""
    return (language, *(x for x in LANGUAGES if x != language)) if language in LANGUAGES else LANGUAGES


def speak_missing(data_dir: Path, languages: tuple[str, ...] = LANGUAGES) -> int:
    """Make the spoken defaults that are missing in `prompts/<language>/`; the number written.

    Slow (a fraction of a second per prompt): run it in a worker thread, never
    on the engine thread.  Without espeak-ng the tone stand-ins are used.  The
    owner's own prompts (`prompts/<name>.wav`) are never touched: they are
    played instead of these."""
    if shutil.which("espeak-ng") is None:
        log.info("espeak-ng is not installed: prompts that were not recorded are played as tones")
        return 0
    written = 0
    with _speaking:
        for language in languages:
            for name, text in SPEECH[language].items():
                path = Path(data_dir) / "prompts" / language / f"{name}.wav"
                if path.exists():
                    continue
                try:
                    speak(path, text, language)
                    written += 1
                except (OSError, subprocess.SubprocessError, wave.Error, ValueError) as e:
                    log.warning("could not generate prompt %s in %s with espeak-ng: %s", name, language, e)
                    return written
    if written:
        log.info("generated %d spoken prompts in %s", written, Path(data_dir) / "prompts")
    return written


def resample(pcm: bytes, rate: int, to: int) -> bytes:
    """16-bit mono PCM from `rate` to `to` Hz: a moving average against aliasing, then
    linear interpolation (good enough for speech prompts)."""
    src = array.array("h", pcm)
    if rate == to or not src:
        return pcm
    width = max(1, round(rate / to))
    if width > 1:
        acc, smooth = 0, array.array("h")
        for i, x in enumerate(src):
            acc += x
            if i >= width:
                acc -= src[i - width]
            smooth.append(int(acc / min(i + 1, width)))
        src = smooth
    out = array.array("h")
    step = rate / to
    n = int(len(src) / step)
    for j in range(n):
        pos = j * step
        i = int(pos)
        frac = pos - i
        b = src[i + 1] if i + 1 < len(src) else src[i]
        out.append(int(src[i] + (b - src[i]) * frac))
    return out.tobytes()


def trim(pcm: bytes, level: int = 300, keep: float = 0.05) -> bytes:
    """Leading and trailing near-silence cut to `keep` seconds (espeak-ng pads its output)."""
    a = array.array("h", pcm)
    loud = [i for i, x in enumerate(a) if abs(x) > level]
    if not loud:
        return pcm
    pad = int(keep * RATE)
    return a[max(0, loud[0] - pad):loud[-1] + pad].tobytes()


def write_wav(path: Path, pcm: bytes, rate: int = RATE) -> None:
    """An 8 kHz mono 16-bit WAV, written beside and renamed (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    tmp.replace(path)
