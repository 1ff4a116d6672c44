"""Detections for the site-loop tests: the shipped model's two classes, a box per hand."""

from __future__ import annotations

import numpy as np

from core.vision.detections import Detections
from core.vision.roles import Role

NAMES = {0: "glove", 1: "hand"}
ROLES = {0: Role.PROTECTED, 1: Role.VIOLATION}


def dets(conf: list[float], cls: list[int], tracks: list[int] | None = None) -> Detections:
    """One 30x40 box per confidence, side by side, of classes ``cls`` (tracked if given)."""
    boxes = [[10 + 40 * i, 10, 40 + 40 * i, 50] for i in range(len(conf))]
    return Detections.from_arrays(
        np.array(boxes, np.float32).reshape(-1, 4),
        np.array(conf, np.float32),
        np.array(cls),
        NAMES,
        ROLES,
        tracker_id=None if tracks is None else np.array(tracks),
    )
