"""Every repository writes and reads back typed rows (a real SQLite store per test)."""

from __future__ import annotations

import os
import socket
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from core.errors import TrainingError
from core.storage import now
from core.storage.coverage import CoverageRow
from core.storage.events import EventRow, OpenRefresh
from core.storage.filters import HistoryFilter
from core.storage.history import key_day, key_station
from core.storage.sessions import DetectionRow, ResultRow, SessionInfo

TODAY = date.today()


def _ts(seconds_ago: float = 0) -> str:
    return (datetime.now() - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%d %H:%M:%S")


def _session(store, station: str = "Saw 01", kind: str = "live") -> int:
    return store.sessions.start(
        SessionInfo(
            kind,
            "cam-1",
            station,
            "w.pt",
            "abc123",
            0.25,
            0.7,
            640,
            params={"tiles": None},
            started_by="ann",
        )
    )


def _today() -> HistoryFilter:
    return HistoryFilter(TODAY, TODAY)


# ---------------------------------------------------------------- sessions and results


def test_session_records_its_process_and_ends(store):
    sid = _session(store)
    rec = store.sessions.get(sid)
    assert (rec.kind, rec.source, rec.station, rec.model_path, rec.model_hash) == (
        "live",
        "cam-1",
        "Saw 01",
        "w.pt",
        "abc123",
    )
    assert rec.status == "running" and rec.ended_at is None
    assert rec.pid == os.getpid() and rec.host == socket.gethostname()
    assert rec.heartbeat_at == rec.started_at
    assert [r.id for r in store.sessions.running()] == [sid]
    store.sessions.heartbeat(sid)
    store.sessions.end(sid, "interrupted")
    rec = store.sessions.get(sid)
    assert rec.status == "interrupted" and rec.ended_at is not None
    assert store.sessions.running() == [] and store.sessions.get(sid + 100) is None


def test_results_with_detections_round_trip(store):
    sid = _session(store, kind="batch")
    rid = store.sessions.add_result(
        sid,
        ResultRow(
            source="a.jpg",
            verdict="violation",
            violation=1,
            protected=1,
            compliant=1,
            violating=1,
            detections=[
                DetectionRow(1, "hand", "violation", 0.9, (1, 2, 3, 4), status="violating"),
                DetectionRow(
                    0, "glove", "protected", 0.8, (10, 20, 30, 40), track_id=5, status="compliant"
                ),
            ],
        ),
    )
    store.sessions.add_result(sid, ResultRow(source="bad.jpg", error="bad.jpg: not an image."))
    store.sessions.set_annotated(rid, "/x/a.jpg")
    ep = store.events.get(
        store.events.insert(
            EventRow(
                station="Saw 01",
                started_at=now(),
                session_id=sid,
                source="a.jpg",
                frame=0,
                class_name="hand",
                peak_conf=0.9,
            )
        )
    )
    dets = sorted(store.events.frame_detections(ep), key=lambda d: d.box)
    assert [(d.role, d.status, d.box) for d in dets] == [
        ("violation", "violating", (1, 2, 3, 4)),
        ("protected", "compliant", (10, 20, 30, 40)),
    ]
    day = store.sessions.day_summary()
    # the unreadable file counts as neither a frame nor a hand
    assert (day.sessions, day.images, day.compliant, day.violating, day.events) == (1, 1, 1, 1, 1)
    assert day.compliance == 0.5
    assert store.sessions.day_summary("2000-01-01").compliance is None


# ------------------------------------------------------------------------- episodes


def test_episode_round_trip_refresh_close_and_review(store):
    sid = _session(store)
    eid = store.events.insert(
        EventRow(
            station="Saw 01",
            started_at=_ts(30),
            session_id=sid,
            source="cam-1",
            class_name="hand",
            peak_conf=0.6,
            state="open",
            model_name="w.pt",
            model_hash="abc123",
            rule_version=2,
            thresholds={"min_duration_s": 1.0},
            zone="blade",
            track_id=4,
        )
    )
    ep = store.events.get(eid)
    assert (ep.state, ep.review, ep.zone, ep.rule_version, ep.model_name) == (
        "open",
        "unreviewed",
        "blade",
        2,
        "w.pt",
    )
    store.events.refresh_open([OpenRefresh(eid, _ts(20), 10.0, 0.8, "critical", "blade")])
    ep = store.events.get(eid)
    assert (ep.duration_s, ep.peak_conf, ep.severity, ep.state) == (10.0, 0.8, "critical", "open")
    store.events.close(
        eid,
        EventRow(
            station="Saw 01",
            started_at=ep.started_at,
            ended_at=_ts(15),
            duration_s=15.0,
            class_name="hand",
            peak_conf=0.85,
            severity="critical",
            evidence_path="/e/1.jpg",
            crop_path="/e/1c.jpg",
            reason="bare hand in zone blade",
        ),
    )
    ep = store.events.get(eid)
    assert (ep.state, ep.duration_s, ep.evidence_path, ep.reason) == (
        "closed",
        15.0,
        "/e/1.jpg",
        "bare hand in zone blade",
    )
    entry = store.events.set_review(eid, "dismissed", "a glove, not a hand", "bob")
    assert entry is not None and entry.review == "dismissed"
    store.events.set_review(eid, "confirmed", None, "ann")
    assert [(r.review, r.reviewed_by) for r in store.events.review_history(eid)] == [
        ("dismissed", "bob"),
        ("confirmed", "ann"),
    ]
    ep = store.events.get(eid)
    assert (ep.review, ep.reviewed_by, ep.review_comment) == ("confirmed", "ann", None)
    assert store.events.set_review(eid + 1000, "confirmed", None, "ann") is None
    assert store.events.get(eid + 1000) is None


def test_episode_queries_filter_order_and_count(store):
    sid = _session(store)
    rows = [
        EventRow("Saw 01", _ts(300), duration_s=5, class_name="hand", session_id=sid),
        EventRow(
            "Saw 01",
            _ts(200),
            duration_s=50,
            class_name="hand",
            severity="critical",
            session_id=sid,
        ),
        EventRow("Press 2", _ts(100), duration_s=20, class_name="no_glove"),
    ]
    assert store.events.insert_many(rows) == 3
    assert store.events.count(_today()) == 3
    f = HistoryFilter(TODAY, TODAY, stations=("Saw 01",))
    assert store.events.count(f) == 2
    assert [e.duration_s for e in store.events.matching(_today(), order="newest")] == [20, 50, 5]
    assert [e.duration_s for e in store.events.matching(_today(), order="longest")] == [50, 20, 5]
    assert store.events.matching(_today(), order="critical first")[0].severity == "critical"
    assert store.events.count(HistoryFilter(TODAY, TODAY, severities=("critical",))) == 1
    assert store.events.count(HistoryFilter(TODAY, TODAY, classes=("no_glove",))) == 1
    assert len(store.events.matching(_today(), limit=2, offset=2)) == 1
    assert store.events.classes() == ["hand", "no_glove"]
    assert [e.duration_s for e in store.events.for_session(sid)] == [5, 50]
    yesterday = TODAY - timedelta(days=1)
    assert store.events.count(HistoryFilter(yesterday, yesterday)) == 0


def test_the_same_episode_key_is_written_once(store):
    row = EventRow("Saw 01", now(), class_name="hand", event_key="cam-1:42")
    first = store.events.upsert_by_key(row)
    again = store.events.upsert_by_key(
        EventRow("Saw 01", now(), class_name="glove", event_key="cam-1:42")
    )
    assert first == again == store.events.id_by_key("cam-1:42")
    assert store.events.get(first).class_name == "hand"
    assert store.events.count(_today()) == 1
    assert store.events.id_by_key("nope") is None


def test_close_orphans_closes_only_episodes_of_dead_sessions(store):
    live = _session(store)  # running, not declared dead
    dead = _session(store)  # running, but its process is gone
    done = _session(store)
    store.sessions.end(done)  # a finished session cannot own an open episode
    started = _ts(3 * 86400)  # days old: closed whatever its age
    last_seen = _ts(3 * 86400 - 42)
    ids = {}
    for name, sid in (("live", live), ("dead", dead), ("done", done), ("none", None)):
        ids[name] = store.events.insert(
            EventRow("Saw 01", started, session_id=sid, state="open", class_name="hand")
        )
        if name != "none":
            store.events.refresh_open(
                [OpenRefresh(ids[name], last_seen, 42.0, 0.7, "warning", None)]
            )
    closed_before = store.events.insert(
        EventRow("Saw 01", started, ended_at=started, session_id=dead, state="closed")
    )
    assert store.events.close_orphans([dead]) == 3
    for name in ("dead", "done"):
        ep = store.events.get(ids[name])
        assert (ep.state, ep.ended_at, ep.duration_s) == ("closed", last_seen, 42.0)
    never_refreshed = store.events.get(ids["none"])
    assert (never_refreshed.state, never_refreshed.ended_at, never_refreshed.duration_s) == (
        "closed",
        started,
        0.0,
    )
    assert store.events.get(ids["live"]).state == "open"
    assert store.events.get(closed_before).ended_at == started
    assert store.events.close_orphans([dead]) == 0  # nothing left to close


# ------------------------------------------------------------------------- coverage


def test_coverage_seconds_roll_up_by_hour(store):
    hour = now()[:13]
    rows = [
        CoverageRow(
            f"{hour}:00:0{i}",
            watched_s=1.0,
            hand_s=1.0 if i < 3 else 0.0,
            hands=1,
            compliant_s=1.0 if i < 2 else 0.0,
            violating_s=1.0 if i == 2 else 0.0,
        )
        for i in range(5)
    ]
    store.coverage.write("Saw 01", None, rows)
    store.coverage.write("Saw 01", None, rows[:1])  # a later write adds into the same hour
    figures = store.history.grouped(_today(), key_station)[("Saw 01",)]
    assert (figures.watched_s, figures.compliant_s, figures.violating_s) == (6.0, 3.0, 1.0)
    by_day = store.history.grouped(_today(), key_day)
    assert list(by_day) == [(TODAY.isoformat(),)]
    span = store.history.data_span()
    assert span.first == span.last == TODAY and not span.empty


def test_history_filter_refuses_a_backwards_range():
    with pytest.raises(ValueError, match="ends"):
        HistoryFilter(TODAY, TODAY - timedelta(days=1))
    f = HistoryFilter(
        date(2026, 1, 1), date(2026, 1, 31), stations=("Saw 01",), severities=("critical",)
    )
    assert f.days == 31 and f.hi == "2026-02-01 00:00:00"
    assert "stations: Saw 01" in f.describe() and "Saw 01" in f.slug()


# ------------------------------------------------------------------------- stations


def test_station_rule_versions(store):
    v1 = store.stations.save_rule("Saw 01", '{"polarity": "gloves_required"}', "ann")
    v2 = store.stations.save_rule("Saw 01", '{"polarity": "no_gloves"}', None)
    store.stations.save_rule("Lathe", "{}", "bob")
    assert (v1.version, v2.version) == (1, 2)
    assert store.stations.latest("Saw 01").rule_json == '{"polarity": "no_gloves"}'
    assert store.stations.version("Saw 01", 1).author == "ann"
    assert store.stations.version("Saw 01", 3) is None and store.stations.latest("x") is None
    assert [r.version for r in store.stations.history("Saw 01")] == [2, 1]
    assert store.stations.names() == ["Lathe", "Saw 01"]
    assert store.stations.hide("Lathe") and not store.stations.hide("Nowhere")
    assert store.stations.names() == ["Saw 01"]
    known = {s.name: s.deleted for s in store.stations.known()}
    assert known == {"Lathe": True, "Saw 01": False}
    assert store.stations.latest("Lathe").version == 1  # hidden, its rules kept
    store.stations.save_rule("Lathe", "{}", "bob")  # saving again brings it back
    assert store.stations.names() == ["Lathe", "Saw 01"]
    assert store.stations.latest("Lathe").version == 2


# ------------------------------------------------------------- data sets, runs, registry


def test_datasets_by_id_name_and_path(store):
    a = store.datasets.add("gloves", "/d/a/data.yaml", "detect", ("glove", "hand"), "{}")
    b = store.datasets.add("gloves", "/d/b/data.yaml", "segment", ("glove",), '{"x": 1}')
    assert a.names == ("glove", "hand") and b.task == "segment"
    assert store.datasets.get(a.id) == a
    assert store.datasets.get(str(a.id)) == a
    assert store.datasets.get("gloves") == b  # the newest with that name
    assert store.datasets.by_path("/d/a/data.yaml") == a
    assert store.datasets.get("other") is None
    assert [d.id for d in store.datasets.all()] == [b.id, a.id]


def _queue(store, name: str, device: str = "cpu") -> int:
    return store.runs.create(
        name,
        "gloves",
        "yolo11n.yaml",
        device,
        None,
        lambda rid: f"/runs/{rid:04d}-{name}",
        lambda folder: {"epochs": 3, "project": folder},
    )


def test_runs_queue_refuse_clashes_and_update(store):
    rid = _queue(store, "first")
    run = store.runs.get(rid)
    assert (run.status, str(run.run_dir), run.args) == (
        "queued",
        f"/runs/{rid:04d}-first",
        {"epochs": 3, "project": f"/runs/{rid:04d}-first"},
    )
    assert run.best == {} and run.pid is None
    with pytest.raises(TrainingError, match="already queued"):
        _queue(store, "first")
    assert store.runs.get("first").id == rid
    assert not store.runs.set(rid, only_if=("running",), status="stopped")
    assert store.runs.set(
        rid, only_if=("queued",), status="stopped", best={"mAP50": 0.5}, args={"epochs": 4}
    )
    run = store.runs.get(rid)
    assert (run.status, run.best, run.args) == ("stopped", {"mAP50": 0.5}, {"epochs": 4})
    again = _queue(store, "first")  # the name is free once the run is not active
    assert store.runs.rename_clash(rid, "first") == again
    assert [r.id for r in store.runs.all()] == [again, rid]
    assert [r.id for r in store.runs.with_status("stopped")] == [rid]


def test_start_queued_starts_one_run_per_device(store):
    a = _queue(store, "a")
    b = _queue(store, "b")
    g = _queue(store, "g", device="0")
    bad = _queue(store, "bad", device="1")
    spawned = []

    def spawn(run):
        if run.name == "bad":
            raise TrainingError("no such GPU")
        spawned.append(run.name)
        return 4242

    assert store.runs.start_queued(spawn) == [a, g]
    assert spawned == ["a", "g"]
    assert (store.runs.get(a).status, store.runs.get(a).pid) == ("running", 4242)
    assert store.runs.get(b).status == "queued"  # the CPU is busy with 'a'
    failed = store.runs.get(bad)
    assert (failed.status, failed.message) == ("failed", "no such GPU")
    assert store.runs.start_queued(spawn) == []  # nothing free
    store.runs.set(a, status="finished")
    assert store.runs.start_queued(spawn) == [b]


def test_registry_promote_and_activate(store):
    assert store.registry.active() is None
    first = store.registry.promote(
        "/m/1.pt", "aa", None, "gloves", {"glove": "protected"}, {"mAP50": 0.8}, "ann"
    )
    second = store.registry.promote("/m/2.pt", "bb", None, "gloves", {}, {}, "bob")
    assert first.active and first.roles == {"glove": "protected"} and first.scores["mAP50"] == 0.8
    assert store.registry.active().id == second.id
    assert [e.active for e in store.registry.all()] == [True, False]  # newest first, one active
    store.registry.activate(first.id)
    assert store.registry.active().id == first.id
    assert not store.registry.get(second.id).active
    store.registry.activate(None)  # back to the shipped default
    assert store.registry.active() is None
    assert store.registry.get(999) is None


def test_station_models_do_not_touch_the_plant_model(store):
    plant = store.registry.promote("/m/plant.pt", "aa", None, None, {}, {}, "ann")
    saw = store.registry.promote("/m/saw.pt", "bb", None, None, {}, {}, "ann", station="Saw 01")
    assert store.registry.active().id == plant.id
    assert store.registry.active("Saw 01").id == saw.id
    store.registry.activate(None, station="Saw 01")
    assert store.registry.active("Saw 01") is None and store.registry.active().id == plant.id


# ------------------------------------------------------------------- users and audit


def test_users_round_trip(store):
    ann = store.users.add("ann", "hash-a", "admin")
    store.users.add("bob", None, "viewer")
    assert (ann.name, ann.role, ann.disabled, ann.failed_logins) == ("ann", "admin", False, 0)
    assert ann.created_at and ann.last_login_at is None
    assert [u.name for u in store.users.all()] == ["ann", "bob"]
    assert store.users.get("bob").password_hash is None
    with pytest.raises(IntegrityError):
        store.users.add("ann", None, "viewer")
    assert store.users.update("bob", disabled=1, failed_logins=3)
    assert not store.users.update("carol", disabled=1)
    bob = store.users.get("bob")
    assert bob.disabled is True and bob.failed_logins == 3
    assert store.users.count_active() == 1 and store.users.count_active("admin") == 1
    assert store.users.count_active("viewer") == 0 and store.users.get("carol") is None


def test_audit_log_newest_first(store):
    store.audit.add("ann", "user.add", "bob", {"role": "viewer"})
    store.audit.add("bob", "model.promote", "run0001.pt")
    store.audit.add("ann", "user.disable", "bob")
    recent = store.audit.recent()
    assert [r.action for r in recent] == ["user.disable", "model.promote", "user.add"]
    assert recent[2].details == {"role": "viewer"} and recent[1].details == {}
    assert [r.target for r in store.audit.recent(action="model.promote")] == ["run0001.pt"]
    assert len(store.audit.recent(limit=1)) == 1
