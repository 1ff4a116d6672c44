"""Violation episodes from tracked detections, and per-second coverage, for video and live.

A bare hand held up for ten seconds is one violation, not three hundred frames. The
:class:`EpisodeTracker` (pure logic, no I/O) follows each offending hand by its tracker id
(falling back to box overlap when the tracker loses it): an episode is *confirmed* once the
hand has been seen for ``min_duration_s`` (gaps shorter than ``grace_s`` merged), and *closed*
when the hand has been gone for longer than ``grace_s``; it ends at the last time it was seen.

The :class:`EpisodeRecorder` runs a tracker over frames and writes to the store: a confirmed
episode is inserted at once as ``state='open'`` (so an alert can point at it and a crash
cannot lose it), its ``ended_at`` is refreshed about once a second, and it is closed with its
final duration, peak confidence, severity, zone and best evidence frame. It also accumulates
per-second coverage (seconds watched, seconds with hands, gloved and bare hand-seconds) into
``coverage_seconds`` and ``coverage_hourly``, the true denominator of a compliance rate.

Times ``t`` are seconds since the start of the recording (media time for a file, elapsed
time for a live stream); :class:`RecordingContext.started` maps them to wall-clock time.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from core import store as st
from core.compliance import Role
from core.detector import Detection, FrameDetections
from core.evidence import EvidenceWriter
from core.stations import Severity, StationRule

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class EpisodeConfig:
    """Timing of episodes."""

    min_duration_s: float = 1.0  # a hand seen for less is noise, not a violation
    grace_s: float = 2.0  # gaps up to this long (occlusion, missed detections) are merged
    rematch_iou: float = 0.3  # a new track overlapping a lost one this much continues it

    def __post_init__(self) -> None:
        if self.min_duration_s < 0 or self.grace_s < 0:
            raise ValueError("Episode minimum duration and grace gap must be >= 0 seconds.")


@dataclass
class Episode:
    """One offending hand over time (mutable while active)."""

    number: int
    track_id: int | None
    class_name: str
    reason: str
    started_t: float
    last_t: float
    box: Box
    peak_conf: float
    peak_t: float
    severity: Severity
    zone: str | None
    confirmed: bool = False

    @property
    def duration_s(self) -> float:
        return self.last_t - self.started_t


@dataclass(frozen=True)
class EpisodeUpdate:
    """What changed with one frame."""

    opened: tuple[Episode, ...] = ()  # confirmed with this frame
    closed: tuple[Episode, ...] = ()  # confirmed episodes that ended
    peaked: tuple[Episode, ...] = ()  # episodes whose best detection is in this frame
    offences: int = 0  # offending detections in this frame


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two xyxy boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class EpisodeTracker:
    """Turns per-frame offending detections into episodes (see module docstring)."""

    def __init__(self, rule: StationRule, config: EpisodeConfig | None = None):
        self.rule = rule
        self.config = config or EpisodeConfig()
        self._active: dict[int, Episode] = {}
        self._by_track: dict[int, int] = {}
        self._next = 1

    @property
    def active(self) -> list[Episode]:
        return list(self._active.values())

    def _match(self, det: Detection, seen: set[int]) -> Episode | None:
        if det.track_id is not None:
            number = self._by_track.get(det.track_id)
            if number is not None and number not in seen and number in self._active:
                return self._active[number]
        # The tracker may hand a re-found hand a new id: continue the overlapping episode.
        best, best_iou = None, self.config.rematch_iou
        for ep in self._active.values():
            if ep.number in seen or (det.track_id is not None and ep.track_id == det.track_id):
                continue
            score = iou(ep.box, det.box)
            if score >= best_iou:
                best, best_iou = ep, score
        return best

    def update(self, t: float, frame: FrameDetections) -> EpisodeUpdate:
        """Feed one frame seen at time ``t`` (seconds, non-decreasing)."""
        # Gone for longer than the grace gap: closed before this frame is matched, even if
        # the tracker hands the same id to a hand that comes back later.
        closed = self._expire(lambda ep: t - ep.last_t > self.config.grace_s)
        offending = [(d, o) for d in frame.detections
                     if (o := self.rule.judge(d, frame.shape)) is not None]
        # strongest first, so two hands competing for one episode give it to the surer one
        offending.sort(key=lambda p: -p[0].confidence)
        seen: set[int] = set()
        peaked: list[Episode] = []
        for det, off in offending:
            ep = self._match(det, seen)
            if ep is None:
                ep = Episode(self._next, det.track_id, det.class_name, off.reason, t, t,
                             det.box, det.confidence, t, off.severity, off.zone)
                self._active[ep.number] = ep
                self._next += 1
                peaked.append(ep)
            else:
                ep.last_t, ep.box = t, det.box
                if det.confidence > ep.peak_conf:
                    ep.peak_conf, ep.peak_t = det.confidence, t
                    ep.class_name, ep.reason = det.class_name, off.reason
                    peaked.append(ep)
                if off.severity is Severity.CRITICAL and ep.severity is not Severity.CRITICAL:
                    ep.severity, ep.zone = Severity.CRITICAL, off.zone
            if det.track_id is not None:
                if ep.track_id is not None and ep.track_id != det.track_id:
                    self._by_track.pop(ep.track_id, None)
                ep.track_id = det.track_id
                self._by_track[det.track_id] = ep.number
            seen.add(ep.number)
        opened = []
        for ep in self._active.values():
            if ep.number in seen and not ep.confirmed \
                    and ep.duration_s >= self.config.min_duration_s:
                ep.confirmed = True
                opened.append(ep)
        return EpisodeUpdate(tuple(opened), closed, tuple(peaked), len(offending))

    def _expire(self, done: Callable[[Episode], bool]) -> tuple[Episode, ...]:
        ended = [ep for ep in self._active.values() if done(ep)]
        for ep in ended:
            del self._active[ep.number]
            if ep.track_id is not None and self._by_track.get(ep.track_id) == ep.number:
                del self._by_track[ep.track_id]
        return tuple(ep for ep in ended if ep.confirmed)

    def finish(self) -> EpisodeUpdate:
        """End of the video or stream: close every active episode at its last sighting."""
        return EpisodeUpdate(closed=self._expire(lambda ep: True))


# --- coverage -----------------------------------------------------------------------------

@dataclass
class CoverageSecond:
    """What one wall-clock second of watching held."""

    ts: str  # 'YYYY-MM-DD HH:MM:SS'
    watched_s: float = 0.0
    hand_s: float = 0.0
    hands: int = 0  # most hands seen at once in this second
    gloved_s: float = 0.0  # gloved hand-seconds
    bare_s: float = 0.0  # bare hand-seconds


@dataclass(frozen=True)
class CoverageTotals:
    watched_s: float
    hand_s: float
    gloved_s: float
    bare_s: float

    @property
    def compliance(self) -> float | None:
        """Gloved share of hand-seconds, or None when no hand was seen."""
        total = self.gloved_s + self.bare_s
        return self.gloved_s / total if total else None


class CoverageAccumulator:
    """Per-second coverage from frames; each frame accounts for the time since the last one.

    The time a frame accounts for is capped at ``max_gap_s`` so a stalled stream is not
    counted as watched.
    """

    def __init__(self, started: datetime, max_gap_s: float = 1.0):
        self.started = started
        self.max_gap_s = max_gap_s
        self._prev_t: float | None = None
        self._seconds: dict[str, CoverageSecond] = {}
        self._totals = [0.0, 0.0, 0.0, 0.0]

    def add(self, t: float, frame: FrameDetections) -> None:
        dt = 0.0 if self._prev_t is None else min(max(t - self._prev_t, 0.0), self.max_gap_s)
        self._prev_t = t
        ts = (self.started + timedelta(seconds=t)).strftime("%Y-%m-%d %H:%M:%S")
        sec = self._seconds.setdefault(ts, CoverageSecond(ts))
        gloved = sum(d.role is Role.PROTECTED for d in frame.detections)
        bare = sum(d.role is Role.VIOLATION for d in frame.detections)
        sec.hands = max(sec.hands, gloved + bare)
        hand_dt = dt if gloved + bare else 0.0
        for i, v in enumerate((dt, hand_dt, dt * gloved, dt * bare)):
            self._totals[i] += v
        sec.watched_s += dt
        sec.hand_s += hand_dt
        sec.gloved_s += dt * gloved
        sec.bare_s += dt * bare

    def drain(self, final: bool = False) -> list[CoverageSecond]:
        """Completed seconds (all of them with ``final``), removed from the accumulator."""
        keys = sorted(self._seconds)
        if not final:
            keys = keys[:-1]  # the newest second may still get frames
        return [self._seconds.pop(k) for k in keys]

    @property
    def totals(self) -> CoverageTotals:
        return CoverageTotals(*self._totals)


def write_coverage(conn: sqlite3.Connection, station: str, session_id: int | None,
                   seconds: list[CoverageSecond]) -> None:
    """Append per-second rows and add them into the hourly roll-up, in one transaction."""
    if not seconds:
        return
    hourly: dict[str, list[float]] = {}
    for s in seconds:
        acc = hourly.setdefault(s.ts[:13] + ":00:00", [0.0, 0.0, 0.0, 0.0])
        for i, v in enumerate((s.watched_s, s.hand_s, s.gloved_s, s.bare_s)):
            acc[i] += v
    with st.transaction(conn):
        conn.executemany(
            "INSERT INTO coverage_seconds (station, session_id, ts, hands, gloved_s, bare_s)"
            " VALUES (?,?,?,?,?,?)",
            [(station, session_id, s.ts, s.hands, s.gloved_s, s.bare_s) for s in seconds])
        conn.executemany(
            "INSERT INTO coverage_hourly (station, hour, watched_s, hand_s, gloved_s, bare_s)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT(station, hour) DO UPDATE SET"
            " watched_s = watched_s + excluded.watched_s, hand_s = hand_s + excluded.hand_s,"
            " gloved_s = gloved_s + excluded.gloved_s, bare_s = bare_s + excluded.bare_s",
            [(station, hour, *v) for hour, v in hourly.items()])


# --- recording to the store ---------------------------------------------------------------

@dataclass(frozen=True)
class RecordingContext:
    """Where episodes of one session are recorded and what they were judged with."""

    station: str
    session_id: int | None = None
    source: str | None = None
    model_hash: str | None = None
    thresholds: dict = field(default_factory=dict)
    started: datetime = field(default_factory=datetime.now)  # wall time of t = 0


@dataclass(frozen=True)
class OpenedEpisode:
    """A newly confirmed episode as stored (for alerts)."""

    event_id: int
    event: st.EventRow


@dataclass
class _Best:
    """The frame holding an episode's most confident detection, kept until it is written."""

    image: np.ndarray
    detections: tuple[Detection, ...]
    box: Box
    frame_index: int | None
    dirty: bool = True


