"""Sound files for prompts and music: real WAV and MP3 files made by sox, converted and measured."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import pytest

from appliance import audio

pytestmark = pytest.mark.skipif(shutil.which("sox") is None, reason="sox is needed (scripts/setup installs it)")


def made(path: Path, *effects: str, rate: int = 44100, channels: int = 2) -> Path:
    """A real sound file made by sox (`synth ...` effects), in the format its name says."""
    subprocess.run(["sox", "-n", "-r", str(rate), "-c", str(channels), str(path), *effects], check=True,
                   capture_output=True)
    return path


def shape(path: Path) -> tuple[int, int, int, float]:
    with wave.open(str(path)) as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes() / w.getframerate()


@pytest.mark.parametrize("suffix", ["mp3", "wav"])
def test_a_stereo_file_becomes_an_8khz_mono_16bit_wav_of_the_same_length(tmp_path, suffix):
    src = made(tmp_path / f"tone.{suffix}", "synth", "3", "sine", "440", "vol", "0.5")
    dest = tmp_path / "out" / "hello.wav"
    audio.convert(src, dest)
    rate, channels, width, seconds = shape(dest)
    assert (rate, channels, width) == (8000, 1, 2)
    assert 2.9 < seconds < 3.2, "an MP3 may carry a few ms of encoder padding, never more"
    fig = audio.measure(dest)
    assert 2.9 < fig.seconds < 3.2
    assert -8 < fig.peak_db < -4 and -12 < fig.rms_db < -7
    assert audio.check("prompt", fig) == []


def test_the_type_is_read_from_the_content_not_the_name(tmp_path):
    src = made(tmp_path / "tone.mp3", "synth", "2", "sine", "440")
    renamed = src.rename(tmp_path / "upload")
    audio.convert(renamed, tmp_path / "x.wav")
    assert shape(tmp_path / "x.wav")[:3] == (8000, 1, 2)


def test_a_file_sox_cannot_read_is_refused_and_nothing_is_written(tmp_path):
    bad = tmp_path / "notes.mp3"
    bad.write_text("these are not sounds\n" * 50)
    dest = tmp_path / "prompts" / "x.wav"
    with pytest.raises(audio.AudioError, match="not a WAV or MP3 file we can read"):
        audio.install(bad, tmp_path, "prompt", "x")
    assert not dest.exists()
    assert list((tmp_path / "prompts").iterdir()) == [], "no temporary file is left behind"


def test_silence_is_refused_and_length_limits_depend_on_the_kind(tmp_path):
    silent = made(tmp_path / "silent.wav", "trim", "0", "2")
    with pytest.raises(audio.AudioError, match="silent"):
        audio.install(silent, tmp_path, "prompt", "quiet")
    assert not (tmp_path / "prompts" / "quiet.wav").exists()
    six = made(tmp_path / "six.wav", "synth", "360", "sine", "300", "vol", "0.3", rate=8000, channels=1)
    with pytest.raises(audio.AudioError, match="too long"):
        audio.install(six, tmp_path, "prompt", "long")
    assert not (tmp_path / "prompts" / "long.wav").exists()
    fig, notes = audio.install(six, tmp_path, "music", "long")
    assert notes == [] and 359 < fig.seconds < 361
    assert audio.owned(tmp_path, "music") == ["long"]


def test_quiet_clipped_and_a_greeting_of_the_wrong_length_get_advice_not_refusal(tmp_path):
    quiet = made(tmp_path / "quiet.wav", "synth", "12", "sine", "440", "vol", "0.005")
    fig, notes = audio.install(quiet, tmp_path, "prompt", "greeting")
    assert notes == ["quiet"] and fig.rms_db < audio.QUIET_DB
    loud = made(tmp_path / "loud.wav", "synth", "3", "square", "440", "gain", "6")
    _fig, notes = audio.install(loud, tmp_path, "prompt", "loud", greeting=True)
    assert notes == ["clipped", "greeting-length"]
    ok = made(tmp_path / "ok.wav", "synth", "12", "sine", "440", "vol", "0.5")
    assert audio.install(ok, tmp_path, "prompt", "welcome", greeting=True)[1] == []


def test_names_that_could_leave_their_folder_are_refused():
    for name in ("../x", "a/b", "", ".hidden", "a b", "x" * 65, "привіт"):
        assert not audio.valid_name(name)
        with pytest.raises(ValueError):
            audio.owned_path(Path("/data"), "prompt", name)
    assert audio.owned_path(Path("/data"), "music", "Hold_2-b") == Path("/data/music/Hold_2-b.wav")


def test_a_prompt_is_the_owners_own_then_the_default_in_the_language_then_none(tmp_path):
    base = tmp_path / "prompts"
    assert audio.prompt_path(tmp_path, "vm-busy", "uk") is None
    for lang in ("uk", "en"):
        audio.write_wav(base / lang / "vm-busy.wav", b"\x00\x10" * 800)
    assert audio.prompt_path(tmp_path, "vm-busy", "uk") == base / "uk" / "vm-busy.wav"
    assert audio.prompt_path(tmp_path, "vm-busy", "en") == base / "en" / "vm-busy.wav"
    audio.write_wav(base / "vm-busy.wav", b"\x00\x20" * 800)
    assert audio.prompt_path(tmp_path, "vm-busy", "uk") == base / "vm-busy.wav"
    assert audio.prompt_path(tmp_path, "vm-busy", "en") == base / "vm-busy.wav"
    assert audio.owned(tmp_path, "prompt") == ["vm-busy"], "the defaults' folders are not the owner's prompts"


def test_both_languages_have_every_default_and_the_given_language_is_made_first():
    assert set(audio.SPEECH["uk"]) == set(audio.SPEECH["en"])
    assert audio.SPEECH["uk"]["digits/7"] == "сім" and audio.SPEECH["uk"]["digits/90"] == "дев'яносто"
    assert audio.first("en") == ("en", "uk") and audio.first("uk") == ("uk", "en")
    assert audio.first("de") == audio.LANGUAGES


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is needed (scripts/setup installs it)")
def test_the_defaults_are_spoken_in_both_languages(tmp_path, monkeypatch):
    two = {lang: {k: v for k, v in audio.SPEECH[lang].items() if k in ("vm-busy", "digits/5")} for lang in ("uk", "en")}
    monkeypatch.setattr(audio, "SPEECH", two)
    assert audio.speak_missing(tmp_path) == 4
    assert audio.speak_missing(tmp_path) == 0
    for lang in ("uk", "en"):
        for name in ("vm-busy", "digits/5"):
            rate, channels, width, seconds = shape(tmp_path / "prompts" / lang / f"{name}.wav")
            assert (rate, channels, width) == (8000, 1, 2) and 0.2 < seconds < 8
    uk = audio.measure(tmp_path / "prompts" / "uk" / "vm-busy.wav")
    assert not uk.silent
