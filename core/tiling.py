"""Tiled (sliced) inference for wide camera views, and its evaluation on a YOLO data set.

A 1080p frame letterboxed to 640 shrinks a 40 px hand to 13 px, below what a model trained on
close-ups finds. Tiling runs the model on overlapping crops at native resolution, shifts the
boxes back into frame coordinates and merges them (class-wise NMS or weighted box fusion), with
an optional full-frame pass so that large, close objects are still found whole.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from core.detector import Detection, Detector, FrameDetections, InferenceParams

MERGE_METHODS = ("nms", "wbf")


class TilingError(ValueError):
    """Tile settings that cannot work (tile size, overlap, merge method)."""


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
        return f"{self.size}:{self.overlap:g}:{self.merge}:{'full' if self.full_frame else 'nofull'}"

    @classmethod
    def parse(cls, text: str) -> TileSpec:
        """Parse a CLI value 'SIZE[:OVERLAP[:nms|wbf[:full|nofull]]]', e.g. '640:0.25'."""
        parts = text.split(":")
        try:
            size = int(parts[0])
            overlap = float(parts[1]) if len(parts) > 1 and parts[1] else cls.overlap
        except ValueError as exc:
            raise TilingError(f"Bad tiles value '{text}': expected "
                              "SIZE[:OVERLAP[:nms|wbf[:full|nofull]]], e.g. 640:0.25") from exc
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
        out = list(range(0, length - spec.size, step))
        return out + [length - spec.size]

    return [(x, y, min(x + spec.size, width), min(y + spec.size, height))
            for y in starts(height) for x in starts(width)]


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(2)
    area_a = (a[:, 2:] - a[:, :2]).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).prod(1)
    return inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)


def merge_detections(dets: Sequence[Detection], iou: float = 0.5,
                     method: str = "nms") -> tuple[Detection, ...]:
    """Merge overlapping same-class detections from several passes, highest confidence first.

    ``nms`` keeps the most confident box of each cluster; ``wbf`` replaces it by the
    confidence-weighted mean of the cluster's boxes (keeping the highest confidence).
    """
    if method not in MERGE_METHODS:
        raise TilingError(f"Unknown merge '{method}'; choose {' or '.join(MERGE_METHODS)}.")
    ordered = sorted(dets, key=lambda d: -d.confidence)
    if not ordered:
        return ()
    boxes = np.array([d.box for d in ordered], dtype=np.float64)
    classes = np.array([d.class_id for d in ordered])
    overlaps = _iou_matrix(boxes, boxes)
    taken = np.zeros(len(ordered), dtype=bool)
    out = []
    for i, det in enumerate(ordered):
        if taken[i]:
            continue
        cluster = np.flatnonzero(~taken & (classes == classes[i]) & (overlaps[i] >= iou))
        taken[cluster] = True
        if method == "wbf" and len(cluster) > 1:
            w = np.array([ordered[j].confidence for j in cluster])
            fused = (boxes[cluster] * w[:, None]).sum(0) / w.sum()
            det = replace(det, box=tuple(float(v) for v in fused))
        out.append(det)
    return tuple(out)


def _shift(det: Detection, dx: int, dy: int) -> Detection:
    x1, y1, x2, y2 = det.box
    poly = det.polygon + np.array([dx, dy], np.float32) if det.polygon is not None else None
    return replace(det, box=(x1 + dx, y1 + dy, x2 + dx, y2 + dy), polygon=poly, track_id=None)


def _cut_by_inner_edge(box: tuple[float, float, float, float],
                       window: tuple[int, int, int, int], shape: tuple[int, int]) -> bool:
    """Whether ``box`` (tile coordinates) touches a tile edge that is not the frame's edge."""
    x1, y1, x2, y2 = box
    wx1, wy1, wx2, wy2 = window
    h, w = shape
    m = 2.0
    return ((wx1 > 0 and x1 <= m) or (wy1 > 0 and y1 <= m)
            or (wx2 < w and x2 >= wx2 - wx1 - m) or (wy2 < h and y2 >= wy2 - wy1 - m))


