"""Privacy-safe evidence of violation episodes: a redacted frame, a hand crop and the boxes.

Only the violating hand stays sharp: everything else in the frame is pixelated and blurred
(OpenCV 5 ships no face detector, and a false glove box must not leave a bystander's face
sharp), and a model's head/face boxes are obscured even where they overlap the hand. The
hand crop is cut from the redacted frame. Beside the images, ``<stem>.json`` keeps the
frame's detections with their status at the station, so reviewed evidence can become
training labels (live episodes included).

Every read and delete of evidence goes through :class:`EvidenceStore`: a path (from the store,
never from a message) is resolved, symlinks and ``..`` included, and used only when it lies
inside the evidence folder; an episode's evidence is found with :func:`find_evidence`. A
worker's message names evidence by a reference relative to that folder
(``<day>/<name>.jpg``), never by a path.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import cv2
import numpy as np

from core.config import settings
from core.media import write_image
from core.text import slug
from core.vision.annotate import crop
from core.vision.detections import Detections

log = logging.getLogger(__name__)

HEAD_NAMES = frozenset({"head", "face", "heads", "faces", "person_head"})

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Evidence:
    """Paths of the saved evidence frame, hand crop and detections file."""

    frame_path: Path
    crop_path: Path
    boxes_path: Path


def _pad(box: Box, shape: tuple[int, int], pad: float) -> tuple[int, int, int, int]:
    h, w = shape
    x1, y1, x2, y2 = box
    px, py = (x2 - x1) * pad, (y2 - y1) * pad
    return (
        max(0, int(x1 - px)),
        max(0, int(y1 - py)),
        min(w, int(x2 + px + 1)),
        min(h, int(y2 + py + 1)),
    )


def _obscure(region: np.ndarray) -> np.ndarray:
    """Pixelate then blur: irreversible at evidence resolution, cheap on a full frame."""
    h, w = region.shape[:2]
    if h < 2 or w < 2:
        return np.zeros_like(region)
    small = cv2.resize(region, (max(1, w // 24), max(1, h // 24)), interpolation=cv2.INTER_AREA)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(big, (0, 0), sigmaX=3)


def head_mask(dets: Detections) -> np.ndarray:
    """Which detections are heads or faces."""
    return np.isin(np.char.lower(dets.class_name.astype(str)), list(HEAD_NAMES))


def redact(image: np.ndarray, keep: Box, dets: Detections) -> np.ndarray:
    """A copy of ``image`` where only the (padded) ``keep`` box is sharp, and heads never."""
    shape = image.shape[:2]
    out = _obscure(image)
    x1, y1, x2, y2 = _pad(keep, shape, 0.1)
    out[y1:y2, x1:x2] = image[y1:y2, x1:x2]
    for box in dets.xyxy[head_mask(dets)]:
        hx1, hy1, hx2, hy2 = _pad(tuple(float(v) for v in box), shape, 0.1)  # type: ignore[arg-type]
        if hx2 > hx1 and hy2 > hy1:
            out[hy1:hy2, hx1:hx2] = _obscure(image[hy1:hy2, hx1:hx2])
    return out


def _boxes_doc(dets: Detections, status: np.ndarray, shape: tuple[int, int]) -> dict:
    return {
        "shape": list(shape),
        "detections": [
            {
                "class_id": int(c),
                "class_name": str(n),
                "role": str(r),
                "status": str(s),
                "confidence": round(float(p), 4),
                "box": [round(float(v), 1) for v in b],
            }
            for c, n, r, s, p, b in zip(
                dets.class_id, dets.class_name, dets.role, status, dets.confidence, dets.xyxy
            )
        ],
    }


class EvidenceWriter:
    """Saves redacted evidence under ``out_dir/<day>/``."""

    def __init__(self, out_dir: Path, blur: bool = True):
        self.out_dir = Path(out_dir)
        self.blur = blur

    def save(
        self,
        image: np.ndarray,
        dets: Detections,
        status: np.ndarray,
        box: Box,
        station: str,
        stem: str,
        day: str,
    ) -> Evidence | None:
        """Write ``<stem>.jpg`` (redacted frame), ``<stem>-hand.jpg`` and ``<stem>.json``;
        None if it fails (a full disk must not stop the live pipeline: it is logged)."""
        folder = self.out_dir / day
        name = f"{slug(station, 40, 'station')}-{slug(stem, 120)}"
        frame = redact(image, box, dets) if self.blur else image
        try:
            frame_path = write_image(folder / f"{name}.jpg", frame)
            crop_path = write_image(folder / f"{name}-hand.jpg", crop(frame, box))
            boxes_path = folder / f"{name}.json"
            boxes_path.write_text(json.dumps(_boxes_doc(dets, status, image.shape[:2])))
        except OSError as exc:
            log.error("evidence for %s not saved: %s", name, exc)
            return None
        return Evidence(frame_path, crop_path, boxes_path)


def read_boxes(frame_path: Path, root: Path | None = None) -> dict | None:
    """The detections saved beside an evidence frame, or None (also when ``root`` is given
    and the file is not inside it)."""
    side = Path(frame_path).with_suffix(".json")
    if root is not None and confined(side, root) is None:
        return None
    try:
        return json.loads(side.read_text())
    except (OSError, ValueError):
        return None


def confined(path: Path | str, root: Path) -> Path | None:
    """``path`` resolved (symlinks followed, ``..`` folded) when it lies inside ``root``
    (itself resolved), else None. A relative path is taken relative to ``root``."""
    base = Path(root).resolve()
    p = Path(path)
    try:
        real = (p if p.is_absolute() else base / p).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return None
    return real if real != base and real.is_relative_to(base) else None


class EvidenceStore:
    """The evidence folder: the only place evidence is read from or deleted in."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, stored: str | Path) -> Path | None:
        """The file a stored evidence path names, when it lies inside the store."""
        return confined(stored, self.root)

    def ref(self, path: str | Path | None) -> str | None:
        """The reference (``<day>/<name>.jpg``) of a file inside the store, for a message;
        None for no file or one outside the store."""
        if path is None:
            return None
        real = confined(path, self.root)
        return real.relative_to(self.root.resolve()).as_posix() if real else None

    def remove(self, stored: str | Path) -> int | None:
        """Delete one evidence file (and the detections beside a frame); returns its size,
        None when it is not inside the store (left alone) and raises FileNotFoundError when
        it is already gone."""
        real = self.path(stored)
        if real is None or not real.is_file():
            if real is not None and not real.exists():
                raise FileNotFoundError(str(stored))
            return None
        size = real.stat().st_size
        real.unlink()
        side = confined(real.with_suffix(".json"), self.root)
        if side is not None and side.is_file() and real.suffix != ".json":
            side.unlink()
        return size

    def purge_before(self, day: date) -> tuple[int, int]:
        """Delete the evidence of every day folder (``YYYY-MM-DD``) older than ``day``;
        returns ``(files, bytes)`` removed. A symlink is never followed and a folder not
        named by a day is left alone. A worker on another machine keeps its evidence on its
        own disk, so it applies the plant's retention there with this."""
        root = self.root.resolve()
        files = freed = 0
        for folder in sorted(root.iterdir()) if root.is_dir() else []:
            try:
                old = date.fromisoformat(folder.name) < day
            except ValueError:
                continue
            if not old or folder.is_symlink() or not folder.is_dir():
                continue
            for f in sorted(folder.iterdir()):
                real = None if f.is_symlink() or not f.is_file() else confined(f, root)
                if real is not None:
                    freed += real.stat().st_size
                    real.unlink()
                    files += 1
            with suppress(OSError):  # not empty: a symlink or a folder stays
                folder.rmdir()
        return files, freed


@dataclass(frozen=True)
class EvidenceFile:
    """A stored evidence path, resolved inside the evidence folder that holds it."""

    path: Path  # resolved: symlinks followed, ``..`` folded
    root: Path  # the evidence folder it lies in

    def boxes(self) -> dict | None:
        """The detections saved beside this frame (None: none, or not inside the folder)."""
        return read_boxes(self.path, self.root)


def evidence_roots() -> tuple[Path, ...]:
    """The evidence folders episodes' evidence is read from: the data folder's and the
    demo's (the demo store's drawn evidence)."""
    s = settings()
    return (s.evidence_dir, s.home / "demo" / "evidence")


def find_evidence(stored: str | Path, roots: Sequence[Path] | None = None) -> EvidenceFile | None:
    """The file a stored evidence path names, in the first folder of ``roots`` (default
    :func:`evidence_roots`) it lies inside; None when it lies inside none of them: evidence
    is never read from anywhere else."""
    for root in evidence_roots() if roots is None else roots:
        real = EvidenceStore(root).path(stored)
        if real is not None:
            return EvidenceFile(real, Path(root))
    return None
