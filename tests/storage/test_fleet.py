"""The fleet's tables: dead letters stay bounded, a worker keeps its own cameras and
sessions, coverage seconds are credited once per session."""

from __future__ import annotations

from core.storage.coverage import CoverageRow
from core.storage.fleet import CameraRow, DeadLetter, WorkerRow
from core.storage.sessions import SessionInfo
from tests.pipeline.support import coverage_totals

INFO = SessionInfo("stream", "cam-1", "Saw 01", "m.pt", "ab", 0.25, 0.7, 320)


def test_dead_letters_keep_only_the_newest(store):
    for i in range(8):
        store.fleet.dead_letter(
            DeadLetter("glovewatch/x/episodes", f"r{i}", at=f"2026-01-01 00:00:0{i}"), keep=5
        )
    assert [d.reason for d in store.fleet.dead_letters()] == ["r7", "r6", "r5", "r4", "r3"]


def test_dead_letters_of_one_second_keep_the_order_they_came_in(store):
    for i in range(10):
        store.fleet.dead_letter(
            DeadLetter("glovewatch/x/episodes", f"r{i}", at="2026-01-01 00:00:00"), keep=5
        )
    assert [d.reason for d in store.fleet.dead_letters()] == ["r9", "r8", "r7", "r6", "r5"]


def test_a_worker_cannot_take_over_another_workers_camera(store):
    store.fleet.report(WorkerRow("w1", "online"), [CameraRow("cam-1", "Saw 01", "live", "w1")])
    store.fleet.report(WorkerRow("w2", "online"), [CameraRow("cam-1", "Press", "stopped", "w2")])
    assert [(c.worker, c.station, c.status) for c in store.fleet.cameras()] == [
        ("w1", "Saw 01", "live")
    ]


def test_sessions_belong_to_their_worker(store):
    mine = store.fleet.run_session("r1", INFO, "h", 7, worker="w1")
    assert store.fleet.run_session("r1", INFO, "h", 7, worker="w1") == mine
    theirs = store.fleet.run_session("r1", INFO, "h", 7, worker="w2")  # same run, host, pid
    assert theirs != mine
    assert store.fleet.end_sessions("h", 7, "interrupted", "w2") == [theirs]
    mine_row, theirs_row = store.sessions.get(mine), store.sessions.get(theirs)
    assert mine_row is not None and theirs_row is not None
    assert (mine_row.status, theirs_row.status) == ("running", "interrupted")


def test_coverage_seconds_are_credited_once_per_session(store):
    sid = store.fleet.run_session("r1", INFO, "h", 7, worker="w1")
    rows = [CoverageRow("2026-01-01 10:00:00", 1.0), CoverageRow("2026-01-01 10:00:01", 1.0)]
    assert store.fleet.coverage_once("m1", "Saw 01", sid, rows)
    assert store.fleet.coverage_once("m2", "Saw 01", sid, rows)  # a new id, the same seconds
    other = store.fleet.run_session("r2", INFO, "h", 7, worker="w1")
    assert store.fleet.coverage_once("m3", "Saw 01", other, rows[:1])
    assert coverage_totals(store, "Saw 01")[0] == 3.0
    assert store.fleet.prune_ingested("2100-01-01 00:00:00") == 3
