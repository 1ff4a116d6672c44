"""One camera of a camera worker: its reader, motion gate, tracker, recorder and counters.

The worker (:mod:`core.pipeline.worker`) schedules the cameras; a :class:`Camera` keeps what
one of them needs between visits: the newest frame (a reader thread fills it, and wakes the
worker), the previous detections for motion-gated frames, its analysis slots, its status
for the heartbeat (:meth:`Camera.row`) and its figures for the report
(:meth:`Camera.report`).
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from core.comms.messages import CameraRun
from core.events.recorder import EpisodeRecorder
from core.pipeline.cameras import CameraSpec
from core.pipeline.motion import MotionGate
from core.pipeline.sources import (
    Frame,
    FrameReader,
    LatestFrame,
    Opener,
    SourceStatus,
    looping,
    shown_source,
)
from core.storage.fleet import CameraRow
from core.vision.detections import FrameDetections
from core.vision.tiling import TileSpec
from core.vision.tracking import DetectionTracker

log = logging.getLogger(__name__)

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # wall-clock stamps of status rows


def _percentile(xs: Sequence[float], q: int) -> float | None:
    if not xs:
        return None
    if len(xs) == 1:
        return round(float(xs[0]), 1)
    return round(statistics.quantiles(xs, n=100, method="inclusive")[q - 1], 1)


@dataclass(frozen=True)
class CameraReport:
    """How one camera fared over a worker's run."""

    name: str
    station: str
    status: str
    target_fps: float
    fps: float  # frames analysed or skipped per second, from its first frame on
    analysed: int  # frames the detector ran on
    skipped: int  # frames answered by the previous detections (nothing moved)
    missed: int  # analysis slots lost because the worker was behind
    no_frame: int  # slots with no new frame from the source
    episodes: int
    lag_p50_ms: float | None  # due time -> frame recorded
    lag_p95_ms: float | None
    held: bool  # kept its analysis rate (at least 95 % of the target)
    message: str


class _Slot(LatestFrame):
    """A camera's newest-frame slot that also wakes the worker's scheduling thread."""

    def __init__(self, arrived: threading.Event):
        super().__init__()
        self.arrived = arrived

    def put(self, frame: Frame, wait: bool, stop: threading.Event) -> bool:
        dropped = super().put(frame, wait, stop)
        self.arrived.set()
        return dropped


class Camera:
    """One camera of a worker: its reader, motion gate, tracker, recorder and counters."""

    def __init__(
        self,
        spec: CameraSpec,
        run: CameraRun,
        stop: threading.Event,
        opener: Opener,
        stall_after_s: float,
        arrived: threading.Event,
    ):
        self.spec, self.run, self.stall_after_s = spec, run, stall_after_s
        self.shown = shown_source(spec.source)
        self.slot = _Slot(arrived)
        self._lock = threading.Lock()
        self.source_status = SourceStatus.CONNECTING
        self.message = f"Connecting to {self.shown} ..."
        self.reader = FrameReader(
            spec.source,
            self.slot,
            stop,
            self._on_status,
            lambda n: None,
            looping(opener) if spec.loop and spec.is_file else opener,
            realtime=True,
            max_attempts=10**9,
        )
        self.gate = MotionGate(spec.motion)
        self.tracker = DetectionTracker(frame_rate=max(1, round(spec.fps)))
        self.tiles: TileSpec | None = None
        self.recorder: EpisodeRecorder | None = None
        self.session_id: int | None = None
        self.period = 1.0 / spec.fps
        self.next_due = 0.0
        self.last: FrameDetections | None = None
        self.last_inferred = -1e9
        self.analysed = self.skipped = self.missed = self.no_frame = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.last_frame_wall: str | None = None
        self.recent: deque[float] = deque(maxlen=600)
        self.lags: deque[float] = deque(maxlen=20_000)
        self.thread: threading.Thread | None = None
        self.finished = False
        self.queued = False  # a frame of this camera waits for the detector

    def _on_status(self, status: SourceStatus, message: str) -> None:
        with self._lock:
            self.source_status, self.message = status, message
        log.info("camera %s: %s %s", self.spec.name, status, message)

    @property
    def ended(self) -> bool:
        """The source ended or failed and nothing is left to analyse."""
        return self.thread is not None and not self.thread.is_alive() and self.slot.closed

    def state(self, now: float) -> str:
        """live | stalled | disconnected | connecting | stopped."""
        with self._lock:
            status = self.source_status
        if self.finished or status in (SourceStatus.ENDED, SourceStatus.STOPPED):
            return "stopped"
        if status in (SourceStatus.RECONNECTING, SourceStatus.FAILED):
            return "disconnected"
        if status is not SourceStatus.RUNNING:
            return "connecting"
        return "stalled" if now - self.reader.last_read > self.stall_after_s else "live"

    def fps(self, now: float, window_s: float = 10.0) -> float:
        times = [t for t in list(self.recent) if now - t <= window_s]
        if len(times) < 2 or self.first_at is None:
            return 0.0
        span = min(window_s, now - self.first_at)
        return round(len(times) / span, 2) if span > 0 else 0.0

    def advance(self, now: float) -> None:
        """Move to the next analysis slot, counting the slots the worker fell behind."""
        self.next_due += self.period
        if now - self.next_due > self.period:
            behind = int((now - self.next_due) / self.period)
            self.missed += behind
            self.next_due += behind * self.period

    def record(self, frame: Frame, fd: FrameDetections, t0: float, due: float) -> None:
        """Feed a frame and its (tracked) detections to the recorder."""
        assert self.recorder is not None
        self.recorder.process(frame.captured_at - t0, fd, frame.image)
        done = time.monotonic()
        if self.first_at is None:
            self.first_at = done
        self.last_at = done
        self.recent.append(done)
        self.lags.append((done - due) * 1000)
        self.last_frame_wall = datetime.now().strftime(TIME_FORMAT)

    def row(self, worker: str, now: float, stamp: str) -> CameraRow:
        with self._lock:
            message = self.message
        return CameraRow(
            self.spec.name,
            self.spec.station,
            self.state(now),
            worker,
            self.shown,
            self.fps(now),
            self.analysed,
            self.skipped,
            self.last_frame_wall,
            stamp,
            message[:300],
        )

    def report(self, now: float) -> CameraReport:
        with self._lock:
            message = self.message
        span = (self.last_at or now) - (self.first_at or now)
        processed = self.analysed + self.skipped
        fps = (processed - 1) / span if processed > 1 and span > 0 else 0.0
        lags = list(self.lags)
        held = fps >= 0.95 * self.spec.fps
        return CameraReport(
            self.spec.name,
            self.spec.station,
            self.state(now),
            self.spec.fps,
            round(fps, 2),
            self.analysed,
            self.skipped,
            self.missed,
            self.no_frame,
            self.recorder.episodes_total if self.recorder else 0,
            _percentile(lags, 50),
            _percentile(lags, 95),
            held,
            message[:300],
        )
