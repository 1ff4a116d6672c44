"""Episodes from scripted detection sequences, coverage, and recording to the real store."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from core.analytics import history as h
from core.config import settings
from core.events.coverage import CoverageAccumulator
from core.events.episodes import EpisodeConfig, EpisodeTracker
from core.events.evidence import EvidenceWriter
from core.events.recorder import EpisodeRecorder, RecordingContext
from core.events.rules import Polarity, StationRule, Zone
from core.events.sinks import StoreSink
from core.vision.detections import FrameDetections
from tests.events.scenes import dets, every, hand

SHAPE = (100, 100)
BLADE = Zone("blade", ((0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)))
LEFT = (10, 10, 30, 30)
RIGHT = (60, 10, 80, 30)  # inside BLADE


def bare(track=1, box=LEFT, conf=0.8):
    return hand("hand", box, conf, track)


def glove(track=2, box=(60, 60, 80, 80), conf=0.8):
    return hand("glove", box, conf, track)


def run(rule: StationRule, script, config: EpisodeConfig | None = None):
    tracker = EpisodeTracker(config)
    opened, closed = [], []
    for t, d in script:
        fd = FrameDetections(d, SHAPE)
        u = tracker.update(t, fd, rule.judge_frame(fd))
        opened += u.opened
        closed += u.closed
    closed += tracker.finish().closed
    return opened, closed


S = StationRule("S")


def test_short_blip_is_not_an_episode():
    opened, closed = run(S, every(0.1, 0, 0.5, dets(bare())))
    assert opened == [] and closed == []


def test_long_bare_hand_is_one_episode_not_hundreds():
    opened, closed = run(S, every(0.1, 0, 10, dets(bare())) + every(0.1, 10.1, 14, dets()))
    assert len(opened) == 1 and len(closed) == 1
    ep = closed[0]
    assert ep.started_t == 0 and ep.last_t == pytest.approx(10) and ep.severity == "warning"
    assert ep.reason == "bare hand (hand)"


def test_gap_shorter_than_grace_merges_longer_splits():
    cfg = EpisodeConfig(min_duration_s=1.0, grace_s=2.0)
    merged = (
        every(0.5, 0, 3, dets(bare()))
        + every(0.5, 3.5, 4.5, dets())
        + every(0.5, 5, 8, dets(bare()))
    )
    _, closed = run(S, merged, cfg)
    assert len(closed) == 1 and closed[0].duration_s == 8
    split = (
        every(0.5, 0, 3, dets(bare()))
        + every(0.5, 3.5, 6, dets())
        + every(0.5, 6.5, 9, dets(bare()))
    )
    _, closed = run(S, split, cfg)
    assert [c.duration_s for c in closed] == [3.0, 2.5]


def test_new_track_id_overlapping_a_lost_hand_continues_the_episode():
    script = every(0.1, 0, 2, dets(bare(track=1))) + every(0.1, 2.5, 4, dets(bare(track=7)))
    _, closed = run(S, script)
    assert len(closed) == 1 and closed[0].track_id == 7


def test_untracked_boxes_follow_by_overlap():
    script = every(0.2, 0, 3, dets(bare(), tracked=False))
    _, closed = run(S, script)
    assert len(closed) == 1 and closed[0].track_id is None and closed[0].duration_s == 3


def test_two_hands_are_two_episodes_and_gloves_none():
    two = dets(bare(track=1), bare(track=3, box=RIGHT), glove())
    _, closed = run(S, every(0.2, 0, 3, two))
    assert sorted(c.track_id for c in closed) == [1, 3]


def test_zone_makes_critical_and_escalates():
    rule = StationRule("Saw", zones=(BLADE,))
    script = every(0.2, 0, 2, dets(bare())) + every(0.2, 2.2, 3, dets(bare(box=(55, 10, 75, 30))))
    _, closed = run(rule, script)
    assert len(closed) == 1 and closed[0].severity == "critical" and closed[0].zone == "blade"


def test_no_gloves_polarity_flags_gloves_not_bare_hands():
    rule = StationRule("Lathe", polarity=Polarity.NO_GLOVES)
    _, closed = run(rule, every(0.2, 0, 3, dets(bare(), glove())))
    assert len(closed) == 1 and closed[0].class_name == "glove"
    assert "no-gloves" in closed[0].reason


def test_peak_confidence_kept():
    script = [(t, dets(bare(conf=c))) for t, c in [(0, 0.5), (0.5, 0.9), (1.0, 0.6), (1.5, 0.7)]]
    _, closed = run(S, script)
    assert closed[0].peak_conf == pytest.approx(0.9) and closed[0].peak_t == 0.5


def test_same_track_id_after_a_gap_longer_than_grace_is_a_new_episode():
    # ByteTrack keeps lost tracks for a while and may give a returning hand its old id
    script = (
        every(0.1, 0, 1.9, dets(bare(track=1)))
        + every(0.1, 2.0, 3.9, dets())
        + every(0.1, 4.0, 6, dets(bare(track=1)))
    )
    _, closed = run(S, script)
    assert [(round(c.started_t, 3), round(c.last_t, 3)) for c in closed] == [(0, 1.9), (4, 6)]


def test_bad_episode_config_is_refused():
    with pytest.raises(ValueError, match=">= 0"):
        EpisodeConfig(min_duration_s=-1)


def test_coverage_counts_time_not_frames():
    cov = CoverageAccumulator(datetime(2026, 1, 1, 8, 0, 0))
    rule = StationRule("S")
    for t, d in every(0.5, 0, 4, dets(bare(), glove())) + every(0.5, 4.5, 6, dets()):
        cov.add(t, rule.judge(d, SHAPE))
    tot = cov.totals
    assert tot.watched_s == 6 and tot.hand_s == 4
    assert tot.compliant_s == 4 and tot.violating_s == 4 and tot.compliance == 0.5
    secs = cov.drain(final=True)
    assert secs[0].ts == "2026-01-01 08:00:00" and secs[-1].ts == "2026-01-01 08:00:06"
    assert max(s.hands for s in secs) == 2
    assert sum(s.watched_s for s in secs) == 6


def test_coverage_caps_a_stalled_stream():
    cov = CoverageAccumulator(datetime(2026, 1, 1, 8, 0, 0), max_gap_s=1.0)
    rule = StationRule("S")
    for t in (0.0, 0.5, 30.0):  # 29.5 s without a frame is not watched time
        cov.add(t, rule.judge(dets(glove()), SHAPE))
    assert cov.totals.watched_s == 1.5 and cov.totals.compliance == 1.0


def test_recorder_stores_one_episode_with_evidence_and_coverage(store, gw_home, gloved_images):
    from core.media import read_image

    image = read_image(gloved_images[0])
    shape = image.shape[:2]
    started = datetime(2026, 1, 5, 8, 0, 0)
    ctx = RecordingContext(
        "Saw",
        source="cam",
        model_hash="ab" * 32,
        model_name="m.pt",
        thresholds={"conf": 0.25},
        started=started,
    )
    sink = StoreSink(store)
    rec = EpisodeRecorder(
        ctx,
        StationRule("Saw", zones=(BLADE,), version=3),
        sink,
        evidence=EvidenceWriter(settings().evidence_dir),
    )
    # a bare hand in the blade zone (right half) beside a compliant glove
    frame = dets(bare(box=(400, 100, 480, 180)), glove(box=(50, 400, 130, 480)))
    for i, (t, d) in enumerate(every(0.1, 0, 3, frame)):
        rec.process(t, FrameDetections(d, shape), image, i)
    f = h.HistoryFilter(date(2026, 1, 5), date(2026, 1, 5))
    live = h.episodes(store, f)
    assert len(live) == 1 and live[0].state == "open"  # stored while it lasts
    assert live[0].ended_at == "2026-01-05 08:00:03"  # refreshed about once a second
    rec.finish()
    eps = h.episodes(store, f)
    assert len(eps) == 1 and rec.open_episodes == 0
    ep = eps[0]
    assert ep.id == live[0].id and ep.state == "closed"
    assert ep.severity == "critical" and ep.zone == "blade" and ep.rule_version == 3
    assert ep.duration_s == pytest.approx(3.0) and ep.model_hash == "ab" * 32
    assert ep.started_at == "2026-01-05 08:00:00"
    assert Path(ep.evidence_path).is_file() and Path(ep.crop_path).is_file()
    assert Path(ep.evidence_path).is_relative_to(gw_home / "evidence" / "2026-01-05")
    k = h.kpis(store, f).total
    assert k.watched_s == pytest.approx(3.0) and k.violating_s == pytest.approx(3.0)
    assert k.compliant_s == pytest.approx(3.0) and k.compliance == pytest.approx(0.5)
    assert 3 <= store.history.table_counts(("coverage_seconds",))["coverage_seconds"] <= 5


class _BrokenSink:
    """A sink whose store is gone (disk full, broker down)."""

    def __init__(self):
        self.calls = 0

    def episode(self, event):
        self.calls += 1
        raise OSError("disk full")

    def coverage(self, station, session_id, rows):
        self.calls += 1
        raise OSError("disk full")


def test_a_failing_sink_does_not_stop_watching(caplog):
    sink = _BrokenSink()
    rec = EpisodeRecorder(RecordingContext("Saw"), StationRule("Saw"), sink)
    image = np.zeros((100, 100, 3), np.uint8)
    for t, d in every(0.2, 0, 4, dets(bare())):
        out = rec.process(t, FrameDetections(d, SHAPE), image)
    rec.finish()
    assert out.judgement.violating == 1 and sink.calls > 2
    assert "could not be recorded" in caplog.text


def test_photo_episode_is_stored_when_it_ends(store):
    """A photo (minimum duration 0, no coverage) still becomes one stored episode."""
    rec = EpisodeRecorder(
        RecordingContext("Bench", source="a.jpg", started=datetime(2026, 1, 5, 10)),
        StationRule("Bench"),
        StoreSink(store),
        EpisodeConfig(min_duration_s=0),
        coverage=False,
    )
    rec.process(0.0, FrameDetections(dets(bare()), SHAPE), np.zeros((100, 100, 3), np.uint8), 0)
    rec.finish()
    eps = h.episodes(store, h.HistoryFilter(date(2026, 1, 5), date(2026, 1, 5)))
    assert len(eps) == 1 and eps[0].duration_s == 0 and eps[0].source == "a.jpg"
    assert h.kpis(store, h.HistoryFilter(date(2026, 1, 5), date(2026, 1, 5))).total.watched_s == 0
