"""Episode logic on scripted detection sequences, and recording to the real store."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from core.compliance import Role
from core.detector import Detection, FrameDetections
from core.episodes import (CoverageAccumulator, EpisodeConfig, EpisodeRecorder, EpisodeTracker,
                           RecordingContext, close_stale_open_events)
from core.evidence import EvidenceWriter
from core.stations import Polarity, StationRule, Zone

SHAPE = (100, 100)
BLADE = Zone("blade", ((0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)))


def bare(track=1, box=(10, 10, 30, 30), conf=0.8) -> Detection:
    return Detection(1, "hand", Role.VIOLATION, conf, box, None, track)


def glove(track=2, box=(60, 60, 80, 80), conf=0.8) -> Detection:
    return Detection(0, "glove", Role.PROTECTED, conf, box, None, track)


def frame(*dets: Detection) -> FrameDetections:
    return FrameDetections(tuple(dets), SHAPE, 1.0)


def run(tracker: EpisodeTracker, script: list[tuple[float, FrameDetections]]):
    opened, closed = [], []
    for t, fd in script:
        u = tracker.update(t, fd)
        opened += u.opened
        closed += u.closed
    closed += tracker.finish().closed
    return opened, closed


def every(step: float, start: float, stop: float, fd: FrameDetections):
    n = int(round((stop - start) / step))
    return [(start + i * step, fd) for i in range(n + 1)]


def test_short_blip_is_not_an_episode():
    opened, closed = run(EpisodeTracker(StationRule("S")), every(0.1, 0, 0.5, frame(bare())))
    assert opened == [] and closed == []


def test_long_bare_hand_is_one_episode_not_hundreds():
    tr = EpisodeTracker(StationRule("S"))
    opened, closed = run(tr, every(0.1, 0, 10, frame(bare())) + every(0.1, 10.1, 14, frame()))
    assert len(opened) == 1 and len(closed) == 1
    ep = closed[0]
    assert ep.started_t == 0 and abs(ep.last_t - 10) < 1e-9 and ep.severity == "warning"


def test_gap_shorter_than_grace_merges_longer_splits():
    cfg = EpisodeConfig(min_duration_s=1.0, grace_s=2.0)
    merged = every(0.5, 0, 3, frame(bare())) + every(0.5, 3.5, 4.5, frame()) \
        + every(0.5, 5, 8, frame(bare()))
    _, closed = run(EpisodeTracker(StationRule("S"), cfg), merged)
    assert len(closed) == 1 and closed[0].duration_s == 8
    split = every(0.5, 0, 3, frame(bare())) + every(0.5, 3.5, 6, frame()) \
        + every(0.5, 6.5, 9, frame(bare()))
    _, closed = run(EpisodeTracker(StationRule("S"), cfg), split)
    assert [c.duration_s for c in closed] == [3.0, 2.5]


def test_new_track_id_overlapping_a_lost_hand_continues_the_episode():
    script = every(0.1, 0, 2, frame(bare(track=1))) + every(0.1, 2.5, 4, frame(bare(track=7)))
    _, closed = run(EpisodeTracker(StationRule("S")), script)
    assert len(closed) == 1 and closed[0].track_id == 7


def test_two_hands_are_two_episodes_and_gloves_none():
    two = frame(bare(track=1), bare(track=3, box=(60, 10, 80, 30)), glove())
    _, closed = run(EpisodeTracker(StationRule("S")), every(0.2, 0, 3, two))
    assert sorted(c.track_id for c in closed) == [1, 3]


def test_zone_makes_critical_and_escalates():
    rule = StationRule("Saw", zones=(BLADE,))
    script = every(0.2, 0, 2, frame(bare())) + every(0.2, 2.2, 3, frame(bare(box=(55, 10, 75, 30))))
    _, closed = run(EpisodeTracker(rule), script)
    assert len(closed) == 1 and closed[0].severity == "critical" and closed[0].zone == "blade"


def test_no_gloves_polarity_flags_gloves_not_bare_hands():
    rule = StationRule("Lathe", polarity=Polarity.NO_GLOVES)
    _, closed = run(EpisodeTracker(rule), every(0.2, 0, 3, frame(bare(), glove())))
    assert len(closed) == 1 and closed[0].class_name == "glove"


def test_peak_confidence_kept():
    script = [(t, frame(bare(conf=c))) for t, c in [(0, .5), (0.5, .9), (1.0, .6), (1.5, .7)]]
    _, closed = run(EpisodeTracker(StationRule("S")), script)
    assert closed[0].peak_conf == 0.9 and closed[0].peak_t == 0.5


def test_coverage_counts_time_not_frames():
    cov = CoverageAccumulator(datetime(2026, 1, 1, 8, 0, 0))
    for t, fd in every(0.5, 0, 4, frame(bare(), glove())) + every(0.5, 4.5, 6, frame()):
        cov.add(t, fd)
    tot = cov.totals
    assert tot.watched_s == 6 and tot.hand_s == 4 and tot.gloved_s == 4 and tot.bare_s == 4
    assert tot.compliance == 0.5
    secs = cov.drain(final=True)
    assert secs[0].ts == "2026-01-01 08:00:00" and secs[-1].ts == "2026-01-01 08:00:06"
    assert max(s.hands for s in secs) == 2


def test_recorder_stores_one_episode_with_evidence_and_coverage(store, gw_home):
    from core.config import settings

    image = np.full((100, 100, 3), 128, np.uint8)
    opened = []
    ctx = RecordingContext("Saw", source="cam", model_hash="abc", thresholds={"conf": 0.25},
                           started=datetime.now())
    rec = EpisodeRecorder(store, ctx, StationRule("Saw", zones=(BLADE,), version=3),
                          evidence=EvidenceWriter(settings().evidence_dir, {0: "glove", 1: "hand"}),
                          on_open=opened.append)
    for i, (t, fd) in enumerate(every(0.1, 0, 3, frame(bare(box=(60, 10, 80, 30)), glove()))):
        rec.process(t, fd, image, i)
    row = store.execute("SELECT * FROM events").fetchone()
    assert len(opened) == 1 and row["state"] == "open" and row["id"] == opened[0].event_id
    rec.finish()
    rows = store.execute("SELECT * FROM events").fetchall()
    assert len(rows) == 1
    row = rows[0]
    assert row["state"] == "closed" and row["severity"] == "critical" and row["zone"] == "blade"
    assert abs(row["duration_s"] - 3.0) < 1e-6 and row["rule_version"] == 3
    assert row["model_hash"] == "abc" and row["thresholds_json"] == '{"conf": 0.25}'
    from pathlib import Path
    assert Path(row["evidence_path"]).is_file() and Path(row["crop_path"]).is_file()
    hourly = store.execute("SELECT SUM(watched_s), SUM(bare_s), SUM(gloved_s) FROM"
                           " coverage_hourly").fetchone()
    assert abs(hourly[0] - 3.0) < 1e-6 and abs(hourly[1] - 3.0) < 1e-6
    n_sec = store.execute("SELECT COUNT(*) FROM coverage_seconds").fetchone()[0]
    assert 3 <= n_sec <= 5


def test_open_episode_left_by_a_crash_is_closed_at_last_seen(store):
    from core import store as st

    st.add_event(store, st.EventRow("Saw", "2026-01-01 08:00:00", "2026-01-01 08:00:07",
                                    state="open"))
    st.add_event(store, st.EventRow("Saw", st.now(), st.now(), state="open"))  # still live
    assert close_stale_open_events(store) == 1
    rows = store.execute("SELECT state, ended_at, duration_s FROM events ORDER BY id").fetchall()
    assert tuple(rows[0]) == ("closed", "2026-01-01 08:00:07", 7.0)
    assert rows[1]["state"] == "open"


def test_same_track_id_after_a_gap_longer_than_grace_is_a_new_episode():
    # ByteTrack keeps lost tracks for a while and may give a returning hand its old id
    script = every(0.1, 0, 1.9, frame(bare(track=1))) + every(0.1, 2.0, 3.9, frame()) \
        + every(0.1, 4.0, 6, frame(bare(track=1)))
    _, closed = run(EpisodeTracker(StationRule("S")), script)
    assert [(round(c.started_t, 3), round(c.last_t, 3)) for c in closed] == [(0, 1.9), (4, 6)]
