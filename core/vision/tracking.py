"""Detection plus tracking over the frames of one video or stream, full-frame or tiled.

:class:`VideoDetector` is the one place that chooses between the model's own tracker
(``Detector.detect(track=True)``) and tiled detection followed by :class:`DetectionTracker`,
so batch videos, live streams and photos honour a station's tiling the same way. A
:class:`DetectionTracker` also gives track ids to detections made elsewhere, e.g. by one
batched predict call over several cameras (one tracker per camera).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np

from core.errors import TilingError
from core.vision.bytetrack import ByteTracker
from core.vision.detections import FrameDetections
from core.vision.detector import Detector, InferenceParams
from core.vision.tiling import TileSpec, detect_tiled

T = TypeVar("T")


class DetectionTracker:
    """Track ids for detections made outside Ultralytics' tracking predictor: ByteTrack
    (:class:`~core.vision.bytetrack.ByteTracker`, numpy, no torch) fed the given boxes
    (merged tiles, or one camera's share of a batched predict call).

    ``Detector.detect(track=True)`` on the Ultralytics path tracks inside its predictor, which
    never sees merged tiles nor batches of frames from different cameras; this runs the same
    algorithm with the same ``bytetrack.yaml`` settings on them instead. One per video, stream
    or camera, from one thread. ``frame_rate`` is how often it is fed (ByteTrack keeps lost
    tracks for a number of frames scaled by it).
    """

    def __init__(self, tracker: str = "bytetrack.yaml", frame_rate: int = 30):
        if Path(tracker).stem != "bytetrack":
            raise TilingError(f"Tiled tracking supports ByteTrack only, not {tracker}.")
        self._tracker = ByteTracker(frame_rate=frame_rate)

    def reset(self) -> None:
        """Forget all tracks (between unrelated videos)."""
        self._tracker.reset()

    def update(self, frame: FrameDetections, image: np.ndarray | None = None) -> FrameDetections:
        """``frame`` with track ids; like Ultralytics, unconfirmed new tracks are left out."""
        return self._tracker.update(frame)


TiledTracker = DetectionTracker  # its first use, kept under that name


class VideoDetector:
    """Detects (and tracks) the frames of one video or stream, full-frame or tiled."""

    def __init__(
        self,
        detector: Detector,
        params: InferenceParams,
        tiles: TileSpec | None = None,
        tracker: str = "bytetrack.yaml",
    ):
        self.detector, self.params, self.tiles, self.tracker = detector, params, tiles, tracker
        self._tiled_tracker = DetectionTracker(tracker) if tiles else None

    def reset(self) -> None:
        """Forget track ids (between unrelated videos)."""
        self.detector.reset_tracker()
        if self._tiled_tracker is not None:
            self._tiled_tracker.reset()

    def __call__(self, image: np.ndarray, track: bool = True) -> FrameDetections:
        if self.tiles is None:
            return self.detector.detect(image, self.params, track=track, tracker=self.tracker)
        fd = detect_tiled(self.detector, image, self.params, self.tiles)
        if not track or self._tiled_tracker is None:
            return fd
        return self._tiled_tracker.update(fd, image)

    def stream(
        self, items: Iterable[tuple[T, np.ndarray]], track: bool = True, depth: int | None = None
    ) -> Iterator[tuple[T, np.ndarray, FrameDetections]]:
        """Detect (and track) ``(tag, frame)`` pairs in order; full-frame detection keeps
        ``depth`` frames in flight on the OpenVINO runtime path (default: its optimum)."""
        if self.tiles is None:
            yield from self.detector.stream(items, self.params, track, self.tracker, depth)
            return
        for tag, image in items:
            yield tag, image, self(image, track=track)
