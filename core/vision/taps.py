"""A frame tap: something that watches the frames a pipeline has judged, without the
pipeline knowing what it is (the Label page's sampler of a live source is one). The pipeline
depends on this Protocol only, never on the package that implements it."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from core.vision.detections import FrameDetections


class FrameTap(Protocol):
    """Offered every judged frame of a session, in order."""

    def offer(self, t: float, image: np.ndarray, frame: FrameDetections) -> None:
        """Consider one frame at media time ``t`` (seconds) with its detections."""
