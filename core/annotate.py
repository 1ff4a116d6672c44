"""Drawing detections on images: boxes, masks and labels coloured by compliance role."""

from __future__ import annotations

import cv2
import numpy as np

from core.compliance import Role
from core.detector import Detection, FrameDetections

# BGR
ROLE_COLOURS: dict[Role, tuple[int, int, int]] = {
    Role.PROTECTED: (60, 180, 75),
    Role.VIOLATION: (40, 40, 230),
    Role.CONTEXT: (200, 160, 60),
}


def _label(det: Detection) -> str:
    track = f" #{det.track_id}" if det.track_id is not None else ""
    return f"{det.class_name}{track} {det.confidence:.2f}"


def draw(image: np.ndarray, frame: FrameDetections | tuple[Detection, ...],
         mask_alpha: float = 0.35) -> np.ndarray:
    """Return a copy of ``image`` with each detection's mask, box and label drawn."""
    dets = frame.detections if isinstance(frame, FrameDetections) else frame
    out = image.copy()
    scale = max(out.shape[:2]) / 640
    thick = max(1, round(2 * scale))
    font = 0.5 * max(scale, 0.6)
    if any(d.polygon is not None and len(d.polygon) >= 3 for d in dets):
        overlay = out.copy()
        for d in dets:
            if d.polygon is not None and len(d.polygon) >= 3:
                cv2.fillPoly(overlay, [d.polygon.astype(np.int32)], ROLE_COLOURS[d.role])
        out = cv2.addWeighted(overlay, mask_alpha, out, 1 - mask_alpha, 0)
    for d in dets:
        colour = ROLE_COLOURS[d.role]
        x1, y1, x2, y2 = (int(round(v)) for v in d.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick)
        text = _label(d)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        ty = y1 - 4 if y1 - th - base - 4 > 0 else y1 + th + base + 4
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw + 4, ty + base - 2), colour, -1)
        cv2.putText(out, text, (x1 + 2, ty - 2), cv2.FONT_HERSHEY_SIMPLEX, font,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return out


def crop(image: np.ndarray, box: tuple[float, float, float, float],
         pad: float = 0.15) -> np.ndarray:
    """A padded crop of ``box`` (e.g. the offending hand), clipped to the image."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    px, py = (x2 - x1) * pad, (y2 - y1) * pad
    xa, ya = max(0, int(x1 - px)), max(0, int(y1 - py))
    xb, yb = min(w, int(x2 + px)), min(h, int(y2 + py))
    return image[ya:yb, xa:xb].copy() if xb > xa and yb > ya else image.copy()
