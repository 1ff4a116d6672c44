"""A station's site frames: their hashes, time blocks, hold-out side, boxes and files.

Boxes are stored as ``{"class_id", "x1", "y1", "x2", "y2"}`` in 0..1 of the image.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.config import ensure_home, settings
from core.errors import DatasetError
from core.storage import Store
from core.storage.site import FrameRecord, StationCounts
from core.text import slug
from core.training import registry
from core.vision.detections import Detections
from core.vision.detector import DETECTORS, InferenceParams, model_names
from core.vision.yolo_data import label_path

BLOCK_MINUTES = 30
HOLDOUT_EVERY = 5  # every 5th time block is held out (20 % of a station's time)
MIN_HAMMING = 6  # hashes closer than this are near-copies
CLUSTER_HAMMING = 14  # photos without a capture time this alike share a hold-out block
TS = "%Y-%m-%d %H:%M:%S"

Box = dict[str, float]


def dhash(image: np.ndarray) -> str:
    """64-bit difference hash of an image (hex): near-copies differ in a few bits."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def hamming(a: str, b: str) -> int:
    """How many bits two hashes differ in."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def is_near_copy(store: Store, station: str, h: str) -> bool:
    """Whether a frame with hash ``h`` is a near-copy of one the station already has."""
    return any(hamming(h, other) < MIN_HAMMING for other in store.site.recent_hashes(station))


def block_of(captured_at: str) -> int:
    """The time block of a capture time ('YYYY-MM-DD HH:MM:SS')."""
    t = datetime.strptime(captured_at, TS)
    return int(t.timestamp() // 60) // BLOCK_MINUTES


def untimed_block(store: Store, station: str, h: str) -> int:
    """A block for a photo without a capture time: its cluster of look-alikes (negative, so
    it never meets a time block). Similar photos share a cluster and so a side of the split."""
    clusters = store.site.untimed_blocks(station)
    for other, block in clusters:
        if hamming(h, other) <= CLUSTER_HAMMING:
            return block
    return -(len({b for _, b in clusters}) + 1)


def split_for(store: Store, station: str, block: int) -> str:
    """The side of a block: the one it already has, else every ``HOLDOUT_EVERY``-th new block
    of the station (in the order they appear) is held out. Blocks are 30-minute spans of
    capture time, or clusters of look-alike photos that carry no time."""
    known = store.site.block_splits(station)
    if block in known:
        return known[block]
    return "holdout" if (len(known) + 1) % HOLDOUT_EVERY == 0 else "train"


def uncertainty(dets: Detections, conf: float) -> float:
    """How unsure the model is about a frame, 0..1: 1 when a hand's confidence sits right at
    the threshold, 0 when every hand is far above it (or there is none)."""
    hands = dets[dets.hands]
    if not len(hands):
        return 0.0
    margin = np.clip((hands.confidence - conf) / 0.5, 0.0, 1.0)
    return float(1.0 - margin.min())


def boxes_of(dets: Detections, shape: tuple[int, int]) -> list[Box]:
    """Detections as stored boxes (normalized corners)."""
    h, w = shape
    return [
        {
            "class_id": int(c),
            "x1": round(float(x1) / w, 5),
            "y1": round(float(y1) / h, 5),
            "x2": round(float(x2) / w, 5),
            "y2": round(float(y2) / h, 5),
        }
        for c, (x1, y1, x2, y2) in zip(dets.class_id, dets.xyxy)
    ]


def check_boxes(boxes: Iterable[dict[str, Any]], classes: int) -> list[Box]:
    """Validated, clipped boxes (at least 2 px of a 640 image; known classes)."""
    out = []
    for b in boxes:
        try:
            cid = int(b["class_id"])
            x1, x2 = sorted((float(b["x1"]), float(b["x2"])))
            y1, y2 = sorted((float(b["y1"]), float(b["y2"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"Not a box: {b!r}.") from exc
        if not 0 <= cid < classes:
            raise DatasetError(f"Class id {cid} is not one of the {classes} classes.")
        x1, y1, x2, y2 = (min(1.0, max(0.0, v)) for v in (x1, y1, x2, y2))
        if x2 - x1 >= 0.003 and y2 - y1 >= 0.003:
            out.append(
                {
                    "class_id": cid,
                    "x1": round(x1, 5),
                    "y1": round(y1, 5),
                    "x2": round(x2, 5),
                    "y2": round(y2, 5),
                }
            )
    return out


@dataclass(frozen=True)
class SiteFrame:
    """A collected frame with its image path."""

    record: FrameRecord
    path: Path

    @property
    def id(self) -> int:
        return self.record.id


def site_dir(station: str) -> Path:
    """The folder of a station's frames, labels and fine-tune data."""
    return ensure_home().home / "site" / slug(station, 60, "station")


def frame_path(rec: FrameRecord) -> Path:
    """Where a frame's image lies."""
    return settings().home / rec.file


def frames(
    store: Store, station: str, status: Sequence[str] | None = None, split: str | None = None
) -> list[SiteFrame]:
    """The station's frames, optionally of some label states and one side of the split."""
    return [SiteFrame(r, frame_path(r)) for r in store.site.frames(station, status, split)]


def counts(store: Store) -> list[StationCounts]:
    """Frames per station and label state."""
    return store.site.counts()


def prelabel_image(image: np.ndarray, weights: Path, conf: float) -> tuple[Detections, str]:
    """A model's detections on an image, and the model's name (the pre-labels)."""
    with DETECTORS.acquire(weights) as det:
        fd = det.detect(image, InferenceParams(conf=conf))
        return fd.detections, det.info.name


def write_label(fr: SiteFrame) -> Path:
    """The frame's boxes as a YOLO label file where Ultralytics looks for it."""
    lab = label_path(fr.path, fr.path.parent)
    lab.parent.mkdir(parents=True, exist_ok=True)
    lab.write_text(
        "".join(
            f"{b['class_id']} {(b['x1'] + b['x2']) / 2:.6f} {(b['y1'] + b['y2']) / 2:.6f} "
            f"{b['x2'] - b['x1']:.6f} {b['y2'] - b['y1']:.6f}\n"
            for b in fr.record.boxes
        )
    )
    return lab


def class_names(store: Store, station: str) -> tuple[str, ...]:
    """The class names of the station's active model (the names its frames are labelled in)."""
    return model_names(registry.active_weights(store, station))


def list_file(path: Path, images: Iterable[Path]) -> Path:
    """A text file listing images by absolute path (an Ultralytics split)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{p.resolve()}\n" for p in images))
    return path
