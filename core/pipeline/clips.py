"""Clips made from still images: for benchmarks, tests and the browser's fake camera."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from core.media import VideoWriter, read_image


def fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Letterbox ``image`` into ``size`` (w, h) without distorting it."""
    w, h = size
    scale = min(w / image.shape[1], h / image.shape[0])
    resized = cv2.resize(
        image, (max(1, int(image.shape[1] * scale)), max(1, int(image.shape[0] * scale)))
    )
    out = np.zeros((h, w, 3), np.uint8)
    y, x = (h - resized.shape[0]) // 2, (w - resized.shape[1]) // 2
    out[y : y + resized.shape[0], x : x + resized.shape[1]] = resized
    return out


def clip_frames(
    images: Sequence[Path],
    fps: int = 10,
    seconds_each: float = 2.0,
    size: tuple[int, int] = (640, 480),
) -> Iterator[np.ndarray]:
    """Frames of a clip holding each image for ``seconds_each`` (a slight drift keeps the
    frames from being byte-identical, like a real camera)."""
    per = max(1, int(round(fps * seconds_each)))
    for path in images:
        base = fit(read_image(path), size)
        for i in range(per):
            yield np.roll(base, i % 3, axis=1)


def write_clip(
    images: Sequence[Path],
    path: Path,
    fps: int = 10,
    seconds_each: float = 2.0,
    size: tuple[int, int] = (640, 480),
) -> Path:
    """An H.264 MP4 clip made from still images."""
    with VideoWriter(path, fps, *size) as out:
        for frame in clip_frames(images, fps, seconds_each, size):
            out.write(frame)
    return path


def write_y4m(
    images: Sequence[Path],
    path: Path,
    fps: int = 10,
    seconds_each: float = 2.0,
    size: tuple[int, int] = (640, 480),
) -> Path:
    """A raw .y4m clip (what Chromium's fake camera reads) made from still images."""
    w, h = size
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in clip_frames(images, fps, seconds_each, size):
            fh.write(b"FRAME\n")
            fh.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path
