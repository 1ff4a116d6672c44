"""The live pipeline: frames in, judged and tracked detections, episodes and drawn frames out.

Parts, each doing one thing:

- :class:`ModelLoader` borrows and warms a detector in the background (streamlit-webrtc kills
  a callback that blocks for 10 s; an export plus load can take that long on a busy CPU).
- :class:`LiveSession` is one recording in the store: the session row, the station's rule,
  detection (full-frame or tiled), the episode recorder and its sink (store + alerts).
- :class:`IdleWatchdog` ends a session when frames stop coming (a closed tab sends no
  "ended" event).
- :class:`LiveStats` holds the counters the page polls (thread-safe).
- :class:`FrameProcessor` ties them together for one stream; its :meth:`process` is the
  whole per-frame path, and :meth:`webrtc_callback` stays tiny, as streamlit-webrtc's samples
  keep theirs.
- :class:`SourceRunner` feeds a processor from a camera URL or a video file
  (:mod:`core.pipeline.sources`).

Nothing here touches Streamlit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.config import DEFAULT_STATION, DEFAULTS, settings
from core.errors import GloveWatchError
from core.events.alerts import Alert, Alerter
from core.events.episodes import EpisodeConfig
from core.events.evidence import EvidenceWriter
from core.events.recorder import EpisodeRecorder, RecordingContext, recording_session
from core.events.rules import Judgement, StationRule, draw_zones
from core.events.sinks import AlertingSink, StoreSink
from core.events.stations import current_rule
from core.media import open_video
from core.pipeline.sources import (
    URL_SCHEMES,
    Frame,
    FrameReader,
    LatestFrame,
    Opener,
    SourceStatus,
    describe_wait,
    is_url,
    shown_source,
)
from core.storage import Store, open_store
from core.storage.events import EpisodeRecord
from core.text import redact_text
from core.vision.annotate import draw
from core.vision.detections import FrameDetections
from core.vision.detector import DETECTORS, Detector, InferenceParams
from core.vision.taps import FrameTap
from core.vision.tiling import TileSpec
from core.vision.tracking import VideoDetector

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveConfig:
    """Everything a live session runs with, chosen before START."""

    weights: Path
    backend: str = DEFAULTS.backend
    params: InferenceParams = field(default_factory=InferenceParams)
    station: str = DEFAULT_STATION
    kind: str = "live"  # live (browser camera) | stream (camera URL) | file (replay)
    source: str = "browser camera"  # as shown and stored (never with a password)
    episodes: EpisodeConfig = field(default_factory=EpisodeConfig)
    blur_evidence: bool = DEFAULTS.blur_evidence
    cooldown_s: float = DEFAULTS.cooldown_s
    webhook_url: str = ""
    webhook_secret: str = ""
    idle_timeout_s: float = DEFAULTS.idle_timeout_s
    tracker: str = "bytetrack.yaml"
    tiles: TileSpec | None = None  # None: the station's setting
    user: str | None = None  # who started it
    store_url: str | None = None  # None: the configured store
    evidence_dir: Path | None = None  # None: the configured one
    int8: bool = True  # OpenVINO: its INT8 build when one passed the accuracy gate
    # opens a tap on the judged frames from (the session's store, the model's name), e.g.
    # core.training.site.SiteTap, which samples frames for the station's site data set
    tap: Callable[[Store, str], FrameTap] | None = None


@dataclass(frozen=True)
class LiveSnapshot:
    """Counters of a live session at one moment, for the page."""

    status: str
    message: str
    session_id: int | None
    frames: int
    dropped: int
    compliant: int  # hands compliant with the station rule in the newest frame
    violating: int
    compliance: float | None  # compliant share of judged hand-seconds this session
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
        self._values: dict[str, Any] = dict(
            status="idle",
            message="Press Start to begin.",
            session_id=None,
            frames=0,
            dropped=0,
            compliant=0,
            violating=0,
            compliance=None,
            latency_ms=0.0,
            episodes=0,
            open_episodes=0,
        )

    def update(self, **values: Any) -> None:
        with self._lock:
            self._values.update(values)

    def frame_done(self, **values: Any) -> None:
        """Record one processed frame (for fps) plus its counters."""
        with self._lock:
            self._times.append(time.monotonic())
            self._values["frames"] += 1
            self._values.update(values)

    def add_dropped(self, n: int) -> None:
        with self._lock:
            self._values["dropped"] += n

    @property
    def frames(self) -> int:
        with self._lock:
            return int(self._values["frames"])

    def snapshot(self, alerts: tuple[Alert, ...] = ()) -> LiveSnapshot:
        with self._lock:
            times = list(self._times)
            values = dict(self._values)
        recent = [t for t in times if time.monotonic() - t < 5.0]
        fps = (
            (len(recent) - 1) / (recent[-1] - recent[0])
            if len(recent) > 1 and recent[-1] > recent[0]
            else 0.0
        )
        return LiveSnapshot(fps=round(fps, 1), alerts=alerts, **values)


class ModelLoader:
    """Borrows and warms a detector off the frame path; remembers why it failed."""

    def __init__(self, cfg: LiveConfig, on_status: Any):
        self.cfg, self._on_status = cfg, on_status
        self._lock = threading.Lock()
        self._stack: ExitStack | None = None
        self.detector: Detector | None = None
        self.failed: str | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Load in the background (no-op while loaded, loading or failed)."""
        with self._lock:
            if (
                self.detector is not None
                or self.failed
                or (self._thread is not None and self._thread.is_alive())
            ):
                return
            self._on_status("loading", "Loading the model ...")
            self._thread = threading.Thread(
                target=self._load, daemon=True, name="glovewatch-model-load"
            )
            self._thread.start()

    def wait(self) -> bool:
        """Block until loading ends; True when a detector is ready."""
        thread = self._thread
        if thread is not None:
            thread.join()
        return self.detector is not None

    def _load(self) -> None:
        cfg = self.cfg
        stack = ExitStack()
        try:
            det = stack.enter_context(
                DETECTORS.acquire(cfg.weights, cfg.backend, cfg.params.imgsz, int8=cfg.int8)
            )
            # The first track() call loads the tracker and compiles kernels (seconds): do it
            # now, not on the first real frame.
            det.detect(np.zeros((64, 64, 3), np.uint8), cfg.params, track=True, tracker=cfg.tracker)
            det.reset_tracker()
        except Exception as exc:  # ModelError, or e.g. a runtime missing for the backend
            stack.close()
            if not isinstance(exc, (GloveWatchError, OSError)):
                log.exception("model load failed")
            self.failed = (
                str(exc)
                if isinstance(exc, GloveWatchError)
                else f"{type(exc).__name__}: {redact_text(str(exc))[:200]}"
            )
            self._on_status("failed", f"The model could not be used: {self.failed}")
            return
        with self._lock:
            self._stack, self.detector = stack, det

    def release(self) -> None:
        """Give the detector back to the pool."""
        with self._lock:
            if self._stack is not None:
                self._stack.close()
            self._stack, self.detector = None, None


