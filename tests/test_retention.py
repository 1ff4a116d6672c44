"""Retention deletes old evidence and raw rows while the History figures stay the same."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from core import history as h
from core import store as st
from core.retention import last_runs, run_retention
from core.review import load_evidence

OLD = (datetime.now() - timedelta(days=100)).strftime("%Y-%m-%d")
RECENT = (datetime.now() - timedelta(days=2)).strftime("%Y-%m-%d")


@pytest.fixture
def aged(batch_home):
    """The real batch session moved 100 days back, plus old and recent coverage seconds (the
    old ones without an hourly roll-up, as after a crash) and a recent episode."""
    conn = st.connect()
    conn.execute("UPDATE results SET ts = ? || substr(ts, 11)", (OLD,))
    conn.execute("UPDATE events SET started_at = ? || substr(started_at, 11),"
                 " ended_at = ? || substr(ended_at, 11)", (OLD, OLD))
    conn.execute("UPDATE sessions SET started_at = ? || substr(started_at, 11)", (OLD,))
    rows = [("Saw 02", f"{day} 10:00:{s:02d}", 1, 1.0 if s % 4 else 0.0, 0.0 if s % 4 else 1.0)
            for day in (OLD, RECENT) for s in range(40)]
    conn.executemany("INSERT INTO coverage_seconds (station, ts, hands, gloved_s, bare_s)"
                     " VALUES (?,?,?,?,?)", rows)
    conn.execute("INSERT INTO coverage_hourly VALUES ('Saw 02', ?, 40, 40, 30, 10)",
                 (f"{RECENT} 10:00:00",))
    st.add_event(conn, st.EventRow(station="Saw 02", started_at=f"{RECENT} 10:00:05"))
    yield conn
    conn.close()


def _figures(conn):
    f = h.HistoryFilter(date.fromisoformat(OLD), date.today())
    return h.kpis(conn, f).total, h.station_shift(conn, f), h.trend(conn, f)


def test_retention_removes_old_raw_data_and_keeps_figures(aged, batch_home):
    conn = aged
    evidence = [Path(p) for (p,) in conn.execute("SELECT evidence_path FROM events"
                                                 " WHERE evidence_path IS NOT NULL")]
    crops = [Path(p) for (p,) in conn.execute("SELECT crop_path FROM events"
                                              " WHERE crop_path IS NOT NULL")]
    annotated = [Path(p) for (p,) in conn.execute("SELECT annotated_path FROM results")]
    assert evidence and all(p.exists() for p in evidence + annotated)
    n_det = conn.execute("SELECT COUNT(*) FROM detections").fetchone()[0]
    # the old seconds have no roll-up yet: add it as the recorder would have
    conn.execute("INSERT INTO coverage_hourly VALUES ('Saw 02', ?, 40, 40, 30, 10)",
                 (f"{OLD} 10:00:00",))
    before = _figures(conn)

    rep = run_retention(conn, days=90)

    assert rep.results_deleted == 5 and rep.detections_deleted == n_det
    assert rep.coverage_seconds_deleted == 40 and rep.hours_rolled_up == 0
    assert rep.episodes_cleared == len(evidence)
    assert rep.files_removed == len(set(evidence + crops + annotated))
    assert rep.bytes_freed > 0 and "evidence files" in rep.summary()
    assert not any(p.exists() for p in evidence + crops + annotated)
    assert conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM coverage_seconds").fetchone()[0] == 40
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == len(evidence) + 1
    assert _figures(conn) == before  # hand-time and detection figures are unchanged
    ep = h.episodes(conn, h.HistoryFilter(date.fromisoformat(OLD), date.fromisoformat(OLD)))[0]
    assert ep.evidence_path is None and ep.evidence_removed_at
    assert "removed by retention" in load_evidence(ep).message
    runs = last_runs(conn)
    assert runs[0].days == 90 and runs[0].report["files_removed"] == rep.files_removed
    again = run_retention(conn, days=90)  # nothing left to remove
    assert again.files_removed == 0 and again.results_deleted == 0
    assert _figures(conn) == before


def test_retention_rolls_up_seconds_without_hourly_rows(aged):
    rep = run_retention(aged, days=90)
    assert rep.hours_rolled_up == 1
    row = aged.execute("SELECT watched_s, gloved_s, bare_s FROM coverage_hourly WHERE hour = ?",
                       (f"{OLD} 10:00:00",)).fetchone()
    assert tuple(row) == (40.0, 30.0, 10.0)


def test_retention_leaves_files_outside_the_data_folder(aged, tmp_path):
    outside = tmp_path / "elsewhere.jpg"
    outside.write_bytes(b"x")
    aged.execute("UPDATE events SET evidence_path = ? WHERE id = 1", (str(outside),))
    rep = run_retention(aged, days=90)
    assert outside.exists() and str(outside) in rep.files_outside_home


def test_retention_rejects_zero_days(store):
    with pytest.raises(ValueError, match="at least 1 day"):
        run_retention(store, days=0)


def test_retention_cli(aged, capfd):
    from core.cli import main

    assert main(["retention", "--days", "90", "--json"]) == 0
    out = json.loads(capfd.readouterr().out.strip().splitlines()[-1])
    assert out["results_deleted"] == 5 and out["coverage_seconds_deleted"] == 40
