"""Privacy-safe evidence of violation episodes: a redacted frame plus a crop of the hand.

Redaction is on by default. When the model has a head/face class, those boxes are blurred.
Otherwise everything except the detected hands is blurred: the pinned OpenCV 5 no longer
ships the Haar face cascades (``cv2.data.haarcascades`` is empty and ``CascadeClassifier`` is
gone), so "blur all but the hands" is the face detector-free way to never store a face.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.annotate import crop
from core.compliance import Role
from core.detector import Detection
from core.media import write_image

log = logging.getLogger(__name__)

HEAD_NAMES = frozenset({"head", "face", "heads", "faces", "person_head"})

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Evidence:
    """Paths of the saved evidence frame and hand crop."""

    frame_path: Path
    crop_path: Path


def _pad(box: Box, shape: tuple[int, int], pad: float) -> tuple[int, int, int, int]:
    h, w = shape
    x1, y1, x2, y2 = box
    px, py = (x2 - x1) * pad, (y2 - y1) * pad
    return (max(0, int(x1 - px)), max(0, int(y1 - py)),
            min(w, int(x2 + px + 1)), min(h, int(y2 + py + 1)))


def _obscure(region: np.ndarray) -> np.ndarray:
    """Pixelate then blur: irreversible at evidence resolution, cheap on a full frame."""
    h, w = region.shape[:2]
    if h < 2 or w < 2:
        return np.zeros_like(region)
    small = cv2.resize(region, (max(1, w // 24), max(1, h // 24)), interpolation=cv2.INTER_AREA)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(big, (0, 0), sigmaX=3)


def has_head_class(names: Mapping[int, str]) -> bool:
    """Whether a model can find heads/faces itself."""
    return any(n.strip().lower() in HEAD_NAMES for n in names.values())


def redact(image: np.ndarray, detections: Iterable[Detection], head_class: bool) -> np.ndarray:
    """A copy of ``image`` without recognisable faces.

    ``head_class``: the model has a head class, so blur exactly those boxes; otherwise blur
    everything but the (padded) hand boxes.
    """
    dets = list(detections)
    shape = image.shape[:2]
    if head_class:
        out = image.copy()
        for d in dets:
            if d.class_name.strip().lower() in HEAD_NAMES:
                x1, y1, x2, y2 = _pad(d.box, shape, 0.1)
                if x2 > x1 and y2 > y1:
                    out[y1:y2, x1:x2] = _obscure(out[y1:y2, x1:x2])
        return out
    out = _obscure(image)
    for d in dets:
        if d.role in (Role.PROTECTED, Role.VIOLATION):
            x1, y1, x2, y2 = _pad(d.box, shape, 0.1)
            out[y1:y2, x1:x2] = image[y1:y2, x1:x2]
    return out


def _slug(text: str, limit: int = 40) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:limit] or "station"


class EvidenceWriter:
    """Saves redacted evidence frames and hand crops under ``out_dir/<day>/``."""

    def __init__(self, out_dir: Path, class_names: Mapping[int, str], blur: bool = True):
        self.out_dir = Path(out_dir)
        self.blur = blur
        self.head_class = has_head_class(class_names)

    def save(self, image: np.ndarray, detections: Iterable[Detection], box: Box,
             station: str, stem: str, day: str) -> Evidence | None:
        """Write ``<stem>.jpg`` (redacted frame) and ``<stem>-hand.jpg``; None if it fails.

        A full disk must not stop the live pipeline, so failures are logged, not raised.
        """
        folder = self.out_dir / day
        name = f"{_slug(station)}-{_slug(stem, 120)}"
        frame = redact(image, detections, self.head_class) if self.blur else image
        try:
            frame_path = write_image(folder / f"{name}.jpg", frame)
            crop_path = write_image(folder / f"{name}-hand.jpg", crop(image, box))
        except OSError as exc:
            log.error("evidence for %s not saved: %s", name, exc)
            return None
        return Evidence(frame_path, crop_path)