class EpisodeRecorder:
    """Runs an :class:`EpisodeTracker` over frames and stores episodes and coverage."""

    def __init__(self, conn: sqlite3.Connection, ctx: RecordingContext, rule: StationRule,
                 config: EpisodeConfig | None = None, evidence: EvidenceWriter | None = None,
                 on_open: Callable[[OpenedEpisode], None] | None = None,
                 flush_every_s: float = 2.0, coverage: bool = True):
        self.conn = conn
        self.ctx = ctx
        self.rule = rule
        self.tracker = EpisodeTracker(rule, config)
        # Photos are instants, not watched time: they record episodes but no coverage.
        self.coverage = CoverageAccumulator(ctx.started) if coverage else None
        self.evidence = evidence
        self.on_open = on_open
        self.flush_every_s = flush_every_s
        self._event_ids: dict[int, int] = {}
        self._best: dict[int, _Best] = {}
        self._paths: dict[int, tuple[str | None, str | None]] = {}
        self._last_flush = 0.0
        self._last_t = 0.0
        self.episodes_total = 0

    def _wall(self, t: float) -> str:
        return (self.ctx.started + timedelta(seconds=t)).strftime("%Y-%m-%d %H:%M:%S")

    def _event_row(self, ep: Episode, state: str, frame_index: int | None) -> st.EventRow:
        evidence, crop = self._paths.get(ep.number, (None, None))
        return st.EventRow(
            station=self.ctx.station, started_at=self._wall(ep.started_t),
            ended_at=self._wall(ep.last_t), duration_s=round(ep.duration_s, 3),
            session_id=self.ctx.session_id, source=self.ctx.source, frame=frame_index,
            class_name=ep.class_name, peak_conf=round(ep.peak_conf, 4),
            severity=str(ep.severity), evidence_path=evidence, crop_path=crop,
            model_hash=self.ctx.model_hash, track_id=ep.track_id, zone=ep.zone,
            rule_version=self.rule.version, thresholds=self.ctx.thresholds, state=state)

    def _write_evidence(self, ep: Episode) -> None:
        best = self._best.get(ep.number)
        if self.evidence is None or best is None or not best.dirty:
            return
        # the source keeps names unique when one session records several files (batch)
        source = Path(self.ctx.source or "").stem[:40]
        stem = f"s{self.ctx.session_id or 0}-{source}-e{ep.number}-{self._wall(ep.started_t)[11:]}"
        saved = self.evidence.save(best.image, best.detections, best.box, self.ctx.station,
                                   stem, self._wall(ep.started_t)[:10])
        if saved is not None:
            self._paths[ep.number] = (str(saved.frame_path), str(saved.crop_path))
        best.dirty = False

    def process(self, t: float, frame: FrameDetections, image: np.ndarray,
                frame_index: int | None = None) -> EpisodeUpdate:
        """Feed one frame (BGR ``image`` with its detections) seen at time ``t``."""
        self._last_t = t
        update = self.tracker.update(t, frame)
        for ep in update.peaked:
            box = ep.box
            self._best[ep.number] = _Best(image.copy(), frame.detections, box, frame_index)
        for ep in update.opened:
            self._write_evidence(ep)
            best = self._best.get(ep.number)
            row = self._event_row(ep, "open", best.frame_index if best else frame_index)
            event_id = st.add_event(self.conn, row)
            self._event_ids[ep.number] = event_id
            self.episodes_total += 1
            if self.on_open is not None:
                try:
                    self.on_open(OpenedEpisode(event_id, row))
                except Exception:  # an alert sink must never stop recording
                    log.exception("alert for event %s failed", event_id)
        self._close(update.closed)
        if self.coverage is not None:
            self.coverage.add(t, frame)
        if t - self._last_flush >= self.flush_every_s:
            self._flush()
        return update

    def _close(self, episodes: tuple[Episode, ...]) -> None:
        for ep in episodes:
            self._write_evidence(ep)
            event_id = self._event_ids.pop(ep.number, None)
            best = self._best.pop(ep.number, None)
            row = self._event_row(ep, "closed", best.frame_index if best else None)
            self._paths.pop(ep.number, None)
            if event_id is None:
                continue
            self.conn.execute(
                "UPDATE events SET ended_at=?, duration_s=?, class_name=?, peak_conf=?,"
                " severity=?, zone=?, track_id=?, evidence_path=?, crop_path=?, frame=?,"
                " state='closed' WHERE id=?",
                (row.ended_at, row.duration_s, row.class_name, row.peak_conf, row.severity,
                 row.zone, row.track_id, row.evidence_path, row.crop_path, row.frame,
                 event_id))
        # forget the kept frames of candidates that never became episodes
        active = {ep.number for ep in self.tracker.active}
        for number in [n for n in self._best if n not in active]:
            del self._best[number]

    def _flush(self) -> None:
        """Write finished coverage seconds and refresh the last-seen time of open episodes."""
        self._last_flush = self._last_t
        if self.coverage is not None:
            write_coverage(self.conn, self.ctx.station, self.ctx.session_id,
                           self.coverage.drain())
        live = [(self._wall(ep.last_t), round(ep.duration_s, 3), round(ep.peak_conf, 4),
                 str(ep.severity), ep.zone, self._event_ids[ep.number])
                for ep in self.tracker.active if ep.number in self._event_ids]
        if live:
            self.conn.executemany("UPDATE events SET ended_at=?, duration_s=?, peak_conf=?,"
                                  " severity=?, zone=? WHERE id=?", live)

    def finish(self) -> None:
        """Close every episode and write the remaining coverage (end of video or stream)."""
        self._close(self.tracker.finish().closed)
        if self.coverage is not None:
            write_coverage(self.conn, self.ctx.station, self.ctx.session_id,
                           self.coverage.drain(final=True))

    @property
    def open_episodes(self) -> int:
        return len(self._event_ids)


def close_stale_open_events(conn: sqlite3.Connection, stale_after_s: float = 120.0) -> int:
    """Close episodes left ``open`` by a crashed process, at the last time they were seen.

    A running recorder refreshes ``ended_at`` every couple of seconds, so an open episode
    whose ``ended_at`` is older than ``stale_after_s`` has no process behind it any more.
    Returns how many were closed.
    """
    cutoff = (datetime.now() - timedelta(seconds=stale_after_s)).strftime("%Y-%m-%d %H:%M:%S")
    with st.transaction(conn):
        cur = conn.execute(
            "UPDATE events SET ended_at = COALESCE(ended_at, started_at),"
            " duration_s = MAX(0, ROUND((julianday(COALESCE(ended_at, started_at))"
            " - julianday(started_at)) * 86400.0, 3)), state = 'closed'"
            " WHERE state = 'open' AND COALESCE(ended_at, started_at) < ?", (cutoff,))
    if cur.rowcount:
        log.warning("closed %d episode(s) left open by an earlier run", cur.rowcount)
    return cur.rowcount
