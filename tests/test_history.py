"""History aggregations on hand-made rows (exact numbers), on synth stores, and on old schemas."""

from __future__ import annotations

import json
import sqlite3
from datetime import date

import pytest

from core import history as h
from core import store as st
from core import synth
from core.config import Shift

DAY = date(2026, 1, 5)  # a Monday


def _hour(conn, station, hour, watched=3600.0, gloved=0.0, bare=0.0):
    conn.execute("INSERT INTO coverage_hourly (station, hour, watched_s, hand_s, gloved_s,"
                 " bare_s) VALUES (?,?,?,?,?,?)", (station, hour, watched, gloved + bare,
                                                   gloved, bare))


def _event(conn, station, started, duration=5.0, severity="warning", review="unreviewed",
           class_name="hand", **kw):
    eid = st.add_event(conn, st.EventRow(station=station, started_at=started, ended_at=started,
                                         duration_s=duration, severity=severity,
                                         class_name=class_name, **kw))
    conn.execute("UPDATE events SET review=? WHERE id=?", (review, eid))
    return eid


@pytest.fixture
def exact(store):
    """Two stations, one day: hand-time at 07:00 (Early), 23:00 and 02:00 (Night)."""
    _hour(store, "A", "2026-01-05 07:00:00", gloved=900, bare=100)
    _hour(store, "A", "2026-01-05 23:00:00", gloved=50, bare=50)
    _hour(store, "A", "2026-01-05 02:00:00", gloved=30, bare=10)
    _hour(store, "B", "2026-01-05 15:00:00", gloved=400, bare=0)
    _event(store, "A", "2026-01-05 07:10:00", duration=20, review="dismissed")
    _event(store, "A", "2026-01-05 07:20:00", duration=4, severity="critical")
    _event(store, "A", "2026-01-05 23:30:00", duration=6)
    return store


def test_kpis_use_hand_time_and_leave_dismissed_out(exact):
    f = h.HistoryFilter(DAY, DAY)
    k = h.kpis(exact, f)
    t = k.total
    assert t.basis == h.BASIS_HAND_TIME and "hand-time" in k.basis_note
    assert t.episodes == 2 and t.critical == 1 and t.dismissed == 1
    gloved, bare = 900 + 50 + 30 + 400, 100 + 50 + 10 - 20  # dismissed 20 s taken out
    assert k.compliance == pytest.approx(gloved / (gloved + bare))
    assert t.minutes == pytest.approx(4 * 60)


def test_station_shift_night_crosses_midnight(exact):
    cells = {s.key: s for s in h.station_shift(exact, h.HistoryFilter(DAY, DAY))}
    assert set(cells) == {("A", "Early"), ("A", "Night"), ("B", "Late")}
    night = cells[("A", "Night")]
    assert night.gloved_s == 80 and night.bare_s == 60 and night.episodes == 1
    assert cells[("A", "Early")].compliance == pytest.approx(900 / (900 + 80))
    assert cells[("B", "Late")].compliance == 1.0


def test_shift_sql_custom_shifts():
    shifts = (Shift("Day", "07:00", "19:00"), Shift("Night", "19:00", "07:00"))
    conn = sqlite3.connect(":memory:")
    expr = h.shift_sql("t", shifts)
    name = [conn.execute(f"SELECT {expr} FROM (SELECT ? AS t)", (t,)).fetchone()[0]
            for t in ("2026-01-01 06:59:59", "2026-01-01 07:00:00", "2026-01-01 23:00:00")]
    assert name == ["Night", "Day", "Night"]


def test_filters_shift_and_episode_only_filters(exact):
    early = h.kpis(exact, h.HistoryFilter(DAY, DAY, shifts=("Early",))).total
    assert early.gloved_s == 900 and early.episodes == 1
    crit = h.kpis(exact, h.HistoryFilter(DAY, DAY, severities=("critical",))).total
    assert crit.episodes == 1 and crit.gloved_s == 1380  # hand-time is not filtered
    only_b = h.kpis(exact, h.HistoryFilter(DAY, DAY, stations=("B",))).total
    assert only_b.episodes == 0 and only_b.compliance == 1.0
    assert h.count_episodes(exact, h.HistoryFilter(DAY, DAY, reviews=("dismissed",))) == 1


