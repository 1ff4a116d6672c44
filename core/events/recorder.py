"""The episode recorder: judges frames by the station rule, tracks episodes, keeps evidence
and coverage, and emits what happened to a sink (it writes nothing itself).

One recorder per recording (a live session, a batch video, a photo). Per frame it judges
every detection once (:meth:`StationRule.judge`), feeds the judgement to the
:class:`EpisodeTracker` and the :class:`CoverageAccumulator`, keeps the best frame of each
episode for evidence, and tells its :class:`~core.events.sinks.Sink` about episodes that
open (``new``), refresh (``update``, about once a second) and close (``end``), and about
finished coverage seconds. The sink persists (store), alerts or publishes (see
:mod:`core.events.sinks`), as Frigate's event maintainer does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from core.events.coverage import CoverageAccumulator
from core.events.episodes import Episode, EpisodeConfig, EpisodeTracker, EpisodeUpdate
from core.events.evidence import EvidenceWriter
from core.events.rules import Judgement, StationRule
from core.events.sinks import EpisodeEvent, Sink
from core.storage.events import EventRow
from core.storage.sessions import SessionInfo
from core.vision.detections import Detections, FrameDetections
from core.vision.detector import InferenceParams, ModelInfo
from core.vision.tiling import TileSpec

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class RecordingContext:
    """Where episodes of one recording belong and what they were judged with."""

    station: str
    session_id: int | None = None
    source: str | None = None
    model_hash: str | None = None
    model_name: str | None = None
    thresholds: dict[str, Any] = field(default_factory=dict)
    started: datetime = field(default_factory=datetime.now)  # wall time of t = 0
    # Episode keys start with this when set (a camera worker: worker/camera/run), so keys stay
    # unique across processes that have no session id of their own.
    key_prefix: str | None = None


def recording_session(
    kind: str,
    source: str,
    station: str,
    model: ModelInfo,
    params: InferenceParams,
    episodes: EpisodeConfig,
    rule: StationRule,
    tiles: TileSpec | None,
    started_by: str | None,
    **extra: Any,
) -> SessionInfo:
    """The session row of a live or camera recording: its model, thresholds, episode settings
    and rule, as the History page shows them; ``extra`` go into its params after the
    backend."""
    return SessionInfo(
        kind=kind,
        source=source,
        station=station,
        model_path=model.name,
        model_hash=model.sha256,
        conf=params.conf,
        iou=params.iou,
        imgsz=params.imgsz,
        params={
            "backend": model.backend,
            **extra,
            "tiles": tiles.to_text() if tiles else None,
            "min_duration_s": episodes.min_duration_s,
            "grace_s": episodes.grace_s,
            "rule_version": rule.version,
        },
        started_by=started_by,
    )


@dataclass(frozen=True)
class FrameOutcome:
    """What the recorder made of one frame (for drawing and counters)."""

    judgement: Judgement
    update: EpisodeUpdate


@dataclass
class _Best:
    """The frame holding an episode's most confident sighting, kept until it is written."""

    image: np.ndarray
    dets: Detections
    status: np.ndarray
    box: Box
    frame_index: int | None
    dirty: bool = True


class EvidenceKeeper:
    """The best frame of each active episode, written as evidence when the episode opens and
    again at its end if a better frame came meanwhile."""

    def __init__(self, writer: EvidenceWriter | None, ctx: RecordingContext):
        self.writer, self.ctx = writer, ctx
        self._best: dict[int, _Best] = {}
        self._paths: dict[int, tuple[str | None, str | None]] = {}

    def offer(
        self,
        ep: Episode,
        image: np.ndarray,
        frame: FrameDetections,
        judged: Judgement,
        box_index: int,
        frame_index: int | None,
    ) -> None:
        self._best[ep.number] = _Best(
            image.copy(),
            frame.detections,
            judged.status,
            frame.detections.box(box_index),
            frame_index,
        )

    def frame_index(self, number: int) -> int | None:
        best = self._best.get(number)
        return best.frame_index if best else None

    def write(self, ep: Episode, wall: str) -> tuple[str | None, str | None]:
        """Evidence paths of an episode (writing its best frame if it changed)."""
        best = self._best.get(ep.number)
        if self.writer is not None and best is not None and best.dirty:
            # the source keeps names unique when one session records several files (batch)
            source = Path(self.ctx.source or "").stem[:40]
            stem = f"s{self.ctx.session_id or 0}-{source}-e{ep.number}-{wall[11:]}"
            saved = self.writer.save(
                best.image, best.dets, best.status, best.box, self.ctx.station, stem, wall[:10]
            )
            if saved is not None:
                self._paths[ep.number] = (str(saved.frame_path), str(saved.crop_path))
            best.dirty = False
        return self._paths.get(ep.number, (None, None))

    def forget(self, number: int) -> None:
        self._best.pop(number, None)
        self._paths.pop(number, None)

    def keep_only(self, numbers: set[int]) -> None:
        """Drop kept frames of candidates that never became episodes."""
        for n in [n for n in self._best if n not in numbers]:
            del self._best[n]


