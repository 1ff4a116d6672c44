"""A camera worker: several cameras in one process, one shared model batching their frames.

``python -m core worker --config cameras.yaml`` (see :mod:`core.pipeline.cameras`). Per
camera a :class:`~core.pipeline.sources.FrameReader` thread keeps the newest frame (and
reconnects a camera that drops); one scheduling thread visits every camera at its analysis
rate (5 fps by default) and:

1. takes the newest frame of each camera that is due;
2. asks the camera's :class:`~core.pipeline.motion.MotionGate` whether anything moved since
   the detector last looked; if not, the previous detections stand for this frame (counted
   as *skipped*; its time still counts as watched, because the last inference saw this
   scene);
3. runs the detector on the frames that moved, up to ``max_batch`` of them as one batch
   (:meth:`~core.vision.detector.Detector.detect_batch`); cameras whose station uses tiled
   inference are detected on their own;
4. gives each camera's detections track ids with its own
   :class:`~core.vision.tracking.DetectionTracker`, and feeds them to its own
   :class:`~core.events.recorder.EpisodeRecorder` (station rule, episodes, evidence,
   coverage).

Episodes and coverage go to an *outlet*: the store directly (:class:`DirectOutlet`, no broker
configured), or MQTT (:class:`~core.comms.bus.MqttOutlet`) for an ingester to write. A
heartbeat reports the worker and each camera (live, stalled, disconnected, stopped; fps,
analysed and skipped frames) through the same outlet.
"""

from __future__ import annotations

import logging
import os
import resource
import socket
import statistics
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from core.comms.messages import CameraRun
from core.config import settings
from core.events.evidence import EvidenceWriter
from core.events.recorder import EpisodeRecorder, RecordingContext
from core.events.sinks import Sink, StoreSink
from core.events.stations import current_rule
from core.media import open_video
from core.pipeline.cameras import CameraSpec, WorkerConfig
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
from core.storage import Store
from core.storage.fleet import CameraRow, WorkerRow
from core.storage.sessions import SessionInfo
from core.vision.detections import FrameDetections
from core.vision.detector import DETECTORS, Detector
from core.vision.tiling import TileSpec, detect_tiled
from core.vision.tracking import DetectionTracker

log = logging.getLogger(__name__)

_TS = "%Y-%m-%d %H:%M:%S"


class Outlet(Protocol):
    """Where a worker's episodes, coverage and heartbeats go."""

    def start(self, offline: WorkerRow, cameras: Sequence[CameraRow]) -> None: ...

    def open_camera(self, run: CameraRun) -> tuple[Sink, int | None]: ...

    def close_camera(self, run: CameraRun, session_id: int | None, status: str) -> None: ...

    def heartbeat(self, worker: WorkerRow, cameras: Sequence[CameraRow]) -> None: ...

    def details(self) -> dict[str, Any]: ...

    def close(
        self, worker: WorkerRow, cameras: Sequence[CameraRow], timeout_s: float = 10.0
    ) -> bool: ...


class DirectOutlet:
    """No broker: a session per camera, episodes and coverage through a
    :class:`StoreSink`, status rows written straight into the store."""

    def __init__(self, store: Store, session_beat_s: float = 30.0):
        self.store = store
        self.sink = StoreSink(store)
        self.session_beat_s = session_beat_s
        self._sessions: list[int] = []
        self._last_beat = time.monotonic()

    def start(self, offline: WorkerRow, cameras: Sequence[CameraRow]) -> None:
        """Nothing to connect to."""

    def open_camera(self, run: CameraRun) -> tuple[Sink, int | None]:
        sid = self.store.sessions.start(run.session)
        self._sessions.append(sid)
        return self.sink, sid

    def close_camera(self, run: CameraRun, session_id: int | None, status: str) -> None:
        if session_id is not None:
            self.store.sessions.end(session_id, status)
            self._sessions.remove(session_id)

    def heartbeat(self, worker: WorkerRow, cameras: Sequence[CameraRow]) -> None:
        self.store.fleet.report(worker, cameras)
        if time.monotonic() - self._last_beat >= self.session_beat_s:
            self._last_beat = time.monotonic()
            for sid in list(self._sessions):
                self.store.sessions.heartbeat(sid)

    def details(self) -> dict[str, Any]:
        return {"transport": "store"}

    def close(
        self, worker: WorkerRow, cameras: Sequence[CameraRow], timeout_s: float = 10.0
    ) -> bool:
        self.store.fleet.report(worker, cameras)
        return True


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