def test_trend_hours_top_and_coverage_never_show_missing_days_as_compliant(exact):
    f = h.HistoryFilter(DAY, date(2026, 1, 7))
    days = h.trend(exact, f)
    assert [d.key[0] for d in days] == ["2026-01-05", "2026-01-06", "2026-01-07"]
    assert days[1].compliance is None and days[1].basis is None and days[1].minutes == 0
    weeks = h.trend(exact, f, "week")
    assert [w.key[0] for w in weeks] == ["2026-01-05"]
    hours = h.hour_profile(exact, f)
    assert len(hours) == 24 and hours[7].episodes == 1 and hours[23].episodes == 1
    assert [s.key[0] for s in h.top_stations(exact, f)] == ["A"]
    cells = h.coverage(exact, f)
    assert len(cells) == 2 * 3
    empty = [c for c in cells if c.day != "2026-01-05"]
    assert all(c.stats.minutes == 0 and c.stats.compliance is None for c in empty)
    with pytest.raises(ValueError):
        h.trend(exact, f, "month")
    with pytest.raises(ValueError, match="before it starts"):
        h.HistoryFilter(date(2026, 1, 7), DAY)


def test_detections_basis_without_coverage(store):
    sid = st.start_session(store, st.SessionInfo("batch", "x", "Bench", "m.pt", "abc", 0.25,
                                                 0.7, 640))
    for i, (g, b) in enumerate([(2, 0), (1, 1), (0, 1)]):
        st.add_result(store, sid, st.ResultRow(source=f"img{i}.jpg", protected=g, violation=b,
                                               ts="2026-01-05 10:00:00"))
    eid = _event(store, "Bench", "2026-01-05 10:00:00", session_id=sid, source="img2.jpg",
                 frame=0)
    f = h.HistoryFilter(DAY, DAY)
    k = h.kpis(store, f)
    assert k.total.basis == h.BASIS_DETECTIONS and "detections" in k.basis_note
    assert k.compliance == pytest.approx(3 / 5)
    store.execute("UPDATE events SET review='dismissed' WHERE id=?", (eid,))
    # the dismissed photo's detections leave the figures too
    assert h.kpis(store, f).compliance == pytest.approx(3 / 4)
    assert h.kpis(store, f).total.episodes == 0


def test_empty_store_and_range_without_data(store):
    span = h.data_span(store)
    assert span.empty
    f = h.default_filter(store)
    assert f.start == f.end
    k = h.kpis(store, f)
    assert k.compliance is None and "no compliance" in k.basis_note.lower()
    assert h.station_shift(store, f) == [] and h.coverage(store, f) == []
    assert h.episodes(store, f) == [] and h.stations(store) == []


def test_stations_flags_deleted_and_provenance(exact):
    exact.execute("INSERT INTO stations (name, created_at, deleted_at) VALUES ('A', ?, ?)",
                  ("2026-01-01 00:00:00", "2026-01-06 00:00:00"))
    assert [(s.name, s.deleted) for s in h.stations(exact)] == [("A", True), ("B", False)]
    _event(exact, "B", "2026-01-05 16:00:00", model_hash="f" * 64, rule_version=3)
    prov = h.provenance(exact, h.HistoryFilter(DAY, DAY))
    assert prov.models == ("model ffffffffffff",) and prov.rule_versions == ("B: v3",)


def test_rollup_fills_missing_hours_only(store):
    store.executemany("INSERT INTO coverage_seconds (station, ts, hands, gloved_s, bare_s)"
                      " VALUES (?,?,?,?,?)",
                      [("A", f"2026-01-05 08:00:{s:02d}", 1, 1.0, 0.0) for s in range(10)]
                      + [("A", f"2026-01-05 09:00:{s:02d}", 0, 0.0, 0.0) for s in range(5)])
    _hour(store, "A", "2026-01-05 09:00:00", watched=4.5)  # written by the recorder
    assert h.rollup_coverage(store, before="2026-01-06 00:00:00") == 1
    rows = dict(store.execute("SELECT hour, watched_s FROM coverage_hourly").fetchall())
    assert rows == {"2026-01-05 08:00:00": 10.0, "2026-01-05 09:00:00": 4.5}


