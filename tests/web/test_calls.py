"""Call records through the panel: search by a number in another form, by day and by outcome, 50 to a
page, and a record's path in words.  Records are written the way the engine's recorder writes them."""

from __future__ import annotations

from pathlib import Path

from appliance.store import Store


def record(store: Store, call_id: str, started: str, caller: str, outcome: str, *, dialled: str = "0441234567",
           answered_by: str | None = None, path: list | None = None) -> None:
    """A call as the engine records it: its start (in progress), its answer, its end."""
    store.call_started({"id": call_id, "started_at": started, "direction": "inbound", "caller": caller,
                        "dialled": dialled, "trunk": "provider", "extension": None, "invite": "INVITE", "source": "x"})
    if answered_by:
        store.call_answered(call_id, started, answered_by)
    final = {"id": call_id, "started_at": started, "answered_at": started if answered_by else None,
             "ended_at": started, "direction": "inbound", "caller": caller, "dialled": dialled,
             "trunk": "provider", "extension": None, "answered_by": answered_by, "outcome": outcome,
             "wait_s": 4.0, "talk_s": 30.0 if answered_by else 0.0,
             "path": path or [{"kind": "end", "reason": "caller hung up", "rung": []}],
             "invite": None, "source": None}
    missed = {"caller": caller, "dialled": dialled, "at": started, "manager": None} \
        if outcome in ("missed", "voicemail") else None
    store.finish_call(final, missed)


RECORDED_PATH = [{"t": 0.0, "kind": "recording", "what": "policy", "policy": "always", "by": "trunk:provider"},
                 {"t": 0.1, "kind": "recording", "what": "started", "part": 1}]


def recorded_call(panel_data, mp3_bytes: bytes = b"\xff\xe3" + bytes(400)) -> Path:
    """Call c1 with its recording written and linked as the encoder leaves it, and c2 without one."""
    from appliance.store.recordings import Recordings

    mp3 = panel_data / "recordings" / "2026" / "03" / "10" / "20260310-100000-c1.mp3"
    mp3.parent.mkdir(parents=True)
    mp3.write_bytes(mp3_bytes)
    with Store(panel_data) as store:
        record(store, "c1", "2026-03-10T08:00:00.000+00:00", "+380671234567", "answered", answered_by="102",
               path=[*RECORDED_PATH, {"kind": "end", "reason": "caller hung up", "rung": ["102"]}])
        record(store, "c2", "2026-03-10T09:00:00.000+00:00", "+380671234567", "answered", answered_by="102")
        Recordings(store).link("c1", "2026/03/10/20260310-100000-c1.mp3", "always")
    return mp3


PATH = [
    {"t": 0.0, "kind": "step", "step": "ring", "dest": "group:office", "name": "Office"},
    {"t": 0.1, "kind": "leg", "target": "101", "code": 180},
    {"t": 7.5, "kind": "answered", "by": "102"},
    {"t": 40.2, "kind": "transfer", "how": "blind", "by": "102", "to": "103"},
    {"t": 41.0, "kind": "mystery", "detail": "new kind"},
    {"kind": "end", "reason": "caller hung up", "rung": ["101", "102"]},
]


def test_search_by_number_in_another_form_and_by_outcome(owner, panel_data):
    with Store(panel_data) as store:
        record(store, "c1", "2026-03-10T08:00:00.000+00:00", "+380671234567", "answered", answered_by="102",
               path=PATH)
        record(store, "c2", "2026-03-10T09:00:00.000+00:00", "+380671234567", "missed")
        record(store, "c3", "2026-03-11T09:00:00.000+00:00", "+380501112233", "voicemail", dialled="380441234567")
    resp = owner.get("/calls/?number=067+123+45+67")
    assert resp.status_code == 200
    page = resp.data.decode()
    assert "Calls found: 2" in page or "Знайдено дзвінків: 2" in page
    assert "/calls/c1" in page and "/calls/c2" in page and "/calls/c3" not in page
    page = owner.get("/calls/?number=380671234567&outcome=missed").data.decode()
    assert "/calls/c2" in page and "/calls/c1" not in page
    page = owner.get("/calls/?outcome=voicemail").data.decode()
    assert "/calls/c3" in page and "/calls/c1" not in page
    # The dialled number as the provider sent it, found by its national form.
    page = owner.get("/calls/?number=0441234567").data.decode()
    assert all(f"/calls/{c}" in page for c in ("c1", "c2", "c3"))
    # By who answered.
    page = owner.get("/calls/?number=102").data.decode()
    assert "/calls/c1" in page and "/calls/c2" not in page


def test_search_by_office_days(owner, panel_data):
    with Store(panel_data) as store:
        # 23:30 UTC on the 10th is already the 11th in Kyiv (UTC+2 in March).
        record(store, "late", "2026-03-10T23:30:00.000+00:00", "+380671234567", "answered", answered_by="101")
        record(store, "early", "2026-03-10T08:00:00.000+00:00", "+380671234567", "answered", answered_by="101")
    page = owner.get("/calls/?day_from=2026-03-11&day_to=2026-03-11").data.decode()
    assert "/calls/late" in page and "/calls/early" not in page
    assert "2026-03-11 01:30" in page
    page = owner.get("/calls/?day_from=2026-03-10&day_to=2026-03-10").data.decode()
    assert "/calls/early" in page and "/calls/late" not in page


