"""Retention deletes old evidence and raw rows while the History figures stay the same; it
only deletes inside the data folder and every run is audited."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from core.analytics import history as h
from core.analytics.retention import last_runs, run_retention
from core.analytics.review import load_evidence
from core.storage.coverage import CoverageRow, HourRow
from core.storage.events import EventRow
from core.storage.sessions import DetectionRow, ResultRow, SessionInfo
from tests.analytics.conftest import record_saw

OLD_DAY = datetime.now().date() - timedelta(days=100)
RECENT_DAY = datetime.now().date() - timedelta(days=2)
OLD = OLD_DAY.isoformat()
RECENT = RECENT_DAY.isoformat()
ALL = h.HistoryFilter(OLD_DAY, datetime.now().date())


def _seconds(day: str, n: int = 40) -> list[tuple[str, CoverageRow]]:
    """Raw per-second rows without their hourly roll-up (as after a crash): 3 of 4 seconds
    with a compliant hand, every 4th with a violating one."""
    return [
        (
            "Saw 02",
            CoverageRow(
                f"{day} 10:00:{s:02d}",
                hands=1,
                compliant_s=1.0 if s % 4 else 0.0,
                violating_s=0.0 if s % 4 else 1.0,
            ),
        )
        for s in range(n)
    ]


def _all_files(home: Path) -> set[Path]:
    return {p for p in home.rglob("*") if p.is_file()}


@pytest.fixture
def aged(store, gw_home, bare_images, gloved_images):
    """100 days ago: a recorded saw shift with evidence, a batch session's photo results
    with an annotated image, and raw coverage seconds without a roll-up; 2 days ago: another
    recorded shift and raw seconds with their roll-up."""
    record_saw(
        store,
        bare_images[0],
        started=datetime.combine(OLD_DAY, datetime.min.time()) + timedelta(hours=9),
    )
    record_saw(
        store,
        bare_images[1],
        station="Saw 03",
        started=datetime.combine(RECENT_DAY, datetime.min.time()) + timedelta(hours=9),
    )
    sid = store.sessions.start(
        SessionInfo("batch", "photos", "Bench", "m.pt", "ab" * 32, 0.25, 0.7, 640)
    )
    annotated = gw_home / "batch" / f"session-{sid:06d}" / "a.jpg"
    annotated.parent.mkdir(parents=True)
    annotated.write_bytes(gloved_images[0].read_bytes())
    for i, (ok, bad) in enumerate([(2, 0), (1, 1), (0, 1)]):
        dets = [
            DetectionRow(0, "glove", "protected", 0.9, (1, 2, 3, 4), None, "compliant")
        ] * ok + [DetectionRow(1, "hand", "violation", 0.8, (5, 6, 7, 8), None, "violating")] * bad
        store.sessions.add_result(
            sid,
            ResultRow(
                source=f"img{i}.jpg",
                compliant=ok,
                violating=bad,
                ts=f"{OLD} 11:00:00",
                annotated_path=str(annotated) if i == 0 else None,
                detections=dets,
            ),
        )
    store.coverage.insert_seconds(_seconds(OLD) + _seconds(RECENT))
    store.coverage.insert_hours([HourRow("Saw 02", f"{RECENT} 10:00:00", 40, 40, 30, 10)])
    return store


def _figures(store, f=ALL):
    return (
        h.kpis(store, f).total,
        h.station_shift(store, f),
        h.trend(store, f),
        h.coverage(store, f),
        h.per_station(store, f),
        h.hour_profile(store, f),
    )


def test_retention_removes_old_raw_data_and_keeps_figures(aged, gw_home):
    store = aged
    # the old seconds' roll-up, as the recorder would have written it
    store.coverage.insert_hours([HourRow("Saw 02", f"{OLD} 10:00:00", 40, 40, 30, 10)])
    old_eps = h.episodes(store, h.HistoryFilter(OLD_DAY, OLD_DAY))
    recent_eps = h.episodes(store, h.HistoryFilter(RECENT_DAY, RECENT_DAY))
    assert len(old_eps) == 2 and len(recent_eps) == 2
    old_files = [Path(p) for e in old_eps for p in (e.evidence_path, e.crop_path)]
    annotated = gw_home / "batch"
    annotated_files = [p for p in annotated.rglob("*.jpg")]
    recent_files = [Path(p) for e in recent_eps for p in (e.evidence_path, e.crop_path)]
    assert all(p.exists() for p in old_files + annotated_files + recent_files)
    before = _figures(store)
    counts = store.history.table_counts(("coverage_seconds", "results", "detections"))

    rep = run_retention(store, days=90, by="Ana")

    assert rep.results_deleted == 3 and rep.detections_deleted == 5
    # 40 raw seconds plus the 13 seconds (0..12 s) of the old recorded shift
    assert rep.coverage_seconds_deleted == 40 + 13 and rep.hours_rolled_up == 0
    assert rep.episodes_cleared == 2
    assert rep.files_removed >= len(old_files) + len(annotated_files)
    assert rep.bytes_freed > 0 and "evidence files" in rep.summary()
    assert not any(p.exists() for p in old_files + annotated_files)
    assert all(p.exists() for p in recent_files)  # recent evidence stays
    after = store.history.table_counts(("coverage_seconds", "results", "detections"))
    assert after == {
        "coverage_seconds": counts["coverage_seconds"] - rep.coverage_seconds_deleted,
        "results": 0,
        "detections": 0,
    }
    assert _figures(store) == before  # hand-time and detection figures are unchanged
    ep = h.get_episode(store, old_eps[0].id)
    assert ep.evidence_path is None and ep.crop_path is None and ep.evidence_removed_at
    assert "removed by retention" in load_evidence(ep).message
    assert h.count_episodes(store, ALL) == 4  # the record of violations stays
    runs = last_runs(store)
    assert runs[0].days == 90 and runs[0].report["files_removed"] == rep.files_removed
    audit = store.audit.recent(action="retention.run")
    assert audit[0].actor == "Ana" and audit[0].target == "90 days"
    assert audit[0].details["files"] == rep.files_removed
    again = run_retention(store, days=90)  # nothing left to remove
    assert again.files_removed == 0 and again.results_deleted == 0
    assert again.episodes_cleared == 0 and _figures(store) == before
    assert len(last_runs(store)) == 2 and len(store.audit.recent(action="retention.run")) == 2


def test_retention_leaves_no_orphaned_evidence_files(aged):
    """The evidence folder of an old day is emptied: frame, hand crop and detections file."""
    old_eps = h.episodes(aged, h.HistoryFilter(OLD_DAY, OLD_DAY))
    folder = Path(old_eps[0].evidence_path).parent
    assert {p.suffix for p in folder.iterdir()} == {".jpg", ".json"}
    run_retention(aged, days=90)
    assert list(folder.iterdir()) == []


def test_retention_rolls_up_seconds_without_hourly_rows(aged):
    recent_hour = h.trend(aged, h.HistoryFilter(RECENT_DAY, RECENT_DAY), "hour")[10]
    rep = run_retention(aged, days=90)
    assert rep.hours_rolled_up == 1
    hour = h.trend(aged, h.HistoryFilter(OLD_DAY, OLD_DAY), "hour")[10]
    assert (hour.watched_s, hour.compliant_s, hour.violating_s) == (40.0, 30.0, 10.0)
    # an hour that already had its roll-up is left as it was
    assert h.trend(aged, h.HistoryFilter(RECENT_DAY, RECENT_DAY), "hour")[10] == recent_hour


def test_retention_leaves_files_outside_the_data_folder(aged, gw_home, tmp_path):
    outside = tmp_path / "elsewhere.jpg"
    outside.write_bytes(b"x")
    aged.events.insert(EventRow("Saw 01", f"{OLD} 12:00:00", evidence_path=str(outside)))
    everything = _all_files(tmp_path)
    rep = run_retention(aged, days=90)
    assert outside.exists() and rep.files_outside_home == 1
    assert "outside the evidence store" in rep.summary()
    gone = everything - _all_files(tmp_path)
    assert gone and all(p.resolve().is_relative_to(gw_home.resolve()) for p in gone)


def test_retention_counts_files_already_gone(aged):
    old = h.episodes(aged, h.HistoryFilter(OLD_DAY, OLD_DAY))
    Path(old[0].evidence_path).unlink()
    rep = run_retention(aged, days=90)
    assert rep.files_missing == 1 and "already gone" in rep.summary()


def test_retention_days_default_and_minimum(store, monkeypatch):
    with pytest.raises(ValueError, match="at least 1 day"):
        run_retention(store, days=0)
    monkeypatch.setenv("GLOVEWATCH_RETENTION_DAYS", "30")
    rep = run_retention(store)
    assert rep.days == 30
    assert rep.cutoff == f"{(date.today() - timedelta(days=30)).isoformat()} 00:00:00"


@pytest.mark.slow
def test_retention_on_synthetic_history_keeps_every_figure(history_home, store):
    f = h.HistoryFilter(date.today() - timedelta(days=9), date.today())
    before = _figures(store, f) + (h.top_stations(store, f), h.provenance(store, f))
    rep = run_retention(store, days=1, by="admin")
    assert rep.results_deleted > 0 and rep.episodes_cleared == 0
    assert _figures(store, f) + (h.top_stations(store, f), h.provenance(store, f)) == before
    assert store.audit.recent(action="retention.run")[0].actor == "admin"
