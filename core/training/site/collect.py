"""Collecting a station's frames: from a live source, uploaded photos and videos, and
reviewed episodes' evidence. Near-copies are skipped by a 64-bit difference hash; each frame
gets its hold-out side from its capture time's block."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from core.config import settings
from core.errors import GloveWatchError, MediaError
from core.events.evidence import EvidenceFile, find_evidence
from core.media import VIDEO_SUFFIXES, iter_video, open_video, read_image, write_image
from core.storage import Store, now
from core.storage.events import EpisodeRecord
from core.training import registry
from core.training.site.frames import (
    TS,
    Box,
    block_of,
    boxes_of,
    dhash,
    is_near_copy,
    prelabel_image,
    site_dir,
    split_for,
    uncertainty,
    untimed_block,
)
from core.vision.detections import Detections, FrameDetections

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _NewFrame:
    """A frame about to be stored: everything its row needs but the hold-out side."""

    name: str
    source: str
    captured_at: str
    phash: str
    score: float
    block: int
    boxes: list[Box] | None
    model: str | None


def _add(
    store: Store, station: str, image: np.ndarray, new: _NewFrame, by: str, split: str | None = None
) -> int:
    path = write_image(site_dir(station) / "images" / new.name, image)
    return store.site.add(
        station,
        str(path.relative_to(settings().home)),
        new.source,
        new.captured_at,
        new.phash,
        new.score,
        new.block,
        split or split_for(store, station, new.block),
        new.boxes,
        "prelabelled" if new.boxes is not None else "new",
        new.model,
        by,
    )


def collect(
    store: Store,
    station: str,
    image: np.ndarray,
    source: str,
    captured_at: str | None = None,
    dets: Detections | None = None,
    conf: float = 0.25,
    model: str | None = None,
    by: str = "-",
    score: float | None = None,
    split: str | None = None,
) -> int | None:
    """Add a frame to the station's site data set; None when it is a near-copy of one
    already there. With ``dets`` (the model's detections) it arrives pre-labelled. The
    hold-out follows the capture time's block unless ``split`` is given (a source that comes
    with its own split, e.g. an imported data set)."""
    timed = captured_at is not None
    captured_at = captured_at or now()
    h = dhash(image)
    if is_near_copy(store, station, h):
        return None
    if score is None:
        score = uncertainty(dets, conf) if dets is not None else 0.0
    new = _NewFrame(
        name=f"{captured_at.replace(' ', 'T').replace(':', '')}-{h[:10]}.jpg",
        source=source,
        captured_at=captured_at,
        phash=h,
        score=score,
        block=block_of(captured_at) if timed else untimed_block(store, station, h),
        boxes=boxes_of(dets, image.shape[:2]) if dets is not None else None,
        model=model,
    )
    return _add(store, station, image, new, by, split)


class LiveCollector:
    """Samples a live source for the site data set: per window of ``every_s`` seconds it keeps
    the most uncertain frame (a track whose class flips counts as very uncertain) and
    collects it when the window ends. It is a :class:`core.vision.taps.FrameTap`."""

    def __init__(
        self, store: Store, station: str, every_s: float, conf: float, model: str, by: str = "live"
    ):
        self.store, self.station, self.every_s = store, station, every_s
        self.conf, self.model, self.by = conf, model, by
        self._window_end: float | None = None
        self._best: tuple[float, np.ndarray, Detections] | None = None
        self._classes: dict[int, int] = {}
        self.collected = 0

    def offer(self, t: float, image: np.ndarray, frame: FrameDetections) -> None:
        """Consider one judged frame at media time ``t``."""
        dets = frame.detections
        score = uncertainty(dets, self.conf)
        if dets.tracker_id is not None:
            for tid, cid in zip(dets.tracker_id.tolist(), dets.class_id.tolist()):
                if tid >= 0 and self._classes.get(tid, cid) != cid:
                    score = max(score, 1.0)  # the tracker saw this hand change class
                self._classes[tid] = cid
        if self._window_end is None:
            self._window_end = t + self.every_s
        if len(dets) and (self._best is None or score > self._best[0]):
            self._best = (score, image.copy(), dets)
        if t >= self._window_end:
            self._flush()
            self._window_end = t + self.every_s

    def _flush(self) -> None:
        if self._best is None:
            return
        score, image, dets = self._best
        self._best = None
        try:
            fid = collect(
                self.store,
                self.station,
                image,
                "live",
                dets=dets,
                conf=self.conf,
                model=self.model,
                by=self.by,
                score=score,
            )
        except OSError as exc:  # a full disk must not stop watching
            log.warning("site frame not collected: %s", exc)
            return
        if fid is not None:
            self.collected += 1


@dataclass(frozen=True)
class SiteTap:
    """What a live session needs to sample a station's frames for labelling: called with
    the session's store and model name, it opens the :class:`LiveCollector` (the pipeline
    sees only a :class:`core.vision.taps.FrameTap`). A value, so an unchanged choice on a
    page compares equal."""

    station: str
    every_s: float
    conf: float
    by: str = "live"

    def __call__(self, store: Store, model: str) -> LiveCollector:
        return LiveCollector(store, self.station, self.every_s, self.conf, model, self.by)


@dataclass
class CollectReport:
    """What a collection added, skipped as near-copies, and could not read."""

    added: int = 0
    near_copies: int = 0
    errors: list[str] = field(default_factory=list)

    def count(self, frame_id: int | None) -> None:
        """Count one collected frame (None: a near-copy)."""
        if frame_id is None:
            self.near_copies += 1
        else:
            self.added += 1

    def add(self, other: CollectReport) -> None:
        """Count another collection's frames, near-copies and errors in this one."""
        self.added += other.added
        self.near_copies += other.near_copies
        self.errors += other.errors


