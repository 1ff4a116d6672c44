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


def sheet_rows(ws: Any) -> list[tuple[Any, ...]]:
    """The values of a worksheet, row by row."""
    return list(ws.iter_rows(values_only=True))


def sheet_table(
    rows: list[tuple[Any, ...]], header_start: tuple[Any, ...]
) -> list[tuple[Any, ...]]:
    """Rows of the table whose header row starts with ``header_start``, up to a blank row."""
    i = next(i for i, r in enumerate(rows) if r[: len(header_start)] == header_start)
    out = []
    for r in rows[i + 1 :]:
        if all(v is None for v in r):
            break
        out.append(r)
    return out