@dataclass(frozen=True)
class WorkerReport:
    """What a worker did between start and stop."""

    worker: str
    run: str
    transport: str
    backend: str
    imgsz: int
    seconds: float
    cameras: tuple[CameraReport, ...]
    batches: int
    batch_mean: float  # frames per detector call
    infer_ms_per_frame: float
    cpu_s: float  # process CPU time while watching (all threads)
    cpu_per_camera: float  # CPU seconds per camera per second
    held: int  # cameras that kept their rate
    outbox: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        self.last_frame_wall = datetime.now().strftime(_TS)

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


class Worker:
    """Runs the cameras of a :class:`WorkerConfig` (see module docstring)."""

    def __init__(
        self,
        cfg: WorkerConfig,
        outlet: Outlet,
        store: Store,
        weights: Path,
        opener: Opener = open_video,
    ):
        self.cfg, self.outlet, self.store, self.weights = cfg, outlet, store, weights
        self.opener = opener
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.run_id = uuid.uuid4().hex[:12]
        self.started_at = datetime.now().strftime(_TS)
        self.stop_event = threading.Event()
        self._readers_stop = threading.Event()
        self._arrived = threading.Event()  # a reader put a frame somewhere
        self.cameras: list[Camera] = []
        self.batches = self.batched_frames = 0
        self.infer_s = 0.0
        self.detector: Detector | None = None
        self.ready = threading.Event()  # model loaded, cameras started

    # --- status ------------------------------------------------------------------------
    def worker_row(self, status: str) -> WorkerRow:
        d = {
            "pid": self.pid,
            "run": self.run_id,
            "backend": self.cfg.backend,
            "model": self.weights.name,
            "cameras": len(self.cfg.cameras),
            "missed": {c.spec.name: c.missed for c in self.cameras},
        }
        try:
            d.update(self.outlet.details())
        except Exception:  # a heartbeat must not fail on its details
            log.exception("outlet details failed")
        return WorkerRow(
            self.cfg.name, status, self.host, self.started_at, datetime.now().strftime(_TS), d
        )

    def camera_rows(self, final: str | None = None) -> list[CameraRow]:
        now, stamp = time.monotonic(), datetime.now().strftime(_TS)
        rows = [c.row(self.cfg.name, now, stamp) for c in self.cameras]
        if final is not None:
            rows = [CameraRow(**{**asdict(r), "status": final}) for r in rows]
        return rows

    def _initial_rows(self, status: str) -> list[CameraRow]:
        stamp = datetime.now().strftime(_TS)
        return [
            CameraRow(
                c.name, c.station, status, self.cfg.name, shown_source(c.source), heartbeat_at=stamp
            )
            for c in self.cfg.cameras
        ]

    def _heartbeat_loop(self) -> None:
        while not self.stop_event.wait(self.cfg.heartbeat_s):
            try:
                self.outlet.heartbeat(self.worker_row("online"), self.camera_rows())
            except Exception:
                log.exception("worker heartbeat failed")

    # --- running -----------------------------------------------------------------------
    def stop(self) -> None:
        self.stop_event.set()

    def run(self, seconds: float | None = None) -> WorkerReport:
        """Watch until :meth:`stop`, ``seconds`` have passed, or every source ended."""
        cfg = self.cfg
        self.outlet.start(self.worker_row("offline"), self._initial_rows("disconnected"))
        with ExitStack() as stack:
            det = stack.enter_context(
                DETECTORS.acquire(self.weights, cfg.backend, cfg.params.imgsz)
            )
            self.detector = det
            blank = np.zeros((480, 640, 3), np.uint8)
            det.detect_batch([blank] * min(4, len(cfg.cameras)), cfg.params)  # compile, warm
            # recorder time t is seconds since t0; wall time is `started` + t
            t0, started = time.monotonic(), datetime.now()
            self._open_cameras(det, started)
            for cam in self.cameras:
                cam.next_due = t0
                cam.thread = threading.Thread(
                    target=cam.reader.run, daemon=True, name=f"gw-cam-{cam.spec.name}"
                )
                cam.reader.ready.set()
                cam.thread.start()
            beat = threading.Thread(
                target=self._heartbeat_loop, daemon=True, name="gw-worker-heartbeat"
            )
            beat.start()
            self.outlet.heartbeat(self.worker_row("online"), self.camera_rows())
            self.ready.set()
            cpu0 = _cpu_s()
            try:
                self._loop(det, t0, None if seconds is None else t0 + seconds)
            finally:
                elapsed = time.monotonic() - t0
                cpu = _cpu_s() - cpu0
                self.stop_event.set()
                self._readers_stop.set()
                for cam in self.cameras:
                    cam.slot.wake()
                self._finish()
                beat.join(2)
        now = time.monotonic()
        reports = tuple(c.report(now) for c in self.cameras)
        final_rows = self.camera_rows(final="stopped")
        outbox: dict[str, Any] = {}
        try:
            self.outlet.close(self.worker_row("stopped"), final_rows)
            outbox = {k: v for k, v in self.outlet.details().items() if k.startswith("outbox")}
        except Exception:
            log.exception("closing the worker's outlet failed")
        n = max(1, len(self.cameras))
        return WorkerReport(
            cfg.name,
            self.run_id,
            str(self.outlet.details().get("transport", "")),
            cfg.backend,
            cfg.params.imgsz,
            round(elapsed, 2),
            reports,
            self.batches,
            round(self.batched_frames / self.batches, 2) if self.batches else 0.0,
            round(self.infer_s * 1000 / self.batched_frames, 1) if self.batched_frames else 0.0,
            round(cpu, 2),
            round(cpu / n / elapsed, 3) if elapsed > 0 else 0.0,
            sum(r.held for r in reports),
            outbox,
        )

    def _open_cameras(self, det: Detector, started: datetime) -> None:
        cfg, info = self.cfg, det.info
        evidence = (
            EvidenceWriter(settings().evidence_dir, blur=cfg.blur_evidence)
            if cfg.evidence
            else None
        )
        for spec in cfg.cameras:
            rule = current_rule(self.store, spec.station)
            tiles = rule.tile_spec
            session = SessionInfo(
                kind="file" if spec.is_file else "stream",
                source=spec.name,
                station=spec.station,
                model_path=info.name,
                model_hash=info.sha256,
                conf=cfg.params.conf,
                iou=cfg.params.iou,
                imgsz=cfg.params.imgsz,
                params={
                    "backend": info.backend,
                    "worker": cfg.name,
                    "camera": spec.name,
                    "fps": spec.fps,
                    "motion": asdict(spec.motion),
                    "tiles": tiles.to_text() if tiles else None,
                    "min_duration_s": cfg.episodes.min_duration_s,
                    "grace_s": cfg.episodes.grace_s,
                    "rule_version": rule.version,
                },
                started_by=settings().user or None,
            )
            run = CameraRun(cfg.name, spec.name, self.run_id, self.host, self.pid, session)
            cam = Camera(
                spec, run, self._readers_stop, self.opener, cfg.stall_after_s, self._arrived
            )
            cam.tiles = tiles
            sink, cam.session_id = self.outlet.open_camera(run)
            ctx = RecordingContext(
                station=spec.station,
                session_id=cam.session_id,
                source=spec.name,
                model_hash=info.sha256,
                model_name=info.name,
                thresholds=cfg.params.as_dict(),
                started=started,
                key_prefix=run.key_prefix,
            )
            cam.recorder = EpisodeRecorder(ctx, rule, sink, cfg.episodes, evidence)
            self.cameras.append(cam)

    def _loop(self, det: Detector, t0: float, deadline: float | None) -> None:
        """Visit the cameras at their rates; frames that moved wait in ``queue`` for the
        detector, which takes up to ``max_batch`` of them per call. Between two calls the
        loop comes back to the cameras, so motion-gated ones keep their rate even when the
        detector is behind; a camera whose frame still waits misses its next slot."""
        queue: deque[tuple[Camera, Frame, float]] = deque()
        while not self.stop_event.is_set():
            self._arrived.clear()
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return
            live = [c for c in self.cameras if not c.ended]
            if not live:
                return
            waiting = False  # a camera is due but its next frame has not come yet
            for cam in live:
                if cam.next_due > now:
                    continue
                if cam.queued:  # the detector has not got to its previous frame yet
                    cam.missed += 1
                    cam.advance(now)
                    continue
                frame = cam.slot.poll()
                due = cam.next_due
                if frame is None:
                    if now - due >= cam.period:  # a whole period without a new frame
                        cam.no_frame += 1
                        cam.advance(now)
                    else:
                        waiting = True
                    continue
                cam.advance(now)
                gated = (
                    cam.last is not None
                    and cam.tiles is None
                    and now - cam.last_inferred < cam.spec.motion.max_skip_s
                    and not cam.gate.moved(frame.image)
                )
                if gated:
                    assert cam.last is not None
                    cam.skipped += 1
                    cam.record(frame, cam.last, t0, due)
                else:
                    cam.queued = True
                    queue.append((cam, frame, due))
            if queue:
                self._detect(det, queue, t0)
                continue
            upcoming = [c.next_due for c in live if c.next_due > now]
            wait = min(upcoming) - time.monotonic() if upcoming else 0.05
            wait = min(max(wait, 0.001), 0.05)
            if waiting:
                self._arrived.wait(wait)  # woken by the next frame of any camera
            else:
                self.stop_event.wait(wait)

    def _detect(self, det: Detector, queue: deque[tuple[Camera, Frame, float]], t0: float) -> None:
        """One detector call: the oldest tiled frame alone, else up to ``max_batch`` frames
        of different cameras as one batch."""
        if queue[0][0].tiles is not None:
            cam, frame, due = queue.popleft()
            start = time.perf_counter()
            fds = [detect_tiled(det, frame.image, self.cfg.params, cam.tiles)]
            batch = [(cam, frame, due)]
        else:
            batch = []
            for item in list(queue):
                if len(batch) >= self.cfg.max_batch:
                    break
                if item[0].tiles is None:
                    batch.append(item)
                    queue.remove(item)
            start = time.perf_counter()
            fds = det.detect_batch([f.image for _, f, _ in batch], self.cfg.params)
        self.infer_s += time.perf_counter() - start
        self.batches += 1
        self.batched_frames += len(batch)
        for (cam, frame, due), fd in zip(batch, fds):
            cam.queued = False
            self._inferred(cam, frame, fd, t0, due)

    def _inferred(
        self, cam: Camera, frame: Frame, fd: FrameDetections, t0: float, due: float
    ) -> None:
        tracked = cam.tracker.update(fd, frame.image)
        cam.gate.inferred(frame.image)
        cam.last, cam.last_inferred = tracked, time.monotonic()
        cam.analysed += 1
        cam.record(frame, tracked, t0, due)

    def _finish(self) -> None:
        """Close every camera's episodes, hand over its coverage, end its session."""
        for cam in self.cameras:
            try:
                if cam.recorder is not None:
                    cam.recorder.finish()
                self.outlet.close_camera(cam.run, cam.session_id, "finished")
            except Exception:
                log.exception("camera %s could not be closed cleanly", cam.spec.name)
            cam.finished = True
        for cam in self.cameras:
            if cam.thread is not None:
                cam.thread.join(5)


def _cpu_s() -> float:
    """CPU seconds this process has used (user + system, every thread)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
