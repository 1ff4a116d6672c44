"""Batch detection over uploaded or local images and videos, saved and logged to the store.

One call of :func:`run_batch` is one detection session: every file is processed (a bad file
gets an error row and the rest go on), judged by the station's rule, annotated outputs and the
results workbook are written under ``Settings.batch_dir/<session>``, and results and violation
episodes land in the store. Videos go through the same tracked-episode logic as a live feed.
"""

from __future__ import annotations

import csv
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.analytics.spreadsheet import safe_text, write_workbook
from core.config import DEFAULT_STATION, DEFAULTS, ensure_home, settings
from core.errors import MediaError
from core.events.episodes import EpisodeConfig
from core.events.evidence import EvidenceWriter
from core.events.recorder import EpisodeRecorder, RecordingContext
from core.events.rules import Judgement, StationRule, Verdict
from core.events.sinks import StoreSink
from core.events.stations import current_rule
from core.media import VideoWriter, kind_of, open_video, read_image, write_image
from core.storage import Store, open_store
from core.storage.sessions import DetectionRow, ResultRow, SessionInfo
from core.text import slug
from core.vision.annotate import draw
from core.vision.detections import FrameDetections
from core.vision.detector import DETECTORS, Detector, InferenceParams
from core.vision.roles import Role
from core.vision.tiling import TileSpec
from core.vision.tracking import VideoDetector

log = logging.getLogger(__name__)
# frames of a video in flight on the OpenVINO runtime: more than live keeps (throughput over
# latency), so inference goes on while a frame is encoded into the annotated video
VIDEO_DEPTH = 4


@dataclass(frozen=True)
class BatchProgress:
    """How far a batch is, with an estimate of the time left."""

    fraction: float
    message: str
    elapsed_s: float
    remaining_s: float | None

    @property
    def text(self) -> str:
        left = "" if self.remaining_s is None else f" · about {_duration(self.remaining_s)} left"
        return f"{self.message}{left}"


Progress = Callable[[BatchProgress], None]


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


@dataclass(frozen=True)
class BatchInput:
    """A file to process: bytes from an upload or a path on disk."""

    name: str
    data: bytes | None = None
    path: Path | None = None

    @classmethod
    def from_path(cls, path: Path) -> BatchInput:
        return cls(name=path.name, path=path)


@dataclass(frozen=True)
class TableRow:
    """One detection, as shown in the results table and exported."""

    file: str
    frame: int
    class_name: str
    role: str  # what the class is (gloved hand, bare hand, context)
    status: str  # what it means at the station (compliant, violating, context)
    confidence: float
    x1: float
    y1: float
    x2: float
    y2: float

    HEADER = (
        "file",
        "frame",
        "class",
        "role",
        "status at station",
        "confidence",
        "x1",
        "y1",
        "x2",
        "y2",
    )

    def values(self) -> tuple[str | int | float, ...]:
        return (
            self.file,
            self.frame,
            self.class_name,
            self.role,
            self.status,
            round(self.confidence, 4),
            round(self.x1, 1),
            round(self.y1, 1),
            round(self.x2, 1),
            round(self.y2, 1),
        )


@dataclass
class FileResult:
    """The outcome for one input file."""

    name: str
    kind: str  # image | video | unknown
    verdict: Verdict | None = None
    compliant: int = 0  # judged hands: in the image, or at most at once in a video frame
    violating: int = 0
    rows: list[TableRow] = field(default_factory=list)
    annotated_path: Path | None = None
    error: str | None = None
    frames: int = 0
    violation_frames: int = 0
    episodes: int = 0
    inference_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def describe(self) -> str:
        """The verdict in one line saying what was counted."""
        if not self.ok or self.verdict is None:
            return f"{self.name}: could not be processed"
        if self.kind == "image":
            return (
                f"{self.name}: {self.verdict} ({self.compliant} compliant, "
                f"{self.violating} violating hand(s))"
            )
        return (
            f"{self.name}: {self.verdict}: {self.episodes} violation episode(s) (a hand "
            f"offending for at least {DEFAULTS.min_duration_s:g} s); "
            f"{self.violation_frames} of {self.frames} frames showed an offending hand; at "
            f"most {self.compliant} compliant and {self.violating} violating hand(s) at "
            "once"
        )


