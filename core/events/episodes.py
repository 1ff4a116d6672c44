"""Violation episodes from judged, tracked detections: pure logic, no I/O.

A bare hand held up for ten seconds is one violation, not three hundred frames. The
:class:`EpisodeTracker` follows each offending hand by its tracker id (falling back to box
overlap when the tracker loses it): an episode is *confirmed* once the hand has been seen for
``min_duration_s`` (gaps shorter than ``grace_s`` merged), and *closed* when the hand has been
gone for longer than ``grace_s``; it ends at the last time it was seen.

Times ``t`` are seconds since the start of the recording (media time for a file, elapsed time
for a live stream).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.config import DEFAULTS
from core.events.rules import Judgement, Severity
from core.vision.detections import Detections, FrameDetections, box_iou

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class EpisodeConfig:
    """Timing of episodes (defaults shared by pages and CLI: :data:`core.config.DEFAULTS`)."""

    min_duration_s: float = DEFAULTS.min_duration_s
    grace_s: float = DEFAULTS.grace_s
    rematch_iou: float = DEFAULTS.rematch_iou

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
    peaked: tuple[tuple[Episode, int], ...] = ()  # (episode, box index) of new best sightings
    offences: int = 0  # offending detections in this frame


class EpisodeTracker:
    """Turns per-frame offending detections into episodes (see module docstring)."""

    def __init__(self, config: EpisodeConfig | None = None):
        self.config = config or EpisodeConfig()
        self._active: dict[int, Episode] = {}
        self._by_track: dict[int, int] = {}
        self._next = 1

    @property
    def active(self) -> list[Episode]:
        return list(self._active.values())

    def update(self, t: float, frame: FrameDetections, judged: Judgement) -> EpisodeUpdate:
        """Feed one frame seen at time ``t`` (seconds, non-decreasing) with its judgement."""
        # Gone for longer than the grace gap: closed before this frame is matched, even if
        # the tracker hands the same id to a hand that comes back later.
        closed = self._expire(lambda ep: t - ep.last_t > self.config.grace_s)
        idx = np.flatnonzero(judged.offending)
        if not len(idx):
            return EpisodeUpdate(closed=closed)
        dets = frame.detections
        # strongest first, so two hands competing for one episode give it to the surer one
        idx = idx[np.argsort(-dets.confidence[idx], kind="stable")]
        candidates = list(self._active.values())
        overlap = (
            box_iou(dets.xyxy[idx], np.array([ep.box for ep in candidates]))
            if candidates
            else np.zeros((len(idx), 0))
        )
        ids = dets.tracker_id
        seen: set[int] = set()
        peaked: list[tuple[Episode, int]] = []
        for row, i in enumerate(idx):
            track = int(ids[i]) if ids is not None and ids[i] >= 0 else None
            ep = self._match(track, overlap[row], candidates, seen)
            if ep is None:
                ep = self._open(t, track, dets, judged, int(i))
                peaked.append((ep, int(i)))
            elif self._extend(ep, t, dets, judged, int(i)):
                peaked.append((ep, int(i)))
            if track is not None:
                self._bind(ep, track)
            seen.add(ep.number)
        return EpisodeUpdate(tuple(self._confirm(seen)), closed, tuple(peaked), len(idx))

    def _open(
        self, t: float, track: int | None, dets: Detections, judged: Judgement, i: int
    ) -> Episode:
        """A new (not yet confirmed) episode from offending detection ``i``."""
        ep = Episode(
            self._next,
            track,
            str(dets.class_name[i]),
            str(judged.reason[i]),
            t,
            t,
            dets.box(i),
            float(dets.confidence[i]),
            t,
            Severity(judged.severity[i]),
            judged.zone[i],
        )
        self._active[ep.number] = ep
        self._next += 1
        return ep

    @staticmethod
    def _extend(ep: Episode, t: float, dets: Detections, judged: Judgement, i: int) -> bool:
        """Detection ``i`` seen again in ``ep``; True when it is the episode's best sighting."""
        conf = float(dets.confidence[i])
        ep.last_t, ep.box = t, dets.box(i)
        peak = conf > ep.peak_conf
        if peak:
            ep.peak_conf, ep.peak_t = conf, t
            ep.class_name, ep.reason = str(dets.class_name[i]), str(judged.reason[i])
        severity = Severity(judged.severity[i])
        if severity is Severity.CRITICAL and ep.severity is not Severity.CRITICAL:
            ep.severity, ep.zone = Severity.CRITICAL, judged.zone[i]
        return peak

    def _bind(self, ep: Episode, track: int) -> None:
        """The tracker's id now follows ``ep`` (a hand can change ids)."""
        if ep.track_id is not None and ep.track_id != track:
            self._by_track.pop(ep.track_id, None)
        ep.track_id = track
        self._by_track[track] = ep.number

    def _confirm(self, seen: set[int]) -> list[Episode]:
        """Episodes seen in this frame that just lasted long enough to count."""
        opened = []
        for ep in self._active.values():
            if (
                ep.number in seen
                and not ep.confirmed
                and ep.duration_s >= self.config.min_duration_s
            ):
                ep.confirmed = True
                opened.append(ep)
        return opened

    def _match(
        self, track: int | None, overlap: np.ndarray, candidates: list[Episode], seen: set[int]
    ) -> Episode | None:
        if track is not None:
            number = self._by_track.get(track)
            if number is not None and number not in seen and number in self._active:
                return self._active[number]
        # The tracker may hand a re-found hand a new id: continue the overlapping episode.
        best, best_iou = None, self.config.rematch_iou
        for ep, score in zip(candidates, overlap):
            if (
                ep.number in seen
                or ep.number not in self._active
                or (track is not None and ep.track_id == track)
            ):
                continue
            if score >= best_iou:
                best, best_iou = ep, float(score)
        return best

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