def detect_tiled(detector: Detector, image: np.ndarray, params: InferenceParams | None = None,
                 tiles: TileSpec | None = None) -> FrameDetections:
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
    found: list[Detection] = []
    windows = tile_windows(h, w, tiles)
    for window in windows:
        x1, y1, x2, y2 = window
        crop = np.ascontiguousarray(image[y1:y2, x1:x2])
        for det in detector.detect(crop, params).detections:
            if tiles.full_frame and len(windows) > 1 and _cut_by_inner_edge(det.box, window,
                                                                            (h, w)):
                continue
            found.append(_shift(det, x1, y1))
    if tiles.full_frame and len(windows) > 1:
        found.extend(detector.detect(image, params).detections)
    merged = merge_detections(found, tiles.merge_iou, tiles.merge)
    return FrameDetections(merged, (h, w), (time.perf_counter() - t0) * 1000)


class TiledTracker:
    """Track ids for tiled detections of a video: Ultralytics' ByteTrack fed the merged boxes.

    ``Detector.detect(track=True)`` tracks inside Ultralytics' predictor, which never sees the
    merged tiles; this runs the same tracker (same YAML settings) on them instead. One per
    video or stream, from one thread.
    """

    def __init__(self, tracker: str = "bytetrack.yaml"):
        from ultralytics.trackers.byte_tracker import BYTETracker
        from ultralytics.utils import YAML, IterableSimpleNamespace
        from ultralytics.utils.checks import check_yaml

        cfg = IterableSimpleNamespace(**YAML.load(check_yaml(tracker)))
        if cfg.tracker_type != "bytetrack":
            raise TilingError(f"Tiled tracking supports ByteTrack only, not {cfg.tracker_type}.")
        self._tracker = BYTETracker(args=cfg)

    def reset(self) -> None:
        """Forget all tracks (between unrelated videos)."""
        self._tracker.reset()

    def update(self, frame: FrameDetections, image: np.ndarray) -> FrameDetections:
        """``frame`` with track ids; like Ultralytics, unconfirmed new tracks are left out."""
        from ultralytics.engine.results import Boxes

        data = np.array([[*d.box, d.confidence, d.class_id] for d in frame.detections],
                        dtype=np.float32).reshape(-1, 6)
        tracks = self._tracker.update(Boxes(data, frame.shape), image)
        dets = tuple(replace(frame.detections[int(t[-1])], track_id=int(t[4])) for t in tracks)
        return FrameDetections(dets, frame.shape, frame.inference_ms)


@dataclass(frozen=True)
class TiledEvalResult:
    """COCO-style scores (Ultralytics' ap_per_class) of one inference mode on one split."""

    weights: str
    data: str
    split: str
    imgsz: int
    tiles: TileSpec | None  # None: plain full-frame inference
    images: int
    map50: float
    map50_95: float
    per_class_ap50: dict[str, float]
    ms_per_frame: float  # mean wall time of inference per image (all passes)


