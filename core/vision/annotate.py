"""Drawing detections on images, coloured by what each box means at the station.

Colours are the product's one legend, used by Live, Batch, History evidence and the data-set
samples of the Training page: green a compliant hand, red a violating one, grey context
(heads, persons). Whether a hand is compliant is the station rule's decision, so callers pass
each box's :class:`BoxStatus`; without one, the class role decides (gloved green, bare red).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import cv2
import numpy as np

from core.vision.detections import Detections, FrameDetections
from core.vision.roles import Role, default_role


class BoxStatus(StrEnum):
    """What a box means at the station where it was seen."""

    COMPLIANT = "compliant"
    VIOLATING = "violating"
    CONTEXT = "context"


# BGR
STATUS_COLOURS: dict[BoxStatus, tuple[int, int, int]] = {
    BoxStatus.COMPLIANT: (60, 170, 40),
    BoxStatus.VIOLATING: (40, 40, 220),
    BoxStatus.CONTEXT: (150, 150, 150),
}
# The same colours as hex, for charts (plotly) and page legends.
STATUS_HEX: dict[BoxStatus, str] = {
    s: "#{:02x}{:02x}{:02x}".format(*reversed(c)) for s, c in STATUS_COLOURS.items()
}


def status_from_roles(dets: Detections) -> np.ndarray:
    """Each box's status by its class role alone (gloved compliant, bare violating)."""
    out = np.full(len(dets), str(BoxStatus.CONTEXT), dtype="<U9")
    out[dets.with_role(Role.PROTECTED)] = str(BoxStatus.COMPLIANT)
    out[dets.with_role(Role.VIOLATION)] = str(BoxStatus.VIOLATING)
    return out


def _class_status(name: str) -> BoxStatus:
    """The status a class's boxes are drawn in, by its default role."""
    role = default_role(name)
    return {Role.PROTECTED: BoxStatus.COMPLIANT, Role.VIOLATION: BoxStatus.VIOLATING}.get(
        role, BoxStatus.CONTEXT
    )


def class_colour(name: str) -> tuple[int, int, int]:
    """BGR colour of a class name by its default role (for labels of a data set)."""
    return STATUS_COLOURS[_class_status(name)]


def class_hex(name: str) -> str:
    """:func:`class_colour` as a web colour ('#rrggbb'), for pages and the box editor."""
    return STATUS_HEX[_class_status(name)]


def _labels(dets: Detections) -> list[str]:
    ids = dets.tracker_id
    return [
        f"{name}{f' #{int(ids[i])}' if ids is not None and ids[i] >= 0 else ''} {c:.2f}"
        for i, (name, c) in enumerate(zip(dets.class_name, dets.confidence))
    ]


def draw(
    image: np.ndarray,
    frame: FrameDetections | Detections,
    status: Sequence[str] | np.ndarray | None = None,
    mask_alpha: float = 0.35,
) -> np.ndarray:
    """A copy of ``image`` with each detection's mask, box and label drawn.

    ``status`` gives each box's :class:`BoxStatus` (default: by class role).
    """
    dets = frame.detections if isinstance(frame, FrameDetections) else frame
    states = status_from_roles(dets) if status is None else np.asarray(status)
    colours = [STATUS_COLOURS[BoxStatus(s)] for s in states]
    out = image.copy()
    scale = max(out.shape[:2]) / 640
    thick = max(1, round(2 * scale))
    # captions about 3 % of the picture's longer side: still readable when a page shows the
    # picture a third of the screen wide
    font = max(0.6, 0.9 * scale)
    weight = max(1, round(1.6 * font))
    if dets.polygons is not None and len(dets):
        overlay = out.copy()
        for poly, colour in zip(dets.polygons, colours):
            if poly is not None and len(poly) >= 3:
                cv2.fillPoly(overlay, [poly.astype(np.int32)], colour)
        out = cv2.addWeighted(overlay, mask_alpha, out, 1 - mask_alpha, 0)
    for (x1, y1, x2, y2), colour, text in zip(
        np.round(dets.xyxy).astype(int), colours, _labels(dets)
    ):
        cv2.rectangle(out, (int(x1), int(y1)), (int(x2), int(y2)), colour, thick)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, weight)
        ty = int(y1) - 4 if y1 - th - base - 4 > 0 else int(y1) + th + base + 4
        cv2.rectangle(out, (int(x1), ty - th - base), (int(x1) + tw + 4, ty + base - 2), colour, -1)
        cv2.putText(
            out,
            text,
            (int(x1) + 2, ty - 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            font,
            (255, 255, 255),
            weight,
            cv2.LINE_AA,
        )
    return out


def crop(
    image: np.ndarray, box: tuple[float, float, float, float], pad: float = 0.15
) -> np.ndarray:
    """A padded crop of ``box`` (e.g. the offending hand), clipped to the image."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    px, py = (x2 - x1) * pad, (y2 - y1) * pad
    xa, ya = max(0, int(x1 - px)), max(0, int(y1 - py))
    xb, yb = min(w, int(x2 + px)), min(h, int(y2 + py))
    return image[ya:yb, xa:xb].copy() if xb > xa and yb > ya else image.copy()
