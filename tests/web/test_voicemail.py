"""Voicemail through the panel: messages found where the engine records them, listened to in the
browser, marked heard and deleted; no address reaches a file outside the voicemail folder."""

from __future__ import annotations

import json
import wave
from pathlib import Path

from appliance.store import Store
from appliance.store.voicemail import Voicemail
from tests.web.conftest import post_form

STEM = "2026-03-10T09-00-00-0123456789abcdef"


def leave_message(data_dir: Path, box: str = "101", stem: str = STEM, seconds: float = 2.0,
                  caller: str = "+380671234567") -> Path:
    """A message as appliance/engine/ivr.py leaves it: 8 kHz 16-bit mono WAV and a JSON file beside it."""
    folder = Path(data_dir) / "voicemail" / box
    folder.mkdir(parents=True, exist_ok=True)
    wav = folder / f"{stem}.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x01\x00" * int(8000 * seconds))
    wav.with_suffix(".json").write_text(json.dumps({
        "call_id": stem[-16:], "box": box, "caller": caller, "caller_name": "Petrenko",
        "dialled": "0441234567", "started_at": "2026-03-10T09:00:00.000+00:00"}))
    return wav


def heard(data_dir) -> dict[str, str | None]:
    with Store(data_dir) as store:
        return {m.id: m.heard_at for m in Voicemail(store, Path(data_dir) / "voicemail").messages()}


def test_messages_are_listed_per_mailbox_with_caller_time_and_length(owner, panel_data):
    leave_message(panel_data, "101", seconds=2.0)
    leave_message(panel_data, "sales", stem="2026-03-10T10-00-00-fedcba9876543210", seconds=5.0,
                  caller="+380501112233")
    page = owner.get("/voicemail/").data.decode()
    assert 'id="box-101"' in page and 'id="box-sales"' in page
    assert "+380671234567" in page and "Petrenko" in page and "2026-03-10 11:00" in page  # Kyiv time
    assert ("2 s" in page and "5 s" in page) or ("2 с" in page and "5 с" in page)
    assert f'src="/voicemail/101/{STEM}.wav"' in page


def test_a_message_is_played_marked_heard_and_deleted(owner, panel_data):
    wav = leave_message(panel_data)
    resp = owner.get(f"/voicemail/101/{STEM}.wav")
    assert resp.status_code == 200 and resp.mimetype == "audio/wav"
    assert resp.data == wav.read_bytes()
    resp.close()
    assert heard(panel_data) == {f"101/{STEM}": None}
    resp = post_form(owner, f"/voicemail/101/{STEM}/heard", {}, page="/voicemail/")
    assert resp.status_code == 302
    assert heard(panel_data)[f"101/{STEM}"] is not None
    resp = post_form(owner, f"/voicemail/101/{STEM}/delete", {}, page="/voicemail/")
    assert resp.status_code == 302
    assert not wav.exists() and not wav.with_suffix(".json").exists()
    assert heard(panel_data) == {}
    assert "No messages" in owner.get("/voicemail/").data.decode() or 'id="no-messages"' in \
        owner.get("/voicemail/").data.decode()


def test_a_post_without_the_forms_token_changes_nothing(owner, panel_data):
    wav = leave_message(panel_data)
    assert owner.post(f"/voicemail/101/{STEM}/delete").status_code == 400
    assert owner.post(f"/voicemail/101/{STEM}/heard").status_code == 400
    assert wav.exists() and heard(panel_data) == {f"101/{STEM}": None}
    resp = post_form(owner, "/voicemail/101/no-such-message/delete", {}, page="/voicemail/")
    assert resp.status_code == 404


def test_no_address_reaches_outside_the_voicemail_folder(owner, panel_data):
    leave_message(panel_data)
    outside = Path(panel_data) / "secret.wav"
    outside.write_bytes(b"RIFF not for the browser")
    (Path(panel_data) / "voicemail" / "101" / "link.wav").symlink_to(outside)
    for url in ("/voicemail/../secret.wav", "/voicemail/101/..%2F..%2Fsecret.wav", "/voicemail/..%2F/secret.wav",
                "/voicemail/%2E%2E/secret.wav", "/voicemail/101/link.wav", "/voicemail/101/%2E%2E%2Fsecret.wav"):
        resp = owner.get(url)
        assert resp.status_code in (404, 308), url
        assert b"not for the browser" not in resp.data, url
    resp = post_form(owner, "/voicemail/..%2F..%2Fsecret/delete", {}, page="/voicemail/")
    assert resp.status_code == 404 and outside.exists()