def _match(pred_boxes: np.ndarray, pred_cls: np.ndarray, true_boxes: np.ndarray,
           true_cls: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Greedy matching by descending confidence, as Ultralytics' validator does (N x T)."""
    correct = np.zeros((len(pred_boxes), len(thresholds)), dtype=bool)
    if not len(pred_boxes) or not len(true_boxes):
        return correct
    iou = _iou_matrix(true_boxes, pred_boxes) * (true_cls[:, None] == pred_cls[None, :])
    matched = np.zeros((len(true_boxes), len(thresholds)), dtype=bool)
    for j in np.flatnonzero((iou >= thresholds.min()).any(0)):
        available = np.where(matched, 0, iou[:, j, None])
        k = available.argmax(0)
        correct[j] = available[k, range(len(thresholds))] >= thresholds
        matched[k, range(len(thresholds))] |= correct[j]
    return correct


def evaluate_tiled(weights: Path | str, data: Path | str, split: str = "test",
                   imgsz: int = 640, tiles: TileSpec | None = None, conf: float = 0.001,
                   iou: float = 0.7) -> TiledEvalResult:
    """mAP of ``weights`` on ``split`` of a YOLO data set with tiled (or, with ``tiles`` None,
    plain) inference through :class:`Detector`, scored with Ultralytics' ``ap_per_class``."""
    import cv2
    import yaml
    from ultralytics.utils.metrics import ap_per_class

    from core.detector import DETECTORS
    from core.wideview import read_split

    data = Path(data).resolve()
    cfg = yaml.safe_load(data.read_text())
    if not isinstance(cfg, dict) or split not in cfg:
        raise ValueError(f"{data.name} has no '{split}' split.")
    root = Path(cfg.get("path") or ".")
    root = root if root.is_absolute() else (data.parent / root).resolve()
    rel = Path(cfg[split])
    if rel.parts[:1] != ("images",) or len(rel.parts) != 2:
        raise ValueError(f"{data.name}: '{split}' must be images/<name> for tiled evaluation.")
    items = read_split(root, rel.parts[1])
    thresholds = np.linspace(0.5, 0.95, 10)
    params = InferenceParams(conf=conf, iou=iou, imgsz=imgsz)
    stats: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    targets: list[np.ndarray] = []
    total_ms = 0.0
    with DETECTORS.acquire(weights, imgsz=imgsz) as det:
        names = dict(det.info.names)
        for item in items:
            image = cv2.imread(str(item.image))
            if image is None:
                raise ValueError(f"{item.image}: not a readable image.")
            h, w = image.shape[:2]
            frame = (detect_tiled(det, image, params, tiles) if tiles is not None
                     else det.detect(image, params))
            total_ms += frame.inference_ms
            tb = np.array([((b.cx - b.w / 2) * w, (b.cy - b.h / 2) * h, (b.cx + b.w / 2) * w,
                            (b.cy + b.h / 2) * h) for b in item.boxes]).reshape(-1, 4)
            tc = np.array([b.class_id for b in item.boxes], dtype=int)
            ordered = sorted(frame.detections, key=lambda d: -d.confidence)
            pb = np.array([d.box for d in ordered]).reshape(-1, 4)
            pc = np.array([d.class_id for d in ordered], dtype=int)
            pconf = np.array([d.confidence for d in ordered])
            stats.append((_match(pb, pc, tb, tc, thresholds), pconf, pc))
            targets.append(tc)
    tp = np.concatenate([s[0] for s in stats]) if stats else np.zeros((0, 10), bool)
    confs = np.concatenate([s[1] for s in stats]) if stats else np.zeros(0)
    pred_cls = np.concatenate([s[2] for s in stats]) if stats else np.zeros(0, int)
    target_cls = np.concatenate(targets) if targets else np.zeros(0, int)
    ap, classes = (np.zeros((0, 10)), np.zeros(0, int))
    if len(tp):
        res = ap_per_class(tp, confs, pred_cls, target_cls, names=names)
        ap, classes = res[5], res[6]
    # Classes with labels but no predictions score 0, as in Ultralytics' validator.
    per50 = {names.get(int(c), str(c)): 0.0 for c in np.unique(target_cls)}
    per50.update({names.get(int(c), str(c)): float(ap[i, 0]) for i, c in enumerate(classes)})
    map50 = float(np.mean(list(per50.values()))) if per50 else 0.0
    ap_all = {int(c): float(ap[i].mean()) for i, c in enumerate(classes)}
    map5095 = (float(np.mean([ap_all.get(int(c), 0.0) for c in np.unique(target_cls)]))
               if len(target_cls) else 0.0)
    return TiledEvalResult(str(weights), str(data), split, imgsz, tiles, len(items), map50,
                           map5095, per50, total_ms / max(len(items), 1))


class VideoDetector:
    """Detects (and tracks) the frames of one video or stream, full-frame or tiled.

    The one place that chooses between ``Detector.detect`` and :func:`detect_tiled`, so batch
    videos, live streams and photos all honour a station's tiling the same way.
    """

    def __init__(self, detector: Detector, params: InferenceParams, tiles: TileSpec | None = None,
                 tracker: str = "bytetrack.yaml"):
        self.detector, self.params, self.tiles, self.tracker = detector, params, tiles, tracker
        self._tiled_tracker = TiledTracker(tracker) if tiles else None

    def reset(self) -> None:
        """Forget track ids (between unrelated videos)."""
        self.detector.reset_tracker()
        if self._tiled_tracker is not None:
            self._tiled_tracker.reset()

    def __call__(self, image: np.ndarray, track: bool = True) -> FrameDetections:
        if self.tiles is None:
            return self.detector.detect(image, self.params, track=track, tracker=self.tracker)
        fd = detect_tiled(self.detector, image, self.params, self.tiles)
        return self._tiled_tracker.update(fd, image) if track else fd
