"""Prompts and music through the panel: uploads converted for the telephone, refused files, text to
speech in both languages, listening, and deleting what the routing does not use."""

from __future__ import annotations

import shutil
import subprocess
import wave
from io import BytesIO
from pathlib import Path

import pytest

from appliance.store import Store
from tests.web.conftest import post_form
from web import office

pytestmark = pytest.mark.skipif(shutil.which("sox") is None, reason="sox is needed (scripts/setup installs it)")


def sound(tmp_path: Path, filename: str, *effects: str) -> bytes:
    """The bytes of a real sound file made by sox (44.1 kHz stereo, the format its name says)."""
    path = tmp_path / filename
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", str(path), *effects], check=True, capture_output=True)
    return path.read_bytes()


def upload(client, name: str, data: bytes, filename: str, kind: str = "prompt"):
    return post_form(client, "/prompts/upload", {"name": name, "kind": kind, "file": (BytesIO(data), filename)},
                     page="/prompts/", content_type="multipart/form-data")


def shape(path: Path) -> tuple[int, int, int, float]:
    with wave.open(str(path)) as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes() / w.getframerate()


def files(data_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(data_dir)) for d in ("prompts", "music") if (data_dir / d).exists()
                  for p in (data_dir / d).rglob("*") if p.is_file())


@pytest.mark.parametrize("filename, kind, folder", [("tone.mp3", "prompt", "prompts"), ("tone.wav", "music", "music")])
def test_an_upload_is_converted_listed_and_playable(owner, panel_data, tmp_path, filename, kind, folder):
    resp = upload(owner, "welcome", sound(tmp_path, filename, "synth", "3", "sine", "440", "vol", "0.5"),
                  filename, kind)
    assert resp.status_code == 302, resp.data[:2000]
    path = panel_data / folder / "welcome.wav"
    rate, channels, width, seconds = shape(path)
    assert (rate, channels, width) == (8000, 1, 2) and 2.9 < seconds < 3.2
    page = owner.get("/prompts/").data.decode()
    assert "is saved (3.0 s)" in page or "збережено (3,0 с)" in page or "збережено (3.0 с)" in page
    assert f'id="{kind}-welcome"' in page and "3.0" in page
    src = f"/prompts/file/{kind}/welcome.wav"
    assert f'src="{src}"' in page
    played = owner.get(src)
    assert played.status_code == 200 and played.mimetype == "audio/wav"
    assert played.data == path.read_bytes()


def test_a_file_that_is_not_sound_is_refused_next_to_the_field_and_nothing_is_written(owner, panel_data):
    resp = upload(owner, "welcome", b"these are not sounds\n" * 100, "welcome.mp3")
    assert resp.status_code == 400
    page = resp.data.decode()
    assert 'id="file-error"' in page
    assert "Not a WAV or MP3 file we can read" in page or "WAV чи MP3" in page
    assert files(panel_data) == []


def test_silent_and_too_long_files_are_refused(owner, panel_data, tmp_path):
    resp = upload(owner, "hush", sound(tmp_path, "hush.wav", "trim", "0", "2"), "hush.wav")
    assert resp.status_code == 400 and 'id="file-error"' in resp.data.decode()
    long = tmp_path / "long.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", str(long), "synth", "310", "sine", "300", "vol", "0.3"],
                   check=True)
    resp = upload(owner, "long", long.read_bytes(), "long.wav")
    assert resp.status_code == 400 and 'id="file-error"' in resp.data.decode()
    assert files(panel_data) == []


def test_a_greeting_of_the_wrong_length_is_saved_with_advice(owner, panel_data, tmp_path):
    resp = upload(owner, "greeting-main", sound(tmp_path, "g.mp3", "synth", "3", "sine", "440", "vol", "0.5"), "g.mp3")
    assert resp.status_code == 302
    page = owner.get("/prompts/").data.decode()
    assert "10" in page and 'class="flash error"' in page
    assert (panel_data / "prompts" / "greeting-main.wav").exists()


