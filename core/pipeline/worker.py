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

Episodes and coverage go to an *outlet* (:mod:`core.pipeline.outlets`): the store directly
(:class:`~core.pipeline.outlets.DirectOutlet`, no broker configured), or MQTT
(:class:`~core.comms.bus.MqttOutlet`) for an ingester to write. The per-camera state is a
:class:`~core.pipeline.worker_camera.Camera`. A heartbeat reports the worker and each camera
(live, stalled, disconnected, stopped; fps, analysed and skipped frames) through the same
outlet.
"""

from __future__ import annotations

import logging
import os
import resource
import socket
import threading
import time
import uuid
from collections import deque
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from core.comms.messages import CameraRun
from core.config import settings
from core.events.evidence import EvidenceStore, EvidenceWriter
from core.events.recorder import EpisodeRecorder, RecordingContext, recording_session
from core.events.rules import StationRule
from core.events.stations import current_rule
from core.media import open_video
from core.pipeline.cameras import CameraSpec, WorkerConfig
from core.pipeline.outlets import Outlet
from core.pipeline.sources import Frame, Opener, shown_source
from core.pipeline.worker_camera import TIME_FORMAT, Camera, CameraReport
from core.storage import Store
from core.storage.fleet import CameraRow, WorkerRow
from core.storage.sessions import SessionInfo
from core.vision.detections import FrameDetections
from core.vision.detector import DETECTORS, Detector, ModelInfo
from core.vision.tiling import detect_tiled

log = logging.getLogger(__name__)
PURGE_EVERY_S = 3600.0  # how often a worker applies retention to its own evidence


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
        self.started_at = datetime.now().strftime(TIME_FORMAT)
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
            self.cfg.name,
            status,
            self.host,
            self.started_at,
            datetime.now().strftime(TIME_FORMAT),
            d,
        )

    def camera_rows(self, final: str | None = None) -> list[CameraRow]:
        now, stamp = time.monotonic(), datetime.now().strftime(TIME_FORMAT)
        rows = [c.row(self.cfg.name, now, stamp) for c in self.cameras]
        if final is not None:
            rows = [CameraRow(**{**asdict(r), "status": final}) for r in rows]
        return rows

    def _initial_rows(self, status: str) -> list[CameraRow]:
        stamp = datetime.now().strftime(TIME_FORMAT)
        return [
            CameraRow(
                c.name, c.station, status, self.cfg.name, shown_source(c.source), heartbeat_at=stamp
            )
            for c in self.cfg.cameras
        ]

    def _heartbeat_loop(self) -> None:
        next_purge = 0.0
        while not self.stop_event.wait(self.cfg.heartbeat_s):
            try:
                self.outlet.heartbeat(self.worker_row("online"), self.camera_rows())
            except Exception:
                log.exception("worker heartbeat failed")
            if self.outlet.remote and time.monotonic() >= next_purge:
                next_purge = time.monotonic() + PURGE_EVERY_S
                self.purge_evidence()

    def purge_evidence(self, today: date | None = None) -> tuple[int, int]:
        """Apply the plant's retention (``GLOVEWATCH_RETENTION_DAYS``) to this worker's own
        evidence folder: through a broker (``outlet.remote``) the central retention cannot
        reach it, so the heartbeat thread calls this hourly; a worker writing to the store
        directly leaves it to the store's retention, which also marks the rows."""
        s = settings()
        cutoff = (today or date.today()) - timedelta(days=s.retention_days)
        try:
            files, freed = EvidenceStore(s.evidence_dir).purge_before(cutoff)
        except OSError as exc:
            log.error("evidence older than %s not removed: %s", cutoff, exc)
            return 0, 0
        if files:
            log.info(
                "retention: %d evidence file(s) before %s removed (%d bytes)", files, cutoff, freed
            )
        return files, freed

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
            self._start_readers(t0)
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
                self._wind_down(beat)
        reports = tuple(c.report(time.monotonic()) for c in self.cameras)
        return self._report(reports, elapsed, cpu, self._close_outlet())

    def _start_readers(self, t0: float) -> None:
        """Every camera's first slot is due at ``t0``; its reader thread starts now."""
        for cam in self.cameras:
            cam.next_due = t0
            cam.thread = threading.Thread(
                target=cam.reader.run, daemon=True, name=f"gw-cam-{cam.spec.name}"
            )
            cam.reader.ready.set()
            cam.thread.start()

    def _wind_down(self, beat: threading.Thread) -> None:
        """Stop the loop and the readers, close every camera, let the heartbeat end."""
        self.stop_event.set()
        self._readers_stop.set()
        for cam in self.cameras:
            cam.slot.wake()
        self._finish()
        beat.join(2)

    def _close_outlet(self) -> dict[str, Any]:
        """The last status rows through the outlet; its outbox figures, if it has them."""
        final_rows = self.camera_rows(final="stopped")
        try:
            self.outlet.close(self.worker_row("stopped"), final_rows)
            return {k: v for k, v in self.outlet.details().items() if k.startswith("outbox")}
        except Exception:
            log.exception("closing the worker's outlet failed")
            return {}

    def _report(
        self,
        reports: tuple[CameraReport, ...],
        elapsed: float,
        cpu: float,
        outbox: dict[str, Any],
    ) -> WorkerReport:
        cfg, n = self.cfg, max(1, len(self.cameras))
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
            session = _session(cfg, spec, info, rule)
            run = CameraRun(cfg.name, spec.name, self.run_id, self.host, self.pid, session)
            cam = Camera(
                spec, run, self._readers_stop, self.opener, cfg.stall_after_s, self._arrived
            )
            cam.tiles = rule.tile_spec
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


def _session(
    cfg: WorkerConfig, spec: CameraSpec, info: ModelInfo, rule: StationRule
) -> SessionInfo:
    """The session a camera's episodes and coverage belong to: its model, thresholds and
    settings, as recorded for the History page."""
    return recording_session(
        "file" if spec.is_file else "stream",
        spec.name,
        spec.station,
        info,
        cfg.params,
        cfg.episodes,
        rule,
        rule.tile_spec,
        settings().user or None,
        worker=cfg.name,
        camera=spec.name,
        fps=spec.fps,
        motion=asdict(spec.motion),
    )


def _cpu_s() -> float:
    """CPU seconds this process has used (user + system, every thread)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
