"""Camera URLs and video files as frame sources: reading, reconnecting, newest-frame hand-off.

:class:`FrameReader` reads a source in its own thread and puts each frame into a
:class:`LatestFrame` slot; a processing thread always takes the newest frame, so lag never
builds up (files replayed in real time drop what the pipeline cannot keep up with). A camera
that drops is reopened with back-off and a visible status. Opening goes through a
:data:`Opener`, so tests can stand in a fake capture for a camera.

Camera addresses with passwords need not be typed where they would be shown or stored:
``env:NAME`` reads the URL from the environment variable ``NAME``; what is shown and stored
is the reference, or the URL with its password masked.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import numpy as np

from core.errors import MediaError
from core.media import VideoInfo, open_video
from core.text import redact_url

log = logging.getLogger(__name__)

URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")


class Capture(Protocol):
    """What a reader needs of an open source (``cv2.VideoCapture`` fits)."""

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


Opener = Callable[[str], tuple[Capture, VideoInfo]]


def resolve_source(source: str) -> str:
    """The real address of ``source``: ``env:NAME`` reads it from the environment."""
    source = source.strip()
    if source.startswith("env:"):
        name = source[4:].strip()
        value = os.environ.get(name, "").strip()
        if not value:
            raise MediaError(
                f"The environment variable {name} holding the camera address is not set."
            )
        return value
    return source


def shown_source(source: str) -> str:
    """How a source is shown and stored: an ``env:`` reference as is, URLs redacted, files
    by their name only (no server paths on screens)."""
    source = source.strip()
    if source.startswith("env:"):
        return source
    return redact_url(source) if "://" in source else Path(source).name


def is_url(source: str) -> bool:
    return source.strip().startswith("env:") or "://" in source


class SourceStatus(StrEnum):
    CONNECTING = "connecting"
    LOADING = "loading model"
    RUNNING = "running"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass
class Frame:
    """One frame read from a source."""

    image: np.ndarray
    t: float | None  # media time (files); None for cameras (wall clock)
    captured_at: float  # time.monotonic() when read


class LatestFrame:
    """A one-frame slot: the reader puts, the worker takes the newest (thread-safe)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._closed = False

    def put(self, frame: Frame, wait: bool, stop: threading.Event) -> bool:
        """Offer a frame; returns True if it replaced one nobody took (a dropped frame).

        With ``wait`` the reader waits until the previous frame was taken (every frame of a
        file processed) instead of replacing it.
        """
        with self._cond:
            while wait and self._frame is not None and not stop.is_set():
                self._cond.wait(0.5)
            dropped = self._frame is not None
            self._frame = frame
            self._cond.notify_all()
            return dropped

    def take(self, stop: threading.Event) -> Frame | None:
        """The newest frame; blocks until one comes, the slot is closed or ``stop`` is set."""
        with self._cond:
            while self._frame is None and not self._closed and not stop.is_set():
                self._cond.wait(0.5)
            frame, self._frame = self._frame, None
            self._cond.notify_all()
            return frame

    def poll(self) -> Frame | None:
        """The newest frame if one came since the last take, else None (never blocks)."""
        with self._cond:
            frame, self._frame = self._frame, None
            if frame is not None:
                self._cond.notify_all()
            return frame

    @property
    def closed(self) -> bool:
        """Whether the reader has ended (no more frames will come)."""
        with self._cond:
            return self._closed and self._frame is None

    def close(self) -> None:
        """No more frames will come."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


class FrameReader:
    """Reads one source into a :class:`LatestFrame` (run :meth:`run` in a thread)."""

    def __init__(
        self,
        source: str,
        slot: LatestFrame,
        stop: threading.Event,
        on_status: Callable[[SourceStatus, str], None],
        on_dropped: Callable[[int], None],
        opener: Opener = open_video,
        realtime: bool = True,
        max_attempts: int = 3,
    ):
        self.source, self.slot, self.stop = source, slot, stop
        self.on_status, self.on_dropped, self.opener = on_status, on_dropped, opener
        self.realtime, self.max_attempts = realtime, max_attempts
        self.url = is_url(source)
        self.shown = shown_source(source)
        self.connected = threading.Event()  # the source opened once: load the model
        self.ready = threading.Event()  # the model is loaded: reading may begin
        self.last_read = time.monotonic()

    def run(self) -> None:
        failures, ever_connected = 0, False
        try:
            try:
                address = resolve_source(self.source)
            except MediaError as exc:  # an unset env: variable: retrying cannot help
                self.on_status(SourceStatus.FAILED, f"{exc} Nothing more will be tried.")
                return
            while not self.stop.is_set():
                try:
                    cap, info = self.opener(address)
                except MediaError as exc:
                    failures += 1
                    msg = (
                        f"Camera {self.shown} cannot be reached or sends no video."
                        if self.url
                        else str(exc)
                    )
                    if not self.url or (not ever_connected and failures >= self.max_attempts):
                        self.on_status(SourceStatus.FAILED, f"{msg} Nothing more will be tried.")
                        return
                    wait = min(2**failures, 10)
                    self.on_status(
                        SourceStatus.RECONNECTING,
                        f"{msg} Retrying in {wait} s (attempt {failures + 1}).",
                    )
                    self.stop.wait(wait)
                    continue
                failures, ever_connected = 0, True
                self.connected.set()
                while not self.ready.wait(0.2):
                    if self.stop.is_set():
                        cap.release()
                        return
                self.last_read = time.monotonic()
                self.on_status(
                    SourceStatus.RUNNING,
                    f"{'Camera' if self.url else 'Replaying'} {self.shown}: "
                    f"{info.width}x{info.height} at {info.fps:.0f} fps.",
                )
                try:
                    ended = self._pump(cap, info.fps)
                finally:
                    cap.release()
                if ended:
                    self.on_status(SourceStatus.ENDED, f"End of {self.shown}.")
                    return
                if not self.stop.is_set():
                    self.on_status(
                        SourceStatus.RECONNECTING, f"{self.shown} stopped sending; reconnecting ..."
                    )
        finally:
            self.slot.close()

    def _pump(self, cap: Capture, fps: float) -> bool:
        """Read frames into the slot; True at the end of a file, False if a camera dropped."""
        start, index = time.monotonic(), 0
        while not self.stop.is_set():
            ok, image = cap.read()
            if not ok or image is None:
                return not self.url
            self.last_read = time.monotonic()
            t = index / fps if not self.url else None
            if self.realtime and not self.url:
                delay = start + index / fps - time.monotonic()
                if delay > 0:
                    self.stop.wait(delay)
            index += 1
            if self.slot.put(
                Frame(image, t, time.monotonic()), wait=not self.realtime, stop=self.stop
            ):
                self.on_dropped(1)
        return False


class LoopingCapture:
    """A video file read over and over (a file standing in for a camera: benchmarks, demos).

    At the end of the file it is opened again; it ends only if a fresh opening yields no
    frame."""

    def __init__(self, address: str, opener: Opener):
        self.address, self.opener = address, opener
        self._cap, _ = opener(address)

    def read(self) -> tuple[bool, np.ndarray | None]:
        ok, image = self._cap.read()
        if ok and image is not None:
            return ok, image
        self._cap.release()
        try:
            self._cap, _ = self.opener(self.address)
        except MediaError:
            return False, None
        return self._cap.read()

    def release(self) -> None:
        self._cap.release()


def looping(opener: Opener = open_video) -> Opener:
    """An :data:`Opener` whose files never end (see :class:`LoopingCapture`)."""

    def open_looping(address: str) -> tuple[Capture, VideoInfo]:
        cap, info = opener(address)
        cap.release()
        return LoopingCapture(address, opener), info

    return open_looping


def describe_wait(
    status: SourceStatus,
    shown: str,
    waited_s: float,
    stalled_s: float,
    url: bool,
    warn_after_s: float,
) -> str | None:
    """A better message than the last status when a source is slow, or None."""
    if status is SourceStatus.CONNECTING and waited_s > warn_after_s:
        return (
            f"No answer from {shown} after {waited_s:.0f} s. Check the address, that the "
            "camera is on and reachable from this server."
        )
    if status is SourceStatus.RUNNING and url and stalled_s > warn_after_s:
        # OpenCV gives up on a silent stream only after its 30 s read timeout
        return f"No frames from {shown} for {stalled_s:.0f} s; waiting, then reconnecting."
    return None