class EpisodeRecorder:
    """Judges, tracks and records the frames of one recording (see module docstring)."""

    def __init__(
        self,
        ctx: RecordingContext,
        rule: StationRule,
        sink: Sink,
        config: EpisodeConfig | None = None,
        evidence: EvidenceWriter | None = None,
        coverage: bool = True,
        flush_every_s: float = 1.0,
    ):
        self.ctx, self.rule, self.sink = ctx, rule, sink
        self.tracker = EpisodeTracker(config)
        # Photos are instants, not watched time: they record episodes but no coverage.
        self.coverage = CoverageAccumulator(ctx.started) if coverage else None
        self.evidence = EvidenceKeeper(evidence, ctx)
        self.flush_every_s = flush_every_s
        self._open: set[int] = set()
        self._last_flush = 0.0
        self.episodes_total = 0

    def _wall(self, t: float) -> str:
        return (self.ctx.started + timedelta(seconds=t)).strftime("%Y-%m-%d %H:%M:%S")

    def _key(self, ep: Episode) -> str:
        # unique across processes and restarts: the session id (or the worker's camera run)
        # plus the episode number
        if self.ctx.key_prefix:
            return f"{self.ctx.key_prefix}:{ep.number}"
        return f"{self.ctx.session_id or 0}:{self.ctx.started.timestamp():.3f}:{ep.number}"

    def _row(self, ep: Episode, state: str) -> EventRow:
        wall = self._wall(ep.started_t)
        evidence, crop = self.evidence.write(ep, wall)
        return EventRow(
            station=self.ctx.station,
            started_at=wall,
            ended_at=self._wall(ep.last_t),
            duration_s=round(ep.duration_s, 3),
            session_id=self.ctx.session_id,
            source=self.ctx.source,
            frame=self.evidence.frame_index(ep.number),
            class_name=ep.class_name,
            peak_conf=round(ep.peak_conf, 4),
            severity=str(ep.severity),
            evidence_path=evidence,
            crop_path=crop,
            model_hash=self.ctx.model_hash,
            model_name=self.ctx.model_name,
            track_id=ep.track_id,
            zone=ep.zone,
            rule_version=self.rule.version,
            reason=ep.reason,
            thresholds=self.ctx.thresholds,
            state=state,
        )

    def _emit(self, kind: str, ep: Episode, state: str) -> None:
        try:
            self.sink.episode(EpisodeEvent(kind, self._key(ep), self._row(ep, state)))
        except Exception:  # a sink failing (store full, broker gone) must not stop watching
            log.exception("episode %s of %s could not be recorded", kind, self.ctx.station)

    def process(
        self, t: float, frame: FrameDetections, image: np.ndarray, frame_index: int | None = None
    ) -> FrameOutcome:
        """Feed one frame (BGR ``image`` with its detections) seen at time ``t``."""
        judged = self.rule.judge_frame(frame)
        update = self.tracker.update(t, frame, judged)
        for ep, i in update.peaked:
            self.evidence.offer(ep, image, frame, judged, i, frame_index)
        for ep in update.opened:
            self._open.add(ep.number)
            self.episodes_total += 1
            self._emit("new", ep, "open")
        self._close(update.closed)
        if self.coverage is not None:
            self.coverage.add(t, judged)
        if t - self._last_flush >= self.flush_every_s:
            self._flush(t)
        return FrameOutcome(judged, update)

    def _close(self, episodes: tuple[Episode, ...]) -> None:
        for ep in episodes:
            if ep.number in self._open:
                self._open.discard(ep.number)
                self._emit("end", ep, "closed")
            self.evidence.forget(ep.number)
        self.evidence.keep_only({ep.number for ep in self.tracker.active})

    def _flush(self, t: float) -> None:
        """Hand over finished coverage seconds and refresh open episodes."""
        self._last_flush = t
        if self.coverage is not None:
            self._coverage(self.coverage.drain())
        for ep in self.tracker.active:
            if ep.number in self._open:
                self._emit("update", ep, "open")

    def _coverage(self, rows: list) -> None:
        if not rows:
            return
        try:
            self.sink.coverage(self.ctx.station, self.ctx.session_id, rows)
        except Exception:
            log.exception("coverage of %s could not be recorded", self.ctx.station)

    def finish(self) -> None:
        """Close every episode and hand over the remaining coverage (end of a recording)."""
        self._close(self.tracker.finish().closed)
        if self.coverage is not None:
            self._coverage(self.coverage.drain(final=True))

    @property
    def open_episodes(self) -> int:
        return len(self._open)
