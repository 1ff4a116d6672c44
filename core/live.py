"""The live pipeline: frames in, tracked detections, episodes and annotated frames out.

One :class:`FrameProcessor` serves one stream (a viewer's browser camera through
streamlit-webrtc, a camera URL or a replayed video file). It borrows its own detector from
the pool (YOLO objects are not thread-safe), tracks hands, feeds the episode recorder, draws
the frame and publishes counters through a lock-protected :class:`LiveStats` that the page
polls; nothing here touches Streamlit. A session starts with the first frame and ends when
the stream ends or stops sending (closed tab) for ``idle_timeout_s``.

:class:`SourceRunner` reads a camera URL or a file in its own thread and keeps only the newest
frame for the processing thread, so lag never builds up; a dropped camera is reconnected with
a visible status.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

import numpy as np

from core import store as st
from core.alerts import Alert, Alerter
from core.annotate import draw
from core.compliance import Role
from core.config import settings
from core.detector import DETECTORS, Detector, InferenceParams, ModelError
from core.episodes import (EpisodeConfig, EpisodeRecorder, RecordingContext,
                           close_stale_open_events)
from core.evidence import EvidenceWriter
from core.media import MediaError, open_video
from core.stations import DEFAULT_STATION, StationRule, current_rule, draw_zones
from core.tiling import TileSpec, VideoDetector

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveConfig:
    """Everything a live session runs with, chosen before START."""

    weights: Path
    backend: str = "pytorch"
    params: InferenceParams = field(default_factory=InferenceParams)
    station: str = DEFAULT_STATION
    kind: str = "live"  # live (browser camera) | stream (camera URL) | file (replay)
    source: str = "browser camera"
    episodes: EpisodeConfig = field(default_factory=EpisodeConfig)
    blur_evidence: bool = True
    cooldown_s: float = 30.0
    webhook_url: str = ""
    idle_timeout_s: float = 10.0
    tracker: str = "bytetrack.yaml"
    tiles: TileSpec | None = None  # None: the station's setting


@dataclass(frozen=True)
class LiveSnapshot:
    """Counters of a live session at one moment, for the page."""

    status: str
    message: str
    session_id: int | None
    frames: int
    dropped: int
    gloved: int  # in the newest frame
    bare: int
    compliance: float | None  # gloved share of hand-seconds this session
    fps: float
    latency_ms: float
    episodes: int
    open_episodes: int
    alerts: tuple[Alert, ...]


class LiveStats:
    """Thread-safe counters written by the processing thread and read by the page."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._times: deque[float] = deque(maxlen=60)
        self._values = dict(status="idle", message="Press START to begin.", session_id=None,
                            frames=0, dropped=0, gloved=0, bare=0, compliance=None,
                            latency_ms=0.0, episodes=0, open_episodes=0)

    def update(self, **values) -> None:
        with self._lock:
            self._values.update(values)

    def frame_done(self, **values) -> None:
        """Record one processed frame (for fps) plus its counters."""
        with self._lock:
            self._times.append(time.monotonic())
            self._values["frames"] += 1
            self._values.update(values)

    def add_dropped(self, n: int) -> None:
        with self._lock:
            self._values["dropped"] += n

    def snapshot(self, alerts: tuple[Alert, ...] = ()) -> LiveSnapshot:
        with self._lock:
            times = list(self._times)
            values = dict(self._values)
        recent = [t for t in times if time.monotonic() - t < 5.0]
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) \
            if len(recent) > 1 and recent[-1] > recent[0] else 0.0
        return LiveSnapshot(fps=round(fps, 1), alerts=alerts, **values)


