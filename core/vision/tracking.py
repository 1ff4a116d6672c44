"""Detection plus tracking over the frames of one video or stream, full-frame or tiled.

:class:`VideoDetector` is the one place that chooses between the model's own tracker
(``Detector.detect(track=True)``) and tiled detection followed by :class:`DetectionTracker`,
so batch videos, live streams and photos honour a station's tiling the same way. A
:class:`DetectionTracker` also gives track ids to detections made elsewhere, e.g. by one
batched predict call over several cameras (one tracker per camera).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.errors import TilingError
from core.vision.detections import FrameDetections
from core.vision.detector import Detector, InferenceParams
from core.vision.tiling import TileSpec, detect_tiled


class DetectionTracker:
    """Track ids for detections made outside Ultralytics' tracking predictor: ByteTrack fed
    the given boxes (merged tiles, or one camera's share of a batched predict call).

    ``Detector.detect(track=True)`` tracks inside Ultralytics' predictor, which never sees
    merged tiles nor batches of frames from different cameras; this runs the same tracker
    (same YAML settings) on them instead. One per video, stream or camera, from one thread.
    ``frame_rate`` is how often it is fed (ByteTrack keeps lost tracks for a number of
    frames scaled by it).
    """

    def __init__(self, tracker: str = "bytetrack.yaml", frame_rate: int = 30):
        from ultralytics.trackers.byte_tracker import BYTETracker
        from ultralytics.utils import YAML, IterableSimpleNamespace
        from ultralytics.utils.checks import check_yaml

        raw = YAML.load(check_yaml(tracker))
        if frame_rate != 30 and "track_buffer" in raw:  # as ByteTrack scales it: ~1 s at 30
            raw["track_buffer"] = max(1, round(raw["track_buffer"] * frame_rate / 30))
        cfg = IterableSimpleNamespace(**raw)
        if cfg.tracker_type != "bytetrack":
            raise TilingError(f"Tiled tracking supports ByteTrack only, not {cfg.tracker_type}.")
        self._tracker: Any = BYTETracker(args=cfg)

    def reset(self) -> None:
        """Forget all tracks (between unrelated videos)."""
        self._tracker.reset()

    def update(self, frame: FrameDetections, image: np.ndarray) -> FrameDetections:
        """``frame`` with track ids; like Ultralytics, unconfirmed new tracks are left out."""
        from ultralytics.engine.results import Boxes

        d = frame.detections
        data = (
            np.concatenate([d.xyxy, d.confidence[:, None], d.class_id[:, None]], axis=1)
            .astype(np.float32)
            .reshape(-1, 6)
        )
        tracks = np.asarray(self._tracker.update(Boxes(data, frame.shape), image))
        if not len(tracks):
            kept = d[np.zeros(len(d), bool)].with_tracker_ids(np.zeros(0, np.int64))
        else:
            # each track row ends with the index of the detection it came from
            kept = d[tracks[:, -1].astype(int)].with_tracker_ids(tracks[:, 4].astype(np.int64))
        return FrameDetections(kept, frame.shape, frame.inference_ms)


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
