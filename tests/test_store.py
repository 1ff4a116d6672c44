import sqlite3

import pytest

from core import store as st


def _session(conn, station="saw-1"):
    return st.start_session(conn, st.SessionInfo("batch", "a.jpg", station, "w.pt", "abc",
                                                 0.25, 0.7, 640))


def test_fresh_store_is_wal_and_current(store, gw_home):
    assert store.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.execute("PRAGMA user_version").fetchone()[0] == st.SCHEMA_VERSION
    assert (gw_home / "glovewatch.sqlite").exists()


def test_results_detections_events_round_trip(store):
    sid = _session(store)
    rid = st.add_result(store, sid, st.ResultRow(
        source="a.jpg", verdict="violation", violation=1,
        detections=[st.DetectionRow(1, "hand", "violation", 0.9, (1, 2, 3, 4))]))
    st.add_event(store, st.EventRow(station="saw-1", started_at=st.now(), session_id=sid,
                                    class_name="hand", peak_conf=0.9))
    st.end_session(store, sid)
    det = store.execute("SELECT * FROM detections WHERE result_id=?", (rid,)).fetchone()
    assert (det["class_name"], det["x2"]) == ("hand", 3)
    day = st.day_summary(store)
    assert (day.sessions, day.images, day.bare, day.events) == (1, 1, 1, 1)
    assert day.compliance == 0.0
    assert store.execute("SELECT status FROM sessions").fetchone()[0] == "finished"


def test_failed_transaction_keeps_earlier_rows(store):
    sid = _session(store)
    st.add_result(store, sid, st.ResultRow(source="ok.jpg"))
    with pytest.raises(sqlite3.IntegrityError):
        st.add_result(store, 999, st.ResultRow(source="orphan.jpg"))  # no such session
    assert [r[0] for r in store.execute("SELECT source FROM results")] == ["ok.jpg"]


def test_old_store_is_upgraded_without_losing_rows(tmp_path):
    db = tmp_path / "old.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript(st.MIGRATIONS[0] + "\nPRAGMA user_version = 1;")
    conn.execute("INSERT INTO sessions (kind, source, station, model_path, model_hash, conf,"
                 " iou, imgsz, started_at) VALUES ('batch','x','s','w','h',0.2,0.7,640,"
                 "'2026-01-01 10:00:00')")
    conn.execute("INSERT INTO events (station, started_at) VALUES ('s','2026-01-01 10:00:00')")
    conn.commit()
    conn.close()
    up = st.connect(db)
    assert up.execute("PRAGMA user_version").fetchone()[0] == st.SCHEMA_VERSION
    assert up.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 1
    ev = up.execute("SELECT review, state FROM events").fetchone()
    assert (ev["review"], ev["state"]) == ("unreviewed", "closed")


def test_newer_store_is_refused(tmp_path):
    db = tmp_path / "new.sqlite"
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {st.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer"):
        st.connect(db)


def test_unwritable_home_gives_clear_error(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "home").write_text("a file, not a folder")
    monkeypatch.setenv("GLOVEWATCH_HOME", str(ro / "home"))
    with pytest.raises(PermissionError, match="GLOVEWATCH_HOME"):
        st.connect()
