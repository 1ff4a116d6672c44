"""Helpers of the pipeline tests: stored rows read back, awkward files, a stand-in camera.

Stored rows are read with SQLAlchemy from the real store (tests read; only core writes).
The camera stand-in is the one mock these tests use: a capture object passed through
``SourceRunner(opener=...)`` that serves real frames and can drop, as a network camera does.
"""

from __future__ import annotations

import io
import json
import struct
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import func, select

from core.errors import MediaError
from core.media import VideoInfo
from core.storage import Store
from core.storage import schema as t


def session_row(store: Store, session_id: int) -> Any:
    with store.db.read() as c:
        return c.execute(select(t.sessions).where(t.sessions.c.id == session_id)).one()


def sessions(store: Store) -> list[Any]:
    with store.db.read() as c:
        return list(c.execute(select(t.sessions).order_by(t.sessions.c.id)))


def session_params(store: Store, session_id: int) -> dict[str, Any]:
    return json.loads(session_row(store, session_id).params_json)


def result_rows(store: Store, session_id: int) -> list[Any]:
    r = t.results
    with store.db.read() as c:
        return list(c.execute(select(r).where(r.c.session_id == session_id).order_by(r.c.id)))


def events(store: Store) -> list[Any]:
    with store.db.read() as c:
        return list(c.execute(select(t.events).order_by(t.events.c.id)))


def coverage_totals(store: Store, station: str) -> tuple[float, float, float]:
    """(watched, compliant, violating) seconds in the hourly roll-up of ``station``."""
    h = t.coverage_hourly
    with store.db.read() as c:
        row = c.execute(
            select(
                func.coalesce(func.sum(h.c.watched_s), 0),
                func.coalesce(func.sum(h.c.compliant_s), 0),
                func.coalesce(func.sum(h.c.violating_s), 0),
            ).where(h.c.station == station)
        ).one()
    return float(row[0]), float(row[1]), float(row[2])


def png_bytes(width: int, height: int, colour: int = 128) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (colour, colour, colour)).save(buf, "PNG")
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_bomb(side: int = 8000) -> bytes:
    """A real decompression bomb: a ``side`` x ``side`` grey PNG of zeros (64 Mpx by default,
    more than core.media.MAX_PIXELS) that is only tens of KB on disk."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + one byte per pixel
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


class FakeCapture:
    """A camera connection: serves ``frames`` (looping them ``loops`` times, forever with
    None) at ``fps``, then reads fail as when a camera drops off the network."""

    def __init__(self, frames: Sequence[np.ndarray], fps: float = 10.0, loops: int | None = 1):
        self.frames, self.fps, self.loops = list(frames), fps, loops
        self.served = 0
        self.released = threading.Event()

    def read(self) -> tuple[bool, np.ndarray | None]:
        total = None if self.loops is None else self.loops * len(self.frames)
        if self.released.is_set() or (total is not None and self.served >= total):
            return False, None
        time.sleep(1 / self.fps)
        frame = self.frames[self.served % len(self.frames)]
        self.served += 1
        return True, frame.copy()

    def release(self) -> None:
        self.released.set()


class FakeCamera:
    """An ``Opener`` for ``SourceRunner``: each call takes the next planned outcome, a
    :class:`FakeCapture` to hand out or ``None`` for 'cannot connect'. After the plan runs
    out, every call fails. Records the addresses it was asked to open."""

    def __init__(
        self, plan: Sequence[FakeCapture | None], on_open: Callable[[int], None] | None = None
    ):
        self.plan = list(plan)
        self.urls: list[str] = []
        self.on_open = on_open
        self._lock = threading.Lock()

    def __call__(self, url: str) -> tuple[FakeCapture, VideoInfo]:
        with self._lock:
            self.urls.append(url)
            n = len(self.urls)
            outcome = self.plan[n - 1] if n <= len(self.plan) else None
        if self.on_open is not None:
            self.on_open(n)
        if outcome is None:
            raise MediaError(f"{url}: cannot be opened as a video.")
        h, w = outcome.frames[0].shape[:2]
        return outcome, VideoInfo(fps=outcome.fps, frames=0, width=w, height=h)


def wait_for(cond: Callable[[], bool], timeout: float, what: str, poll: float = 0.05) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)