def test_synth_is_deterministic_and_refuses_a_used_store(tmp_path):
    reps, figures = [], []
    for i in range(2):
        conn = st.connect(tmp_path / f"s{i}.sqlite")
        reps.append(synth.generate(conn, stations=4, days=10, seconds_rows=20_000, seed=7,
                                   end=date(2026, 3, 1)))
        f = h.HistoryFilter(date(2026, 2, 20), date(2026, 3, 1))
        figures.append((h.kpis(conn, f).total, h.station_shift(conn, f)))
        if i == 1:
            with pytest.raises(ValueError, match="empty store"):
                synth.generate(conn, stations=1, days=1)
        conn.close()
    a, b = reps
    assert (a.coverage_seconds, a.events, a.coverage_hourly) == (
        b.coverage_seconds, b.events, b.coverage_hourly)
    assert a.coverage_seconds >= 20_000 and a.events > 0
    assert figures[0] == figures[1]
    conn = st.connect(tmp_path / "s0.sqlite")
    # raw seconds and their hourly roll-ups agree
    raw = conn.execute("SELECT MIN(ts) FROM coverage_seconds").fetchone()[0][:13] + ":00:00"
    agg = conn.execute("SELECT COUNT(*), SUM(gloved_s) FROM coverage_seconds WHERE station ="
                       " 'Saw 01' AND substr(ts,1,13) = ?", (raw[:13],)).fetchone()
    hourly = conn.execute("SELECT watched_s, gloved_s FROM coverage_hourly WHERE station ="
                          " 'Saw 01' AND hour = ?", (raw,)).fetchone()
    if agg[0]:
        assert (float(agg[0]), agg[1]) == (hourly[0], hourly[1])
    assert any(s.deleted for s in h.stations(conn))


def test_migration_from_first_schema_keeps_rows(tmp_path, gw_home):
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript(st.MIGRATIONS[0] + "\nPRAGMA user_version = 1;")
    old.execute("INSERT INTO sessions (kind, source, station, model_path, model_hash, conf, iou,"
                " imgsz, started_at) VALUES ('batch','x','Old','m.pt','abc',0.25,0.7,640,"
                "'2025-06-01 10:00:00')")
    old.execute("INSERT INTO results (session_id, source, ts, protected, violation) VALUES"
                " (1, 'a.jpg', '2025-06-01 10:00:00', 1, 1)")
    old.execute("INSERT INTO events (session_id, station, source, frame, started_at, severity)"
                " VALUES (1, 'Old', 'a.jpg', 0, '2025-06-01 10:00:00', 'critical')")
    old.commit()
    old.close()
    conn = st.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == st.SCHEMA_VERSION
    assert conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 1
    ep = h.episodes(conn, h.HistoryFilter(date(2025, 6, 1), date(2025, 6, 1)))
    assert len(ep) == 1 and ep[0].review == "unreviewed" and ep[0].severity == "critical"
    k = h.kpis(conn, h.HistoryFilter(date(2025, 6, 1), date(2025, 6, 1)))
    assert k.total.basis == h.BASIS_DETECTIONS and k.compliance == 0.5


def test_bench_history_cli(capfd):
    from core.cli import main

    assert main(["bench-history", "--rows", "5000", "--stations", "3", "--days", "7",
                 "--json"]) == 0
    out = json.loads(capfd.readouterr().out.strip().splitlines()[-1])
    assert out["rows"]["coverage_seconds"] >= 5000 and out["ok"]
    assert {"kpis", "trend_day", "station_shift", "hour_profile", "top_stations",
            "coverage", "episodes_page"} <= set(out["queries_ms"])


def test_synth_cli(tmp_path, capfd):
    from core.cli import main

    db = tmp_path / "demo.sqlite"
    assert main(["synth", "--out", str(db), "--stations", "2", "--days", "3", "--rows", "3000",
                 "--json"]) == 0
    out = json.loads(capfd.readouterr().out.strip().splitlines()[-1])
    assert out["stations"] == 2 and out["coverage_seconds"] >= 3000
    assert main(["synth", "--out", str(db)]) == 2  # refuses to add to a used store