@dataclass
class BatchReport:
    """Everything one batch session produced."""

    session_id: int
    out_dir: Path
    station: str
    rule: str
    model: str
    files: list[FileResult]
    table_csv: Path | None = None
    table_xlsx: Path | None = None

    @property
    def rows(self) -> list[TableRow]:
        return [r for f in self.files for r in f.rows]

    def count(self, verdict: Verdict) -> int:
        return sum(1 for f in self.files if f.verdict is verdict)

    @property
    def failed(self) -> int:
        return sum(1 for f in self.files if not f.ok)

    @property
    def compliant(self) -> int:
        return sum(f.compliant for f in self.files)

    @property
    def violating(self) -> int:
        return sum(f.violating for f in self.files)


def _table_rows(name: str, frame: int, fd: FrameDetections, judged: Judgement) -> list[TableRow]:
    d = fd.detections
    return [
        TableRow(
            name,
            frame,
            str(d.class_name[i]),
            str(d.role[i]),
            str(judged.status[i]),
            float(d.confidence[i]),
            *d.box(i),
        )
        for i in range(len(d))
    ]


def _result_row(
    name: str, frame: int, fd: FrameDetections, judged: Judgement, annotated: Path | None
) -> ResultRow:
    d = fd.detections
    return ResultRow(
        source=name,
        frame=frame,
        verdict=str(judged.verdict),
        protected=d.count(Role.PROTECTED),
        violation=d.count(Role.VIOLATION),
        context=d.count(Role.CONTEXT),
        compliant=judged.compliant,
        violating=judged.violating,
        annotated_path=str(annotated) if annotated else None,
        detections=[
            DetectionRow(
                int(d.class_id[i]),
                str(d.class_name[i]),
                str(d.role[i]),
                float(d.confidence[i]),
                d.box(i),
                int(d.tracker_id[i]) if d.tracker_id is not None and d.tracker_id[i] >= 0 else None,
                str(judged.status[i]),
            )
            for i in range(len(d))
        ],
    )


class _Runner:
    """State of one batch session while its files are processed."""

    def __init__(
        self,
        store: Store,
        det: Detector,
        params: InferenceParams,
        station: str,
        session_id: int,
        out_dir: Path,
        rule: StationRule,
        tiles: TileSpec | None,
    ):
        self.store, self.det, self.params = store, det, params
        self.station, self.session_id, self.out_dir = station, session_id, out_dir
        self.rule = rule
        self.evidence = EvidenceWriter(settings().evidence_dir)
        self.detect = VideoDetector(det, params, tiles)
        self.sink = StoreSink(store)
        self._names: set[str] = set()

    def out_name(self, name: str, suffix: str) -> Path:
        """A unique output path: ``ok.jpg`` and ``ok.png`` must not overwrite each other."""
        stem = slug(Path(name).stem, 100, "file")
        candidate, n = f"{stem}{suffix}", 1
        while candidate in self._names:
            n += 1
            candidate = f"{stem}-{n}{suffix}"
        self._names.add(candidate)
        return self.out_dir / candidate

    def _context(self, source: str) -> RecordingContext:
        return RecordingContext(
            station=self.station,
            session_id=self.session_id,
            source=source,
            model_hash=self.det.info.sha256,
            model_name=self.det.info.name,
            thresholds=self.params.as_dict(),
        )

    def image(self, item: BatchInput) -> FileResult:
        res = FileResult(item.name, "image")
        source = item.data if item.data is not None else item.path
        assert source is not None
        image = read_image(source, item.name)
        fd = self.detect(image, track=False)
        # A photo is a single instant: an episode of zero duration, no minimum time.
        recorder = EpisodeRecorder(
            self._context(item.name),
            self.rule,
            self.sink,
            EpisodeConfig(min_duration_s=0),
            self.evidence,
            coverage=False,
        )
        judged = recorder.process(0.0, fd, image, 0).judgement
        recorder.finish()
        out = write_image(self.out_name(item.name, ".jpg"), draw(image, fd, judged.status))
        res.verdict, res.annotated_path, res.frames = judged.verdict, out, 1
        res.compliant, res.violating = judged.compliant, judged.violating
        res.rows = _table_rows(item.name, 0, fd, judged)
        res.inference_ms = fd.inference_ms
        res.violation_frames = int(judged.verdict is Verdict.VIOLATION)
        res.episodes = recorder.episodes_total
        self.store.sessions.add_result(self.session_id, _result_row(item.name, 0, fd, judged, out))
        return res

    def video(self, item: BatchInput, tick: Callable[[float, str], None]) -> FileResult:
        res = FileResult(item.name, "video")
        path = item.path
        if path is None:  # uploads: OpenCV decodes from files only
            path = self.out_name("source-" + item.name, Path(item.name).suffix.lower())
            path.write_bytes(item.data or b"")
        cap, info = open_video(path, item.name)
        out_path = self.out_name(item.name, ".annotated.mp4")
        self.detect.reset()
        recorder = EpisodeRecorder(
            self._context(item.name), self.rule, self.sink, evidence=self.evidence
        )
        frame_no = 0
        try:
            with (
                VideoWriter(out_path, info.fps, info.width, info.height) as video,
                _EncodingThread(video) as writer,
            ):
                # frames in flight on the detector while earlier ones are judged and written
                frames = enumerate(_read_frames(cap))
                for index, frame, fd in self.detect.stream(frames, depth=VIDEO_DEPTH):
                    frame_no = index
                    judged = recorder.process(frame_no / info.fps, fd, frame, frame_no).judgement
                    writer.write(draw(frame, fd, judged.status))
                    res.rows.extend(_table_rows(item.name, frame_no, fd, judged))
                    res.inference_ms += fd.inference_ms
                    self.store.sessions.add_result(
                        self.session_id, _result_row(item.name, frame_no, fd, judged, None)
                    )
                    res.compliant = max(res.compliant, judged.compliant)
                    res.violating = max(res.violating, judged.violating)
                    res.violation_frames += judged.verdict is Verdict.VIOLATION
                    frame_no += 1
                    if info.frames:
                        tick(
                            min(frame_no / info.frames, 1.0),
                            f"{item.name}: frame {frame_no} of {info.frames}",
                        )
        finally:
            cap.release()
            recorder.finish()
        res.frames = frame_no
        if frame_no == 0:
            raise MediaError(f"{item.name}: no frame could be decoded.")
        res.inference_ms /= frame_no
        res.annotated_path = out_path
        res.episodes = recorder.episodes_total
        if res.episodes or res.violation_frames:
            res.verdict = Verdict.VIOLATION
        elif res.compliant:
            res.verdict = Verdict.COMPLIANT
        else:
            res.verdict = Verdict.NO_HANDS
        return res