class FrameProcessor:
    """Processes the frames of one stream; safe to call from one producer thread at a time.

    The model is loaded off the frame path (:meth:`preload`, or on the first frame in the
    background): streamlit-webrtc kills a callback that blocks for 10 s, and an export plus
    load can take that long on a busy CPU. Until it is ready, frames pass through undrawn.
    """

    def __init__(self, cfg: LiveConfig, alerter: Alerter | None = None):
        self.cfg = cfg
        self.stats = LiveStats()
        self.alerter = alerter or Alerter(cfg.cooldown_s, cfg.webhook_url)
        self._lock = threading.RLock()
        self._stack: ExitStack | None = None
        self._det: Detector | None = None
        self._loader: threading.Thread | None = None
        self._conn = None
        self._recorder: EpisodeRecorder | None = None
        self._rule: StationRule | None = None
        self._video: VideoDetector | None = None
        self._session_id: int | None = None
        self._t0 = 0.0
        self._last_frame = 0.0
        self._failed: str | None = None

    # -- model --------------------------------------------------------------------------------
    def _load(self) -> None:
        """Borrow and warm a detector (seconds); sets :attr:`_failed` if it cannot be used."""
        cfg = self.cfg
        stack = ExitStack()
        try:
            det = stack.enter_context(DETECTORS.acquire(cfg.weights, cfg.backend,
                                                        cfg.params.imgsz))
            # The first track() call loads the tracker and compiles kernels (seconds): do it
            # now, not on the first real frame.
            det.detect(np.zeros((64, 64, 3), np.uint8), cfg.params, track=True,
                       tracker=cfg.tracker)
            det.reset_tracker()
        except (ModelError, OSError) as exc:
            stack.close()
            self._fail(exc)
            return
        except Exception as exc:  # e.g. a runtime missing for the chosen backend
            stack.close()
            log.exception("model load failed")
            self._fail(exc)
            return
        with self._lock:
            self._stack, self._det = stack, det

    def preload(self) -> None:
        """Start loading the model in the background (no-op if loaded or loading)."""
        with self._lock:
            if self._det is not None or self._failed or \
                    (self._loader is not None and self._loader.is_alive()):
                return
            self.stats.update(status="loading", message="Loading the model ...")
            self._loader = threading.Thread(target=self._load, daemon=True,
                                            name="glovewatch-model-load")
            self._loader.start()

    def _fail(self, exc: Exception) -> None:
        self._failed = str(exc)
        self.stats.update(status="failed", message=f"Model could not be used: {exc}")
        log.error("live model failed: %s", exc)

    # -- session lifecycle ------------------------------------------------------------------
    def _open_session(self) -> None:
        cfg, info = self.cfg, self._det.info
        self._conn = st.connect()
        close_stale_open_events(self._conn)
        self._rule = current_rule(self._conn, cfg.station)
        tiles = cfg.tiles or self._rule.tile_spec
        self._video = VideoDetector(self._det, cfg.params, tiles, cfg.tracker)
        self._video.reset()
        params = {"backend": info.backend, "tracker": cfg.tracker,
                  "tiles": tiles.to_text() if tiles else None,
                  "min_duration_s": cfg.episodes.min_duration_s,
                  "grace_s": cfg.episodes.grace_s, "rule_version": self._rule.version}
        self._session_id = st.start_session(self._conn, st.SessionInfo(
            kind=cfg.kind, source=cfg.source, station=cfg.station, model_path=str(info.path),
            model_hash=info.sha256, conf=cfg.params.conf, iou=cfg.params.iou,
            imgsz=cfg.params.imgsz, params=params))
        ctx = RecordingContext(station=cfg.station, session_id=self._session_id,
                               source=cfg.source, model_hash=info.sha256,
                               thresholds=cfg.params.as_dict(), started=datetime.now())
        evidence = EvidenceWriter(settings().evidence_dir, info.names, blur=cfg.blur_evidence)
        self._recorder = EpisodeRecorder(self._conn, ctx, self._rule, cfg.episodes, evidence,
                                         on_open=self.alerter.notify)
        self._t0 = time.monotonic()
        self._last_frame = self._t0
        self.stats.update(status="running", session_id=self._session_id, episodes=0,
                          open_episodes=0, message=f"Watching {cfg.source} at {cfg.station} "
                          f"(rule v{self._rule.version}, {info.backend}).")
        threading.Thread(target=self._watch_idle, daemon=True,
                         name=f"glovewatch-idle-{self._session_id}").start()

    def start(self) -> bool:
        """Load the model and open the session now, waiting for both (file/URL sources).

        Returns False, with the reason in :attr:`stats`, when the model cannot be used.
        """
        self.preload()
        loader = self._loader
        if loader is not None:
            loader.join()
        with self._lock:
            if self._det is not None and self._recorder is None:
                self._open_session()
            return self._recorder is not None

    def _watch_idle(self) -> None:
        # A closed tab sends no "ended" event: end the session when frames stop coming.
        while True:
            time.sleep(min(1.0, self.cfg.idle_timeout_s / 4))
            with self._lock:
                if self._recorder is None:
                    return
                idle = time.monotonic() - self._last_frame
                if idle > self.cfg.idle_timeout_s:
                    self._end("interrupted",
                              f"No frames for {idle:.0f} s: the stream stopped; session ended.")
                    return

    def finish(self, status: str = "finished", message: str = "Stream ended.") -> None:
        """End the session: close episodes, write coverage, give the detector back."""
        with self._lock:
            if self._recorder is not None:
                self._end(status, message)

    def _end(self, status: str, message: str) -> None:
        try:
            self._recorder.finish()
            st.end_session(self._conn, self._session_id, status)
        except Exception:  # the store being locked/full must not leave the detector lent
            log.exception("could not close live session %s cleanly", self._session_id)
        finally:
            self._recorder = None
            self._conn.close()
            self._conn = None
            self._stack.close()
            self._stack, self._det = None, None
        self.stats.update(status=status if status != "finished" else "stopped",
                          message=message, open_episodes=0)

    @property
    def active(self) -> bool:
        return self._recorder is not None

    # -- frames -----------------------------------------------------------------------------
    def process(self, image: np.ndarray, t: float | None = None,
                captured_at: float | None = None) -> np.ndarray:
        """Detect, track, record and draw one BGR frame; returns the annotated frame.

        ``t``: media time in seconds (files); default elapsed time since the session began.
        ``captured_at``: ``time.monotonic()`` when the frame was read, for the latency.
        Never raises and never blocks on model loading: a failure shows in :attr:`stats`
        and the frame comes back undrawn.
        """
        start = time.monotonic()
        with self._lock:
            if self._failed:
                return image
            if self._det is None:
                self.preload()
                self.stats.add_dropped(1)
                return image
            try:
                if self._recorder is None:
                    self._open_session()
                self._last_frame = time.monotonic()
                t = self._last_frame - self._t0 if t is None else t
                fd = self._video(image)
                self._recorder.process(t, fd, image, self.stats.snapshot().frames)
                out = draw(image, fd)
                if self._rule.zones:
                    out = draw_zones(out, self._rule)
            except Exception as exc:  # keep the stream alive; show what went wrong
                log.exception("live frame failed")
                self.stats.update(status="error", message=f"Frame failed: {exc}")
                return image
            totals = self._recorder.coverage.totals
            self.stats.frame_done(
                gloved=sum(d.role is Role.PROTECTED for d in fd.detections),
                bare=sum(d.role is Role.VIOLATION for d in fd.detections),
                compliance=totals.compliance,
                latency_ms=round((time.monotonic() - (captured_at if captured_at is not None
                                                      else start)) * 1000, 1),
                episodes=self._recorder.episodes_total,
                open_episodes=self._recorder.open_episodes)
            return out

    def webrtc_callback(self, frame):
        """``video_frame_callback`` for streamlit-webrtc: av.VideoFrame in and out."""
        import av

        out = self.process(frame.to_ndarray(format="bgr24"))
        return av.VideoFrame.from_ndarray(out, format="bgr24")

    def snapshot(self) -> LiveSnapshot:
        """Counters plus recent alerts (thread-safe)."""
        return self.stats.snapshot(tuple(self.alerter.recent()))