class LiveSession:
    """One live recording in the store (session row, rule, detection, recorder, sink)."""

    def __init__(self, cfg: LiveConfig, det: Detector, alerter: Alerter):
        info = det.info
        self.store: Store = open_store(cfg.store_url)
        self.rule: StationRule = current_rule(self.store, cfg.station)
        tiles = cfg.tiles or self.rule.tile_spec
        self.video = VideoDetector(det, cfg.params, tiles, cfg.tracker)
        self.video.reset()
        self.id = self.store.sessions.start(
            recording_session(
                cfg.kind,
                cfg.source,
                cfg.station,
                info,
                cfg.params,
                cfg.episodes,
                self.rule,
                tiles,
                cfg.user,
                tracker=cfg.tracker,
            )
        )
        ctx = RecordingContext(
            station=cfg.station,
            session_id=self.id,
            source=cfg.source,
            model_hash=info.sha256,
            model_name=info.name,
            thresholds=cfg.params.as_dict(),
            started=datetime.now(),
        )
        self.sink = AlertingSink(StoreSink(self.store), alerter)
        self.recorder = EpisodeRecorder(
            ctx,
            self.rule,
            self.sink,
            cfg.episodes,
            EvidenceWriter(cfg.evidence_dir or settings().evidence_dir, blur=cfg.blur_evidence),
        )
        self.tap = cfg.tap(self.store, info.name) if cfg.tap is not None else None
        self.t0 = time.monotonic()
        self.last_frame = self.t0
        self._last_beat = self.t0

    def process(
        self, image: np.ndarray, t: float | None, frame_index: int
    ) -> tuple[np.ndarray, Judgement]:
        """Detect, judge, record and draw one frame; returns (drawn frame, judgement)."""
        self.last_frame = time.monotonic()
        fd = self.video(image)
        judged = self.record(image, t, frame_index, fd)
        return self.render(image, fd, judged), judged

    def record(
        self, image: np.ndarray, t: float | None, frame_index: int, fd: FrameDetections
    ) -> Judgement:
        """Judge and record one frame whose detections are ``fd`` (no drawing)."""
        now = time.monotonic()
        t = now - self.t0 if t is None else t
        outcome = self.recorder.process(t, fd, image, frame_index)
        if self.tap is not None:
            self.tap.offer(t, image, fd)
        if now - self._last_beat > 30:
            self._last_beat = now
            self.store.sessions.heartbeat(self.id)
        # idle time counts from the end of the work on a frame: a slow frame is not silence
        self.last_frame = time.monotonic()
        return outcome.judgement

    def render(self, image: np.ndarray, fd: FrameDetections, judged: Judgement) -> np.ndarray:
        """The frame drawn: boxes coloured by the rule, and the station's zones."""
        out = draw(image, fd, judged.status)
        return draw_zones(out, self.rule) if self.rule.zones else out

    def close(self, status: str) -> None:
        """Close episodes, write coverage, end the session row."""
        try:
            self.recorder.finish()
        finally:
            self.store.sessions.end(self.id, status)