def collect_images(
    store: Store,
    station: str,
    items: Sequence[tuple[str, bytes | Path]],
    source: str = "batch",
    weights: Path | None = None,
    conf: float = 0.25,
    by: str = "-",
    split: str | None = None,
) -> CollectReport:
    """Add uploaded or local images (pre-labelled by the station's model). ``split`` keeps a
    split the images come with (e.g. a set's own test images: ``holdout``)."""
    weights = weights or registry.active_weights(store, station)
    rep = CollectReport()
    for name, data in items:
        try:
            image = read_image(data, name)
        except MediaError as exc:
            rep.errors.append(str(exc))
            continue
        dets, model = prelabel_image(image, weights, conf)
        taken = photo_time(data)
        rep.count(
            collect(store, station, image, source, taken, dets, conf, model, by=by, split=split)
        )
    return rep


def collect_uploads(
    store: Store,
    station: str,
    uploads: Sequence[tuple[str, bytes]],
    every_s: float,
    tmp_dir: Path,
    by: str = "-",
) -> CollectReport:
    """Add uploaded photos and videos (a video: one frame every ``every_s`` seconds, read
    from a temporary copy in ``tmp_dir``); a file that cannot be used is an error line and
    the others go on."""
    rep = CollectReport()
    for name, data in uploads:
        try:
            if Path(name).suffix.lower() in VIDEO_SUFFIXES:
                tmp = tmp_dir / f"collect-{Path(name).name}"
                tmp.write_bytes(data)
                try:
                    one = collect_video(store, station, tmp, every_s, by=by, name=name)
                finally:
                    tmp.unlink(missing_ok=True)
            else:
                one = collect_images(store, station, [(name, data)], by=by)
        except GloveWatchError as exc:
            rep.errors.append(str(exc))
            continue
        rep.add(one)
    return rep


def photo_time(data: bytes | Path) -> str | None:
    """When a photo was taken (EXIF), else None (then: when it was collected)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as im:
            raw = im.getexif().get(36867) or im.getexif().get(306)  # DateTimeOriginal/Time
    except (OSError, ValueError):
        return None
    if not isinstance(raw, str) or len(raw) < 19:
        return None
    return raw[:10].replace(":", "-") + raw[10:19]


def collect_video(
    store: Store,
    station: str,
    path: Path,
    every_s: float = 2.0,
    weights: Path | None = None,
    conf: float = 0.25,
    by: str = "-",
    name: str | None = None,
) -> CollectReport:
    """Add one frame every ``every_s`` seconds of a video (pre-labelled)."""
    weights = weights or registry.active_weights(store, station)
    _, info = open_video(path, name)
    step = max(1, round(info.fps * every_s))
    start = datetime.now() - timedelta(seconds=(info.frames or 0) / info.fps)
    rep = CollectReport()
    for index, image in iter_video(path):
        if index % step:
            continue
        dets, model = prelabel_image(image, weights, conf)
        # media time: a long recording spans several time blocks
        taken = (start + timedelta(seconds=index / info.fps)).strftime(TS)
        rep.count(collect(store, station, image, "video", taken, dets, conf, model, by=by))
    return rep


def _evidence_boxes(ep: EpisodeRecord, found: EvidenceFile, shape: tuple[int, int]) -> list[Box]:
    """The stored detections of an episode's evidence frame as pre-labels (a confirmed bare
    hand stays a hand; a dismissed one becomes a glove)."""
    side = found.boxes() or {}
    h, w = shape
    boxes = []
    for d in side.get("detections", []):
        cid = int(d["class_id"])
        if d.get("role") == "violation" and ep.review == "dismissed":
            cid = 0  # a false alarm: that hand was gloved
        x1, y1, x2, y2 = d["box"]
        boxes.append({"class_id": cid, "x1": x1 / w, "y1": y1 / h, "x2": x2 / w, "y2": y2 / h})
    return boxes


def _reviewed_episodes(store: Store, station: str, limit: int) -> list[EpisodeRecord]:
    from core.storage.filters import HistoryFilter

    span = store.history.data_span()
    if span.first is None or span.last is None:
        return []
    f = HistoryFilter(
        span.first, span.last, stations=(station,), reviews=("confirmed", "dismissed")
    )
    return list(store.events.matching(f, limit=limit))


def collect_reviewed(store: Store, station: str, by: str = "-", limit: int = 500) -> CollectReport:
    """Add the evidence frames of the station's reviewed episodes, their stored detections as
    pre-labels (a confirmed bare hand stays a hand; a dismissed one becomes a glove)."""
    rep = CollectReport()
    for ep in _reviewed_episodes(store, station, limit):
        if not ep.evidence_path:
            continue
        found = find_evidence(ep.evidence_path)
        if found is None:  # a path that leaves the evidence folder is never read
            log.warning("episode %s names evidence outside the evidence store; not read", ep.id)
            rep.errors.append(
                f"Episode #{ep.id}: its evidence frame is not in the evidence store, "
                "so it was not collected."
            )
            continue
        if not found.path.exists():
            continue
        try:
            image = read_image(found.path)
        except MediaError as exc:
            rep.errors.append(str(exc))
            continue
        boxes = _evidence_boxes(ep, found, image.shape[:2])
        h = dhash(image)
        if is_near_copy(store, station, h):
            rep.near_copies += 1
            continue
        new = _NewFrame(
            name=f"episode-{ep.id:07d}.jpg",
            source="episode",
            captured_at=ep.started_at,
            phash=h,
            score=0.5,
            block=block_of(ep.started_at),
            boxes=boxes,
            model=ep.model_name,
        )
        _add(store, station, image, new, by)
        rep.added += 1
    return rep
