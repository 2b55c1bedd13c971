"""Retention: recordings older than their policy's days are deleted and their links cleared."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from appliance.recording.retention import clean_up, expired, inside
from appliance.store import Store
from appliance.store.recordings import Linked, Recordings

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


def linked(call_id: str, policy: str, days_ago: float) -> Linked:
    return Linked(call_id, f"x/{call_id}.mp3", policy, (NOW - timedelta(days=days_ago)).isoformat())


def test_each_policy_keeps_its_own_days():
    rows = [linked("a1", "always", 29.9), linked("a2", "always", 30.1),
            linked("d1", "on_demand", 300), linked("d2", "on_demand", 366)]
    gone = expired(rows, NOW, {"always": 30, "on_demand": 365})
    assert [r.call_id for r in gone] == ["a2", "d2"]


def test_a_policy_without_days_keeps_the_default_and_an_unreadable_start_is_kept():
    rows = [linked("a", "always", 89), linked("b", "always", 91), Linked("c", "x/c.mp3", "always", "yesterday")]
    assert [r.call_id for r in expired(rows, NOW, {})] == ["b"]


def test_a_linked_path_outside_the_folder_is_never_touched(tmp_path):
    assert inside(tmp_path, "2026/03/10/a.mp3") == (tmp_path / "2026/03/10/a.mp3").resolve()
    assert inside(tmp_path, "../pbx.sqlite3") is None
    assert inside(tmp_path, "/etc/passwd") is None


def record(store: Store, call_id: str, started: datetime) -> None:
    store.call_started({"id": call_id, "started_at": started.isoformat(), "direction": "inbound",
                        "caller": "+380671234567", "dialled": "0441234567", "trunk": "prov", "extension": None,
                        "invite": None, "source": None})


def test_the_clean_up_deletes_old_files_clears_links_and_empty_folders(tmp_path):
    folder = tmp_path / "recordings"
    outside = tmp_path / "keep.mp3"
    outside.write_bytes(b"x")
    with Store(tmp_path) as store:
        for call_id, days_ago in (("old", 40), ("new", 2), ("evil", 400)):
            started = NOW - timedelta(days=days_ago)
            rel = f"{started:%Y/%m/%d}/{call_id}.mp3" if call_id != "evil" else "../keep.mp3"
            if call_id != "evil":
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                (folder / rel).write_bytes(b"mp3")
            record(store, call_id, started)
            Recordings(store).link(call_id, rel, "always")
        assert clean_up(store, folder, NOW, {"always": 30}) == 2
        assert Recordings(store).file_of("old") is None and Recordings(store).file_of("evil") is None
        assert Recordings(store).file_of("new") is not None
        assert store.db.execute("select count(*) from calls").fetchone()[0] == 3  # the records stay
    assert outside.exists(), "a link pointing outside the recordings folder deleted a file"
    assert not (folder / f"{NOW - timedelta(days=40):%Y/%m}").exists(), "the emptied day and month folders stay"
    assert list(folder.rglob("*.mp3")) == [folder / f"{NOW - timedelta(days=2):%Y/%m/%d}/new.mp3"]