class IdleWatchdog:
    """Calls ``on_idle`` once when ``last_frame()`` is older than ``timeout_s``."""

    def __init__(self, timeout_s: float, last_frame: Any, on_idle: Any, name: str):
        self.timeout_s, self._last_frame, self._on_idle = timeout_s, last_frame, on_idle
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True, name=name).start()

    def _run(self) -> None:
        while not self._stop.wait(min(1.0, self.timeout_s / 4)):
            last = self._last_frame()
            if last is None:
                return
            idle = time.monotonic() - last
            if idle > self.timeout_s:
                self._on_idle(idle)
                return

    def cancel(self) -> None:
        self._stop.set()


class FrameProcessor:
    """Processes the frames of one stream; safe to call from one producer thread at a time."""

    def __init__(self, cfg: LiveConfig, alerter: Alerter | None = None):
        self.cfg = cfg
        self.stats = LiveStats()
        self.alerter = alerter or Alerter(cfg.cooldown_s, cfg.webhook_url, cfg.webhook_secret)
        self.loader = ModelLoader(
            cfg, lambda status, message: self.stats.update(status=status, message=message)
        )
        self._lock = threading.RLock()
        self._session: LiveSession | None = None
        self._watchdog: IdleWatchdog | None = None
        self.last_session_id: int | None = None

    def preload(self) -> None:
        """Start loading the model in the background."""
        self.loader.start()

    def start(self) -> bool:
        """Load the model and open the session now, waiting for both (file/URL sources).

        Returns False, with the reason in :attr:`stats`, when the model cannot be used.
        """
        self.loader.start()
        if not self.loader.wait():
            return False
        with self._lock:
            if self._session is None:
                self._open()
            return self._session is not None

    def _open(self) -> None:
        det = self.loader.detector
        assert det is not None
        try:
            session = LiveSession(self.cfg, det, self.alerter)
        except GloveWatchError as exc:
            self.stats.update(status="failed", message=str(exc))
            return
        self._session = session
        self.last_session_id = session.id
        self.stats.update(
            status="running",
            session_id=session.id,
            episodes=0,
            open_episodes=0,
            message=f"Watching {self.cfg.source} at {self.cfg.station} "
            f"({session.rule.describe()}, {det.info.backend}).",
        )
        self._watchdog = IdleWatchdog(
            self.cfg.idle_timeout_s,
            lambda: session.last_frame if self._session else None,
            lambda idle: self.finish(
                "interrupted", f"No frames for {idle:.0f} s: the stream stopped; session ended."
            ),
            f"glovewatch-idle-{session.id}",
        )

    def finish(self, status: str = "finished", message: str = "Stream ended.") -> None:
        """End the session: close episodes, write coverage, give the detector back."""
        with self._lock:
            session, self._session = self._session, None
            if self._watchdog is not None:
                self._watchdog.cancel()
            if session is not None:
                try:
                    session.close(status)
                except Exception:  # the store being locked/full must not keep the detector
                    log.exception("could not close live session %s cleanly", session.id)
            self.loader.release()
            self.alerter.clear()
            # inside the lock: nobody sees an ended session still "running"
            shown = "stopped" if status == "finished" else status
            if self.stats.snapshot().status != "failed":
                self.stats.update(status=shown, message=message, open_episodes=0)

    @property
    def active(self) -> bool:
        return self._session is not None

    def process(
        self, image: np.ndarray, t: float | None = None, captured_at: float | None = None
    ) -> np.ndarray:
        """Detect, judge, record and draw one BGR frame; returns the drawn frame.

        ``t``: media time in seconds (files); default elapsed time since the session began.
        ``captured_at``: ``time.monotonic()`` when the frame was read, for the latency.
        Never raises and never blocks on model loading: until the model is ready, or after a
        failure (shown in :attr:`stats`), the frame comes back undrawn.
        """
        start = time.monotonic()
        with self._lock:
            if self.loader.failed:
                return image
            if self.loader.detector is None:
                self.loader.start()
                self.stats.add_dropped(1)
                return image
            try:
                if self._session is None:
                    self._open()
                    if self._session is None:
                        return image
                session = self._session
                out, judged = session.process(image, t, self.stats.frames)
            except Exception as exc:  # keep the stream alive; show what went wrong
                log.exception("live frame failed")
                self.stats.update(
                    status="error", message=f"Frame failed: {redact_text(str(exc))[:200]}"
                )
                return image
            self._done(session, judged, captured_at if captured_at is not None else start)
            return out

    def _done(self, session: LiveSession, judged: Judgement, captured_at: float) -> None:
        totals = session.recorder.coverage.totals if session.recorder.coverage else None
        self.stats.frame_done(
            compliant=judged.compliant,
            violating=judged.violating,
            compliance=totals.compliance if totals else None,
            latency_ms=round((time.monotonic() - captured_at) * 1000, 1),
            episodes=session.recorder.episodes_total,
            open_episodes=session.recorder.open_episodes,
        )

    def stream(self, frames: Iterable[Frame]) -> Iterator[LiveResult]:
        """Detect, judge and record ``frames`` with several in flight on the detector (the
        OpenVINO runtime path overlaps inference with this thread's tracking, episodes and
        drawing); call :meth:`start` first. Nothing is drawn here: a result draws itself when
        someone looks (:meth:`LiveResult.drawn`). A frame that fails is skipped with the
        reason in :attr:`stats`; the stream ends when the session does."""
        session = self._session
        if session is None:
            return
        for frame, image, fd in session.video.stream((f, f.image) for f in frames):
            with self._lock:
                if self._session is not session:
                    return  # ended meanwhile (stop, idle watchdog)
                try:
                    judged = session.record(image, frame.t, self.stats.frames, fd)
                except Exception as exc:  # keep the stream alive; show what went wrong
                    log.exception("live frame failed")
                    self.stats.update(
                        status="error", message=f"Frame failed: {redact_text(str(exc))[:200]}"
                    )
                    continue
                self._done(session, judged, frame.captured_at)
            yield LiveResult(frame, fd, judged, session)

    def webrtc_callback(self, frame: Any) -> Any:
        """``video_frame_callback`` for streamlit-webrtc: av.VideoFrame in and out."""
        import av

        out = self.process(frame.to_ndarray(format="bgr24"))
        return av.VideoFrame.from_ndarray(out, format="bgr24")

    def snapshot(self) -> LiveSnapshot:
        """Counters plus recent alerts (thread-safe)."""
        return self.stats.snapshot(tuple(self.alerter.recent()))

    def episodes(self, store: Store | None = None) -> list[EpisodeRecord]:
        """Episodes of this processor's latest session (the page lists them)."""
        if self.last_session_id is None:
            return []
        return (store or open_store(self.cfg.store_url)).events.for_session(self.last_session_id)