@pytest.mark.parametrize("name", ["../evil", "a b", "", "привіт", "x/y"])
def test_the_name_is_checked(owner, panel_data, tmp_path, name):
    resp = upload(owner, name, sound(tmp_path, "t.wav", "synth", "1", "sine", "440"), "t.wav")
    assert resp.status_code == 400 and 'id="name-error"' in resp.data.decode()
    assert files(panel_data) == []


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is needed (scripts/setup installs it)")
@pytest.mark.parametrize("language, text", [("uk", "Вітаємо! Ви зателефонували до нашого офісу."),
                                            ("en", "Welcome! You have called our office.")])
def test_text_to_speech_makes_a_prompt_in_either_language(owner, panel_data, language, text):
    resp = post_form(owner, "/prompts/speak", {"tts-name": f"hello-{language}", "tts-language": language,
                                               "tts-text": text}, page="/prompts/")
    assert resp.status_code == 302, resp.data[:2000]
    rate, channels, width, seconds = shape(panel_data / "prompts" / f"hello-{language}.wav")
    assert (rate, channels, width) == (8000, 1, 2) and 1 < seconds < 10
    assert f'id="prompt-hello-{language}"' in owner.get("/prompts/").data.decode()


def test_text_to_speech_refuses_a_text_too_long(owner, panel_data):
    resp = post_form(owner, "/prompts/speak", {"tts-name": "long", "tts-language": "en", "tts-text": "a" * 501},
                     page="/prompts/")
    assert resp.status_code == 400 and 'id="tts-text-error"' in resp.data.decode()
    assert files(panel_data) == []


def test_a_prompt_the_routing_uses_is_not_deleted_and_the_page_says_where(owner, panel_data, tmp_path):
    assert upload(owner, "closed", sound(tmp_path, "c.wav", "synth", "2", "sine", "440"), "c.wav").status_code == 302
    assert upload(owner, "spare", sound(tmp_path, "s.wav", "synth", "2", "sine", "440"), "s.wav").status_code == 302
    with Store(panel_data) as store:
        doc = office.document(store)
        doc["routing"]["announcements"] = {"closed": {"name": "We are closed", "prompt": "closed", "then": "hangup"}}
        doc["routing"]["unmatched"] = "announcement:closed"
        office.save(store, doc, "owner", "closed announcement")
    resp = post_form(owner, "/prompts/delete", {"kind": "prompt", "name": "closed"}, page="/prompts/")
    assert resp.status_code == 302
    page = owner.get("/prompts/").data.decode()
    assert "We are closed" in page and 'class="flash error"' in page
    assert (panel_data / "prompts" / "closed.wav").exists()
    resp = post_form(owner, "/prompts/delete", {"kind": "prompt", "name": "spare"}, page="/prompts/")
    assert resp.status_code == 302 and not (panel_data / "prompts" / "spare.wav").exists()


def test_a_listen_link_cannot_leave_the_prompt_folders(owner, panel_data):
    (panel_data / "secret.wav").write_bytes(b"RIFF")
    for url in ("/prompts/file/prompt/../secret.wav", "/prompts/file/prompt/..%2Fsecret.wav",
                "/prompts/file/uk/..%2F..%2Fsecret.wav", "/prompts/file/etc/passwd.wav",
                "/prompts/file/uk/not-a-default.wav", "/prompts/file/prompt/missing.wav"):
        assert owner.get(url).status_code == 404, url


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is needed (scripts/setup installs it)")
def test_the_appliances_own_prompts_are_spoken_in_both_languages_and_can_be_heard(owner, panel_data):
    resp = post_form(owner, "/prompts/defaults", {}, page="/prompts/")
    assert resp.status_code == 302
    for language in ("uk", "en"):
        assert shape(panel_data / "prompts" / language / "vm-busy.wav")[:3] == (8000, 1, 2)
        assert (panel_data / "prompts" / language / "digits" / "7.wav").exists()
        played = owner.get(f"/prompts/file/{language}/vm-busy.wav")
        assert played.status_code == 200 and played.mimetype == "audio/wav"
    page = owner.get("/prompts/").data.decode()
    assert 'src="/prompts/file/uk/queue-position.wav"' in page
    assert 'id="prompt-vm-busy"' not in page, "the defaults are not listed as the owner's prompts"
