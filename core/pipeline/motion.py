"""Motion gating: skip inference on a camera whose scene has not changed since the detector
last looked at it (as Frigate does before running its detector).

A frame is compared, downscaled to grey and blurred, with the frame the last inference ran
on: when fewer than ``min_area`` of its pixels changed by more than ``threshold`` grey levels,
nothing moved, and the previous detections still describe the scene. Comparing with the last
*inferred* frame, not the previous frame, means slow drift adds up until it counts as motion.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class MotionConfig:
    """How a camera's motion gate decides."""

    enabled: bool = True
    threshold: int = 25  # grey levels a pixel must change by to count as changed
    min_area: float = 0.003  # share of pixels that must change to count as motion
    width: int = 96  # frames are compared at this width (grey, blurred)
    max_skip_s: float = 5.0  # run the detector at least this often, motion or not


class MotionGate:
    """Decides per frame whether the detector must look again (one per camera)."""

    def __init__(self, config: MotionConfig | None = None):
        self.config = config or MotionConfig()
        self._reference: np.ndarray | None = None
        self.last_change = 0.0  # share of pixels changed in the latest comparison

    def _small(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        width = min(self.config.width, w)
        height = max(1, round(h * width / w))
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        small = cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(small, (5, 5), 0)

    def moved(self, image: np.ndarray) -> bool:
        """Whether ``image`` differs from the frame the detector last saw (True when the
        detector has not seen any frame yet, or gating is off)."""
        if not self.config.enabled or self._reference is None:
            return True
        small = self._small(image)
        if small.shape != self._reference.shape:
            return True
        diff = cv2.absdiff(small, self._reference)
        self.last_change = float(np.count_nonzero(diff > self.config.threshold)) / diff.size
        return self.last_change >= self.config.min_area

    def inferred(self, image: np.ndarray) -> None:
        """The detector just ran on ``image``: later frames are compared with it."""
        if self.config.enabled:
            self._reference = self._small(image)