@dataclass
class LiveResult:
    """One processed frame of :meth:`FrameProcessor.stream`, drawn only when asked."""

    frame: Frame
    detections: FrameDetections
    judgement: Judgement
    session: LiveSession
    _drawn: np.ndarray | None = None

    def drawn(self) -> np.ndarray:
        """The frame with its boxes and zones (drawn once, on first call)."""
        if self._drawn is None:
            self._drawn = self.session.render(self.frame.image, self.detections, self.judgement)
        return self._drawn


class SourceRunner:
    """Feeds a :class:`FrameProcessor` from a camera URL or a video file (two threads).

    Files are replayed in real time (frames the pipeline cannot keep up with are dropped)
    unless ``realtime`` is False, when every frame is processed. A URL that fails or stops
    sending is reopened with back-off; one that never answers is given up after
    ``max_attempts`` tries. A page touches the runner while it is shown; with
    ``viewer_timeout_s`` a runner nobody looks at stops instead of watching for nobody.
    """

    def __init__(
        self,
        source: str,
        processor: FrameProcessor,
        realtime: bool = True,
        max_attempts: int = 3,
        connect_warn_s: float = 5.0,
        viewer_timeout_s: float | None = None,
        opener: Opener = open_video,
    ):
        self.processor = processor
        self.viewer_timeout_s = viewer_timeout_s
        self.connect_warn_s = connect_warn_s
        self.shown = shown_source(source)
        self._url = is_url(source)
        self._lock = threading.Lock()
        self._status, self._message = SourceStatus.CONNECTING, f"Connecting to {self.shown} ..."
        self._since = time.monotonic()
        self._touched = time.monotonic()
        self._latest: LiveResult | None = None
        self._stop = threading.Event()
        self._slot = LatestFrame()
        self.reader = FrameReader(
            source,
            self._slot,
            self._stop,
            self._set,
            processor.stats.add_dropped,
            opener,
            realtime,
            max_attempts,
        )
        self._threads: list[threading.Thread] = []

    def start(self) -> SourceRunner:
        self._threads = [
            threading.Thread(target=self.reader.run, daemon=True, name="gw-read"),
            threading.Thread(target=self._work, daemon=True, name="gw-work"),
        ]
        for th in self._threads:
            th.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop reading, finish the session, wait for both threads."""
        self._stop.set()
        self._slot.wake()
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

    def status(self) -> tuple[SourceStatus, str]:
        """Current status and a message meant for the user."""
        with self._lock:
            status, message = self._status, self._message
        better = describe_wait(
            status,
            self.shown,
            time.monotonic() - self._since,
            time.monotonic() - self.reader.last_read,
            self._url,
            self.connect_warn_s,
        )
        return status, better or message

    def latest(self) -> np.ndarray | None:
        """The newest frame drawn (BGR), or None before the first; drawn here, when a viewer
        asks, not for every frame."""
        with self._lock:
            result = self._latest
        return result.drawn() if result is not None else None

    def _frames(self) -> Iterator[Frame]:
        """Frames from the reader's one-frame slot until stop, end or no viewer: the reader
        replaces a frame nobody took (counted as dropped), so memory stays bounded by the
        slot plus the detector's requests in flight."""
        while True:
            frame: Frame | None = self._slot.take(self._stop)
            if frame is None or self._stop.is_set():
                return
            if (
                self.viewer_timeout_s is not None
                and time.monotonic() - self._touched > self.viewer_timeout_s
            ):
                self._stop.set()
                return
            yield frame

    def _set(self, status: SourceStatus, message: str) -> None:
        with self._lock:
            self._status, self._message = status, message
            self._since = time.monotonic()
        log.info("source %s: %s %s", self.shown, status, message)

    def _work(self) -> None:
        try:
            while not self.reader.connected.wait(0.2):
                if self._stop.is_set() or not any(th.is_alive() for th in self._threads[:1]):
                    return  # the source never opened; no session to record
            self._set(SourceStatus.LOADING, f"{self.shown} answers; loading the model ...")
            if not self.processor.start():
                self._set(SourceStatus.FAILED, self.processor.snapshot().message)
                self._stop.set()
                return
            self.reader.ready.set()
            for result in self.processor.stream(self._frames()):
                with self._lock:
                    self._latest = result
        except GloveWatchError as exc:  # e.g. the runtime failing mid-stream
            self._set(SourceStatus.FAILED, str(exc))
        finally:
            status, message = self.status()
            if self._stop.is_set() and status not in (SourceStatus.FAILED, SourceStatus.ENDED):
                status, message = SourceStatus.STOPPED, f"Stopped watching {self.shown}."
                self._set(status, message)
            self.processor.finish(
                "failed" if status is SourceStatus.FAILED else "finished", message
            )


def valid_camera_url(text: str) -> bool:
    """Whether ``text`` is a camera address the Live page accepts."""
    text = text.strip()
    return text.startswith((*URL_SCHEMES, "env:"))