def write_table_csv(path: Path, rows: Iterable[TableRow]) -> Path:
    """Write the results table as CSV (text that looks like a formula made inert)."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(TableRow.HEADER)
        w.writerows([safe_text(v) if isinstance(v, str) else v for v in r.values()] for r in rows)
    return path


def write_results_xlsx(path: Path, report: BatchReport, params: InferenceParams) -> Path:
    """The session workbook: summary, a verdict per file, and every detection."""
    summary = [
        ("Session", report.session_id),
        ("Station", report.station),
        ("Station rule", report.rule),
        ("Model", report.model),
        ("Confidence / IoU / image size", f"{params.conf} / {params.iou} / {params.imgsz}"),
        ("Files", len(report.files)),
        ("Compliant files", report.count(Verdict.COMPLIANT)),
        ("Files with a violation", report.count(Verdict.VIOLATION)),
        ("Files without hands", report.count(Verdict.NO_HANDS)),
        ("Failed files", report.failed),
        ("Episodes", sum(f.episodes for f in report.files)),
    ]
    verdicts = [
        (
            f.name,
            f.kind,
            str(f.verdict) if f.verdict else "error",
            f.compliant,
            f.violating,
            f.frames,
            f.violation_frames,
            f.episodes,
            f.describe() if f.ok else f.error or "",
        )
        for f in report.files
    ]
    return write_workbook(
        path,
        [
            (
                "Summary",
                f"GloveWatch batch session {report.session_id}",
                ("item", "value"),
                summary,
            ),
            (
                "Verdicts",
                "One verdict per file, judged by the station rule",
                (
                    "file",
                    "kind",
                    "verdict",
                    "compliant hands",
                    "violating hands",
                    "frames",
                    "frames with a violation",
                    "episodes",
                    "what was counted",
                ),
                verdicts,
            ),
            ("Detections", "Every detection", TableRow.HEADER, (r.values() for r in report.rows)),
        ],
    )


def run_batch(
    inputs: list[BatchInput],
    weights: Path | str,
    params: InferenceParams,
    station: str = DEFAULT_STATION,
    backend: str = DEFAULTS.backend,
    roles: Mapping[str, Role | str] | None = None,
    progress: Progress | None = None,
    store: Store | None = None,
    tiles: TileSpec | None = None,
    user: str | None = None,
) -> BatchReport:
    """Process ``inputs`` as one session and return what happened to each file.

    ``tiles`` turns on sliced inference for small hands in wide views (default: the
    station's setting). Raises :class:`~core.errors.ModelError` for unusable weights and
    :class:`~core.errors.DataFolderError` for an unwritable data folder, before anything is
    stored.
    """
    s = ensure_home()
    station = station.strip() or DEFAULT_STATION
    store = store or open_store()
    started = time.monotonic()
    n = max(len(inputs), 1)

    def tick_for(i: int) -> Callable[[float, str], None]:
        def tick(part: float, message: str) -> None:
            if progress is None:
                return
            done = (i + part) / n
            elapsed = time.monotonic() - started
            left = elapsed / done * (1 - done) if done > 0.02 else None
            progress(BatchProgress(min(done, 1.0), message, elapsed, left))

        return tick

    with DETECTORS.acquire(weights, backend=backend, imgsz=params.imgsz, roles=roles) as det:
        rule = current_rule(store, station)
        tiles = tiles or rule.tile_spec
        sid = store.sessions.start(
            SessionInfo(
                kind="batch",
                source=", ".join(i.name for i in inputs)[:500] or "(none)",
                station=station,
                model_path=det.info.name,
                model_hash=det.info.sha256,
                conf=params.conf,
                iou=params.iou,
                imgsz=params.imgsz,
                started_by=user,
                params={
                    "files": len(inputs),
                    "roles": det.roles.as_dict(),
                    "backend": backend,
                    "tiles": tiles.to_text() if tiles else None,
                    "rule_version": rule.version,
                },
            )
        )
        try:
            out_dir = s.batch_dir / f"session-{sid:06d}"
            out_dir.mkdir(parents=True, exist_ok=True)
            runner = _Runner(store, det, params, station, sid, out_dir, rule, tiles)
            files: list[FileResult] = []
            for i, item in enumerate(inputs):
                tick_for(i)(0.0, f"{item.name} ({i + 1} of {len(inputs)})")
                files.append(_process(runner, item, tick_for(i)))
            report = BatchReport(sid, out_dir, station, rule.describe(), det.info.name, files)
            report.table_csv = write_table_csv(out_dir / "results.csv", report.rows)
            report.table_xlsx = write_results_xlsx(out_dir / "results.xlsx", report, params)
            store.sessions.end(sid, "finished")
        except BaseException:
            store.sessions.end(sid, "failed")
            raise
    if progress:
        progress(BatchProgress(1.0, "done", time.monotonic() - started, 0.0))
    return report


class _EncodingThread:
    """Encodes the annotated video on its own thread, at most 8 frames waiting (H.264 costs
    as much as inference per frame on this CPU; here it overlaps the detection loop)."""

    def __init__(self, video: VideoWriter):
        self._video = video
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=8)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="gw-encode")

    def __enter__(self) -> _EncodingThread:
        self._thread.start()
        return self

    def write(self, frame: np.ndarray) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(frame)

    def _run(self) -> None:
        while (frame := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._video.write(frame)
                except Exception as exc:  # raised in the detection loop at the next frame
                    self._error = exc

    def __exit__(self, *exc: object) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None and exc[0] is None:
            raise self._error


def _read_frames(cap: Any) -> Iterator[np.ndarray]:
    """The frames of an open video until the first it cannot decode."""
    while True:
        ok, frame = cap.read()
        if not ok or frame is None:
            return
        yield frame


def _process(runner: _Runner, item: BatchInput, tick: Callable[[float, str], None]) -> FileResult:
    """Process one file; any failure becomes an error result stored with the session."""
    kind = kind_of(item.name)
    try:
        if item.data is not None and len(item.data) == 0:
            raise MediaError(f"{item.name}: the file is empty.")
        if kind == "image":
            return runner.image(item)
        if kind == "video":
            return runner.video(item, tick)
        raise MediaError(
            f"{item.name}: unsupported file type; upload images "
            "(jpg, png, bmp, webp, tif) or videos (mp4, avi, mov, mkv, webm)."
        )
    except Exception as exc:  # one bad file must not stop the batch
        if isinstance(exc, (MediaError, OSError)):
            msg = str(exc)
            log.warning("batch session %s: %s", runner.session_id, msg)
        else:
            msg = f"{item.name}: could not be processed ({type(exc).__name__})"
            log.exception("batch session %s: %s", runner.session_id, msg)
        runner.store.sessions.add_result(runner.session_id, ResultRow(source=item.name, error=msg))
        return FileResult(item.name, kind or "unknown", error=msg)