# --- camera URL and file sources ----------------------------------------------------------

class SourceStatus(StrEnum):
    CONNECTING = "connecting"
    RUNNING = "running"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass
class _Slot:
    """The newest frame waiting for the processing thread."""

    image: np.ndarray
    t: float | None
    captured_at: float


def is_url(source: str) -> bool:
    return "://" in source


def redact_url(source: str) -> str:
    """``rtsp://user:secret@host/x`` -> ``rtsp://user:***@host/x`` (for screens and the store)."""
    return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", source)


class SourceRunner:
    """Reads a camera URL or video file in one thread, processes the newest frame in another.

    Files are replayed in real time (frames the pipeline cannot keep up with are dropped)
    unless ``realtime`` is False, when every frame is processed. A URL that fails or stops
    sending is reopened with backoff; one that never answers is given up after
    ``max_attempts`` tries.
    """

    def __init__(self, source: str, processor: FrameProcessor, realtime: bool = True,
                 max_attempts: int = 3, connect_warn_s: float = 5.0,
                 viewer_timeout_s: float | None = None):
        self.source = source
        # A page touches the runner while it is shown; if its tab is closed nobody does, and
        # the runner stops instead of watching a camera for nobody forever.
        self.viewer_timeout_s = viewer_timeout_s
        self._touched = time.monotonic()
        self.processor = processor
        self.realtime = realtime
        self.max_attempts = max_attempts
        self.connect_warn_s = connect_warn_s
        self._url = is_url(source)
        self._cond = threading.Condition()
        self._slot: _Slot | None = None
        self._reading_done = False
        self._stop = threading.Event()
        self._connected = threading.Event()  # the source opened: load the model
        self._ready = threading.Event()  # the model is loaded: reading may begin
        self._status = SourceStatus.CONNECTING
        self._shown = redact_url(source)
        self._message = f"Connecting to {self._shown} ..."
        self._since = time.monotonic()
        self._last_read = time.monotonic()
        self._latest: np.ndarray | None = None
        self._threads: list[threading.Thread] = []

    # -- control ----------------------------------------------------------------------------
    def start(self) -> SourceRunner:
        self._threads = [threading.Thread(target=self._read, daemon=True, name="gw-read"),
                         threading.Thread(target=self._work, daemon=True, name="gw-work")]
        for th in self._threads:
            th.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop reading, finish the session, wait for both threads."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self.join(timeout_s)

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for the threads to end; True when they have."""
        for th in self._threads:
            th.join(timeout_s)
        return not self.alive

    @property
    def alive(self) -> bool:
        return any(th.is_alive() for th in self._threads)

    def touch(self) -> None:
        """A viewer is still looking (see ``viewer_timeout_s``)."""
        self._touched = time.monotonic()

    def _viewer_gone(self) -> bool:
        return self.viewer_timeout_s is not None \
            and time.monotonic() - self._touched > self.viewer_timeout_s

    def status(self) -> tuple[SourceStatus, str]:
        """Current status and a message meant for the user."""
        with self._cond:
            status, message = self._status, self._message
        waited = time.monotonic() - self._since
        if status is SourceStatus.CONNECTING and waited > self.connect_warn_s:
            message = (f"No answer from {self._shown} after {waited:.0f} s. Check the address, "
                       "that the camera is on and reachable from this server.")
        stalled = time.monotonic() - self._last_read
        if status is SourceStatus.RUNNING and self._url and stalled > self.connect_warn_s:
            # OpenCV gives up on a silent stream only after its 30 s read timeout
            message = (f"No frames from {self._shown} for {stalled:.0f} s; waiting, then "
                       "reconnecting.")
        return status, message

    def latest(self) -> np.ndarray | None:
        """The newest annotated frame (BGR), or None before the first."""
        with self._cond:
            return self._latest

    def _set(self, status: SourceStatus, message: str) -> None:
        with self._cond:
            self._status, self._message = status, message
            self._since = time.monotonic()
        log.info("source %s: %s %s", self._shown, status, message)

    # -- threads ----------------------------------------------------------------------------
    def _read(self) -> None:
        failures, ever_connected = 0, False
        try:
            while not self._stop.is_set():
                try:
                    cap, info = open_video(self.source)
                except MediaError as exc:
                    failures += 1
                    if self._url:
                        exc = (f"Camera {self._shown} cannot be reached or sends no video "
                               f"({exc}).")
                    if not self._url or (not ever_connected and failures >= self.max_attempts):
                        self._set(SourceStatus.FAILED, f"{exc} Nothing more will be tried.")
                        return
                    wait = min(2 ** failures, 10)
                    self._set(SourceStatus.RECONNECTING,
                              f"{exc} Retrying in {wait} s (attempt {failures + 1}).")
                    self._stop.wait(wait)
                    continue
                failures, ever_connected = 0, True
                self._connected.set()
                while not self._ready.wait(0.2):
                    if self._stop.is_set():
                        cap.release()
                        return
                self._last_read = time.monotonic()
                self._set(SourceStatus.RUNNING,
                          f"{'Camera' if self._url else 'Replaying'} {self._shown}: "
                          f"{info.width}x{info.height} at {info.fps:.0f} fps.")
                try:
                    ended = self._pump(cap, info.fps)
                finally:
                    cap.release()
                if ended:
                    self._set(SourceStatus.ENDED, f"End of {self._shown}.")
                    return
                if not self._stop.is_set():
                    self._set(SourceStatus.RECONNECTING,
                              f"{self._shown} stopped sending; reconnecting ...")
        finally:
            with self._cond:
                self._reading_done = True
                self._cond.notify_all()

    def _pump(self, cap, fps: float) -> bool:
        """Read frames into the slot; True at the end of a file, False if a camera dropped."""
        start, index = time.monotonic(), 0
        while not self._stop.is_set():
            ok, image = cap.read()
            if not ok or image is None:
                return not self._url
            self._last_read = time.monotonic()
            t = index / fps if not self._url else None
            if self.realtime and not self._url:
                delay = start + index / fps - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
            index += 1
            with self._cond:
                if self._slot is not None:
                    if self.realtime:
                        self.processor.stats.add_dropped(1)
                    else:
                        while self._slot is not None and not self._stop.is_set():
                            self._cond.wait(0.5)
                self._slot = _Slot(image, t, time.monotonic())
                self._cond.notify_all()
        return False

    def _work(self) -> None:
        try:
            while not self._connected.wait(0.2):
                with self._cond:
                    if self._reading_done or self._stop.is_set():
                        return  # the source never opened; no session to record
            if not self.processor.start():
                self._set(SourceStatus.FAILED, self.processor.snapshot().message)
                self._stop.set()
                return
            self._ready.set()
            while True:
                with self._cond:
                    while self._slot is None and not self._reading_done \
                            and not self._stop.is_set():
                        self._cond.wait(0.5)
                    slot, self._slot = self._slot, None
                    self._cond.notify_all()
                if slot is None or self._stop.is_set():
                    break
                if self._viewer_gone():
                    self._stop.set()
                    break
                out = self.processor.process(slot.image, slot.t, slot.captured_at)
                with self._cond:
                    self._latest = out
        finally:
            status, message = self.status()
            if self._stop.is_set() and status not in (SourceStatus.FAILED, SourceStatus.ENDED):
                status, message = SourceStatus.STOPPED, f"Stopped watching {self._shown}."
                self._set(status, message)
            self.processor.finish("failed" if status is SourceStatus.FAILED else "finished",
                                  message)