def test_a_bad_search_answers_400_with_the_error_next_to_the_field(owner, panel_data):
    for query, where in (("day_from=yesterday", "day_from"), ("day_from=2026-03-11&day_to=2026-03-10", "day_to"),
                         ("outcome=exploded", "outcome"), ("number=sales", "number")):
        resp = owner.get(f"/calls/?{query}")
        assert resp.status_code == 400, query
        assert f'id="{where}-error"' in resp.data.decode(), query


def test_records_come_50_to_a_page(owner, panel_data):
    with Store(panel_data) as store:
        for i in range(120):
            record(store, f"p{i:03d}", f"2026-03-10T{8 + i // 60:02d}:{i % 60:02d}:00.000+00:00", "+380671234567",
                   "answered", answered_by="101")
    first = owner.get("/calls/?number=0671234567").data.decode()
    assert first.count('href="/calls/p') == 50 and "/calls/p119" in first and "/calls/p069" not in first
    third = owner.get("/calls/?number=0671234567&page=3").data.decode()
    assert third.count('href="/calls/p') == 20 and "/calls/p000" in third
    assert "page=2" in third and "number=0671234567" in third


def test_a_record_shows_the_path_the_call_took_in_words(owner, panel_data):
    with Store(panel_data) as store:
        record(store, "c1", "2026-03-10T08:00:00.000+00:00", "+380671234567", "answered", answered_by="102",
               path=PATH)
    page = owner.get("/calls/c1").data.decode()
    assert 'id="call-path"' in page
    for words in ("Office", "102", "103", "detail=new kind", "caller hung up"):
        assert words in page, words
    assert owner.get("/calls/nope").status_code == 404


def test_a_recorded_call_has_a_player_and_its_file_is_served(owner, panel_data):
    mp3 = recorded_call(panel_data)
    page = owner.get("/calls/c1").data.decode()
    assert '<audio id="call-recording" controls' in page and 'src="/calls/c1/recording"' in page
    assert 'href="/calls/c1/recording?download=1"' in page
    assert "trunk:provider" in page and ("recording started" in page or "запис почато" in page)
    resp = owner.get("/calls/c1/recording")
    assert resp.status_code == 200 and resp.mimetype == "audio/mpeg"
    assert resp.data == mp3.read_bytes()
    assert "attachment" not in resp.headers.get("Content-Disposition", "")
    resp = owner.get("/calls/c1/recording?download=1")
    assert resp.headers["Content-Disposition"].startswith("attachment") and "c1.mp3" in resp.headers["Content-Disposition"]
    part = owner.get("/calls/c1/recording", headers={"Range": "bytes=0-9"})  # the player seeks
    assert part.status_code == 206 and len(part.data) == 10
    # A call without a recording has no player, and nothing is served for it or for an unknown id.
    assert "call-recording" not in owner.get("/calls/c2").data.decode()
    for call_id in ("c2", "nope", "..%2F..%2Fpbx.sqlite3", "c1%2F..%2F..%2Fpbx.sqlite3"):
        assert owner.get(f"/calls/{call_id}/recording").status_code == 404, call_id


def test_a_link_pointing_outside_the_recordings_folder_is_not_served(owner, panel_data):
    from appliance.store.recordings import Recordings

    with Store(panel_data) as store:
        record(store, "c1", "2026-03-10T08:00:00.000+00:00", "+380671234567", "answered", answered_by="102")
        Recordings(store).link("c1", "../pbx.sqlite3", "always")
    assert (panel_data / "pbx.sqlite3").exists()
    assert owner.get("/calls/c1/recording").status_code == 404
    assert "call-recording" not in owner.get("/calls/c1").data.decode()


def test_search_for_calls_with_a_recording_and_delete_one(owner, panel_data):
    from appliance.store.recordings import Recordings
    from tests.web.conftest import post_form

    mp3 = recorded_call(panel_data)
    page = owner.get("/calls/?recorded=y").data.decode()
    assert "Calls found: 1" in page or "Знайдено дзвінків: 1" in page
    assert 'href="/calls/c1"' in page and 'href="/calls/c2"' not in page
    everything = owner.get("/calls/").data.decode()
    assert 'href="/calls/c1"' in everything and 'href="/calls/c2"' in everything

    assert owner.post("/calls/c1/recording/delete").status_code == 400  # no form token: nothing changes
    assert mp3.exists()
    resp = post_form(owner, "/calls/c1/recording/delete", {}, page="/calls/c1")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/calls/c1")
    assert not mp3.exists()
    page = owner.get("/calls/c1").data.decode()
    assert "call-recording" not in page and "delete-recording" not in page
    assert "deleted in the panel at 2026-" in page or "видалено в панелі 2026-" in page
    with Store(panel_data) as store:
        row = [c for c in store.recent_calls(10) if c["id"] == "c1"][0]
        assert row["outcome"] == "answered" and Recordings(store).linked() == []
        assert [p["kind"] for p in row["path"]][-1] == "end"  # the note goes before the end
    assert 'href="/calls/c1"' not in owner.get("/calls/?recorded=y").data.decode()
    # Nothing is left to delete; a call that never had a recording has none either.
    for call_id in ("c1", "c2", "nope"):
        assert post_form(owner, f"/calls/{call_id}/recording/delete", {}, page="/calls/").status_code == 404
