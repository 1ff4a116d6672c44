"""Test helpers that build real media and open pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2

from core.media import VideoWriter, read_image

ROOT = Path(__file__).resolve().parent.parent


def make_video(
    path: Path,
    images: list[Path],
    repeat: int = 2,
    fps: float = 5,
    size: tuple[int, int] = (640, 480),
) -> Path:
    """An H.264 clip showing each image for ``repeat`` frames."""
    with VideoWriter(path, fps, *size) as w:
        for p in images:
            frame = cv2.resize(read_image(p), size)
            for _ in range(repeat):
                w.write(frame)
    return path


def open_page(page: str | None = None, timeout: float = 120) -> Any:
    """An AppTest of the app, switched to ``page`` (e.g. ``"pages/2_Batch.py"``)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=timeout).run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at
