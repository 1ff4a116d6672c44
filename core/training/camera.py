"""Camera realism for training: what plant cameras do to a picture, applied to train images.

Close-up photos in the data sets are sharp, colourful and upright; plant cameras give
grayscale or washed-out colour, motion and focus blur, heavy JPEG compression, low resolution
scaled up, odd lighting, and hands at any angle. :func:`degrade` applies a random chain of
those effects (each with its own probability) and rotates the labels with the image; the
``camera`` recipe adds one degraded copy of every train image, so validation and test stay
untouched and scores stay comparable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.vision.yolo_data import LabelledImage, YoloBox


@dataclass(frozen=True)
class CameraSpec:
    """Probabilities and ranges of each effect."""

    gray: float = 0.3
    blur: float = 0.35  # gaussian or motion blur
    jpeg: float = 0.5  # quality 15-50
    lowres: float = 0.35  # down to 1/4-1/2 and back up
    light: float = 0.6  # gamma, contrast, colour cast
    noise: float = 0.25
    rotate: float = 0.5  # any angle; boxes follow the hand (see _rotate)


def _rotate(
    image: np.ndarray, boxes: list[YoloBox], angle: float
) -> tuple[np.ndarray, list[YoloBox]]:
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    # Plain grey corners (Ultralytics' padding): a reflected border would mirror hands into
    # the corners without labels, teaching the model that hands are background.
    out = cv2.warpAffine(
        image, m, (nw, nh), borderMode=cv2.BORDER_CONSTANT, borderValue=(114, 114, 114)
    )
    # A hand fills its box roughly as an ellipse does, so the new box is the extent of that
    # ellipse turned by the angle (exact at right angles; the turned corners' extent would
    # make boxes ever larger than the hand at other angles).
    cos_a, sin_a = abs(np.cos(np.radians(angle))), abs(np.sin(np.radians(angle)))
    moved = []
    for b in boxes:
        x1, y1, x2, y2 = b.xyxy(w, h)
        cx, cy = m @ np.array([(x1 + x2) / 2, (y1 + y2) / 2, 1.0])
        a, c = (x2 - x1) / 2, (y2 - y1) / 2
        half_w = float(np.hypot(a * cos_a, c * sin_a))
        half_h = float(np.hypot(a * sin_a, c * cos_a))
        nx1, nx2 = max(0.0, cx - half_w), min(nw, cx + half_w)
        ny1, ny2 = max(0.0, cy - half_h), min(nh, cy + half_h)
        if nx2 - nx1 > 2 and ny2 - ny1 > 2:
            moved.append(
                YoloBox(
                    b.class_id,
                    (nx1 + nx2) / 2 / nw,
                    (ny1 + ny2) / 2 / nh,
                    (nx2 - nx1) / nw,
                    (ny2 - ny1) / nh,
                )
            )
    return out, moved


def degrade(
    image: np.ndarray, boxes: list[YoloBox], rng: random.Random, spec: CameraSpec = CameraSpec()
) -> tuple[np.ndarray, list[YoloBox]]:
    """A camera-like copy of ``image`` (BGR) and its boxes."""
    out = image.copy()
    if rng.random() < spec.rotate:
        angle = rng.choice([90.0, 180.0, 270.0]) if rng.random() < 0.5 else rng.uniform(-60, 60)
        out, boxes = _rotate(out, boxes, angle)
    if rng.random() < spec.light:
        gamma = rng.uniform(0.5, 1.8)
        lut = np.clip(
            ((np.arange(256) / 255.0) ** gamma) * 255 * rng.uniform(0.7, 1.2)
            + rng.uniform(-25, 25),
            0,
            255,
        ).astype(np.uint8)
        out = cv2.LUT(out, lut)
        cast = np.array([rng.uniform(0.85, 1.15) for _ in range(3)], np.float32)
        out = np.clip(out.astype(np.float32) * cast, 0, 255).astype(np.uint8)
    if rng.random() < spec.lowres:
        h, w = out.shape[:2]
        f = rng.uniform(0.25, 0.5)
        small = cv2.resize(
            out, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA
        )
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < spec.blur:
        if rng.random() < 0.5:
            out = cv2.GaussianBlur(out, (0, 0), sigmaX=rng.uniform(0.8, 2.5))
        else:
            k = rng.choice([5, 7, 9, 11])
            kernel = np.zeros((k, k), np.float32)
            kernel[k // 2, :] = 1.0 / k
            m = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1.0)
            out = cv2.filter2D(out, -1, cv2.warpAffine(kernel, m, (k, k)))
    if rng.random() < spec.noise:
        noise = np.random.default_rng(rng.randrange(1 << 30)).normal(
            0, rng.uniform(4, 12), out.shape
        )
        out = np.clip(out.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < spec.gray:
        out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if rng.random() < spec.jpeg:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(15, 50)])
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
        if decoded is not None:
            out = decoded
    return out, boxes


def build_degraded(
    items: list[LabelledImage],
    out_images: Path,
    out_labels: Path,
    seed: int = 0,
    spec: CameraSpec = CameraSpec(),
    prefix: str = "camera",
) -> int:
    """One degraded copy of each image (with its labels); returns how many were written."""
    rng = random.Random(seed)
    out_images.mkdir(parents=True, exist_ok=True)
    out_labels.mkdir(parents=True, exist_ok=True)
    n = 0
    for i, item in enumerate(items):
        image = cv2.imread(str(item.image))
        if image is None:
            continue
        out, boxes = degrade(image, list(item.boxes), rng, spec)
        name = f"{prefix}-{i:06d}"
        cv2.imwrite(str(out_images / f"{name}.jpg"), out, [cv2.IMWRITE_JPEG_QUALITY, 92])
        (out_labels / f"{name}.txt").write_text(
            "".join(f"{b.class_id} {b.cx:.6f} {b.cy:.6f} {b.w:.6f} {b.h:.6f}\n" for b in boxes)
        )
        n += 1
    return n
