"""Tiled (sliced) inference for wide camera views.

A 1080p frame letterboxed to 640 shrinks a 40 px hand to 13 px, below what a model trained on
close-ups finds. Tiling runs the model on overlapping crops at native resolution, shifts the
boxes back into frame coordinates and merges them (class-wise NMS or weighted box fusion), with
an optional full-frame pass so that large, close objects are still found whole.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from core.errors import TilingError
from core.vision.detections import Detections, FrameDetections, box_iou
from core.vision.detector import Detector, InferenceParams

MERGE_METHODS = ("nms", "wbf")


@dataclass(frozen=True)
class TileSpec:
    """How to slice a frame: square tiles of ``size`` source pixels overlapping by ``overlap``."""

    size: int = 640
    overlap: float = 0.25  # fraction of ``size`` shared by neighbouring tiles
    full_frame: bool = True  # also one pass over the whole frame (large objects)
    merge: str = "nms"  # 'nms' (class-wise) or 'wbf' (weighted box fusion)
    merge_iou: float = 0.5

    def __post_init__(self) -> None:
        if self.size < 32:
            raise TilingError(f"Tile size {self.size} px is too small (at least 32).")
        if not 0 <= self.overlap < 1:
            raise TilingError(f"Tile overlap {self.overlap} must be in [0, 1).")
        if self.merge not in MERGE_METHODS:
            raise TilingError(f"Unknown merge '{self.merge}'; choose {' or '.join(MERGE_METHODS)}.")
        if not 0 < self.merge_iou <= 1:
            raise TilingError(f"Merge IoU {self.merge_iou} must be in (0, 1].")

    def to_text(self) -> str:
        """The form :meth:`parse` reads (stored with station rules and sessions)."""
        full = "full" if self.full_frame else "nofull"
        return f"{self.size}:{self.overlap:g}:{self.merge}:{full}"

    @classmethod
    def parse(cls, text: str) -> TileSpec:
        """Parse 'SIZE[:OVERLAP[:nms|wbf[:full|nofull]]]', e.g. '640:0.25'."""
        parts = text.strip().split(":")
        try:
            size = int(parts[0])
            overlap = float(parts[1]) if len(parts) > 1 and parts[1] else cls.overlap
        except ValueError as exc:
            raise TilingError(
                f"Bad tiles value '{text}': expected "
                "SIZE[:OVERLAP[:nms|wbf[:full|nofull]]], e.g. 640:0.25"
            ) from exc
        merge = parts[2] if len(parts) > 2 and parts[2] else cls.merge
        full = parts[3] if len(parts) > 3 else "full"
        if full not in ("full", "nofull"):
            raise TilingError(f"Bad tiles value '{text}': the 4th field is 'full' or 'nofull'.")
        return cls(size=size, overlap=overlap, merge=merge, full_frame=full == "full")


def tile_windows(height: int, width: int, spec: TileSpec) -> list[tuple[int, int, int, int]]:
    """Tile rectangles (x1, y1, x2, y2) covering the frame; the last row/column is flush with
    the frame's edge so every tile has the full size (smaller frames give one tile)."""

    def starts(length: int) -> list[int]:
        if length <= spec.size:
            return [0]
        step = max(1, int(spec.size * (1 - spec.overlap)))
        return [*range(0, length - spec.size, step), length - spec.size]

    return [
        (x, y, min(x + spec.size, width), min(y + spec.size, height))
        for y in starts(height)
        for x in starts(width)
    ]


def merge_detections(dets: Detections, iou: float = 0.5, method: str = "nms") -> Detections:
    """Merge overlapping same-class detections from several passes, highest confidence first.

    ``nms`` keeps the most confident box of each cluster; ``wbf`` replaces it by the
    confidence-weighted mean of the cluster's boxes (keeping the highest confidence).
    """
    if method not in MERGE_METHODS:
        raise TilingError(f"Unknown merge '{method}'; choose {' or '.join(MERGE_METHODS)}.")
    ordered = dets.by_confidence()
    if not len(ordered):
        return ordered
    boxes = ordered.xyxy.astype(np.float64)
    same = ordered.class_id[:, None] == ordered.class_id[None, :]
    clustered = (box_iou(boxes, boxes) >= iou) & same
    taken = np.zeros(len(ordered), dtype=bool)
    keep: list[int] = []
    fused = boxes.copy()
    # Greedy over cluster heads: each iteration removes a whole cluster, not one box.
    for i in range(len(ordered)):
        if taken[i]:
            continue
        cluster = np.flatnonzero(~taken & clustered[i])
        taken[cluster] = True
        keep.append(i)
        if method == "wbf" and len(cluster) > 1:
            w = ordered.confidence[cluster].astype(np.float64)
            fused[i] = (boxes[cluster] * w[:, None]).sum(0) / w.sum()
    out = ordered[np.array(keep)]
    return replace(out, xyxy=fused[keep]) if method == "wbf" else out


def _cut_by_inner_edge(
    xyxy: np.ndarray, window: tuple[int, int, int, int], shape: tuple[int, int]
) -> np.ndarray:
    """Mask of boxes (tile coordinates) touching a tile edge that is not the frame's edge."""
    wx1, wy1, wx2, wy2 = window
    h, w = shape
    m = 2.0
    x1, y1, x2, y2 = xyxy.T
    return (
        ((wx1 > 0) & (x1 <= m))
        | ((wy1 > 0) & (y1 <= m))
        | ((wx2 < w) & (x2 >= wx2 - wx1 - m))
        | ((wy2 < h) & (y2 >= wy2 - wy1 - m))
    )


def detect_tiled(
    detector: Detector,
    image: np.ndarray,
    params: InferenceParams | None = None,
    tiles: TileSpec | None = None,
) -> FrameDetections:
    """Detect on overlapping tiles of ``image`` (BGR) and merge, plus a full-frame pass.

    With the full-frame pass on, a tile detection cut by an inner tile edge is dropped: an
    object smaller than the overlap is whole in a neighbouring tile, and a larger one is found
    by the full-frame pass, so the fragments would only be false positives.
    ``inference_ms`` is the wall time of all passes.
    """
    params = params or InferenceParams(imgsz=detector.imgsz)
    tiles = tiles or TileSpec()
    h, w = image.shape[:2]
    t0 = time.perf_counter()
    windows = tile_windows(h, w, tiles)
    drop_cut = tiles.full_frame and len(windows) > 1
    parts = []
    for window in windows:
        x1, y1, x2, y2 = window
        found = detector.detect(np.ascontiguousarray(image[y1:y2, x1:x2]), params).detections
        if drop_cut:
            found = found[~_cut_by_inner_edge(found.xyxy, window, (h, w))]
        parts.append(found.shifted(x1, y1))
    if drop_cut:
        parts.append(detector.detect(image, params).detections)
    merged = merge_detections(Detections.merge(parts), tiles.merge_iou, tiles.merge)
    return FrameDetections(merged, (h, w), (time.perf_counter() - t0) * 1000)
