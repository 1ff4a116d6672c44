"""Batch detection over uploaded or local images and videos, saved and logged to the store.

One call of :func:`run_batch` is one detection session: every file is processed (a bad file
gets an error row and the rest go on), annotated outputs and the results table are written
under ``Settings.batch_dir/<session>``, and results and violation events land in the store.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from core import store as st
from core.annotate import draw
from core.compliance import FrameVerdict, Role, Verdict, judge
from core.config import ensure_home, settings
from core.detector import DETECTORS, Detector, FrameDetections, InferenceParams
from core.episodes import EpisodeConfig, EpisodeRecorder, RecordingContext
from core.evidence import EvidenceWriter
from core.media import MediaError, VideoWriter, kind_of, open_video, read_image, write_image
from core.reports import write_table_xlsx
from core.stations import StationRule, current_rule
from core.tiling import TileSpec, VideoDetector

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


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
    role: str
    confidence: float
    x1: float
    y1: float
    x2: float
    y2: float

    HEADER = ("file", "frame", "class", "role", "confidence", "x1", "y1", "x2", "y2")

    def values(self) -> tuple:
        return (self.file, self.frame, self.class_name, self.role, round(self.confidence, 4),
                round(self.x1, 1), round(self.y1, 1), round(self.x2, 1), round(self.y2, 1))


@dataclass
class FileResult:
    """The outcome for one input file."""

    name: str
    kind: str  # image | video | unknown
    verdict: FrameVerdict | None = None
    rows: list[TableRow] = field(default_factory=list)
    annotated_path: Path | None = None
    error: str | None = None
    frames: int = 0
    violation_frames: int = 0
    events: int = 0
    inference_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class BatchReport:
    """Everything one batch session produced."""

    session_id: int
    out_dir: Path
    files: list[FileResult]
    table_csv: Path | None = None
    table_xlsx: Path | None = None

    @property
    def rows(self) -> list[TableRow]:
        return [r for f in self.files for r in f.rows]

    def count(self, verdict: Verdict) -> int:
        return sum(1 for f in self.files if f.verdict and f.verdict.verdict is verdict)

    @property
    def failed(self) -> int:
        return sum(1 for f in self.files if not f.ok)

    @property
    def gloved(self) -> int:
        return sum(f.verdict.protected for f in self.files if f.verdict)

    @property
    def bare(self) -> int:
        return sum(f.verdict.violation for f in self.files if f.verdict)


def _safe_name(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name).strip("._") or "file"
    return stem[:120]


def _table_rows(name: str, frame: int, fd: FrameDetections) -> list[TableRow]:
    return [TableRow(name, frame, d.class_name, str(d.role), d.confidence, *d.box)
            for d in fd.detections]


def _result_row(name: str, frame: int, fd: FrameDetections, verdict: FrameVerdict,
                annotated: Path | None) -> st.ResultRow:
    return st.ResultRow(
        source=name, frame=frame, verdict=str(verdict.verdict), protected=verdict.protected,
        violation=verdict.violation, context=verdict.context,
        annotated_path=str(annotated) if annotated else None,
        detections=[st.DetectionRow(d.class_id, d.class_name, str(d.role), d.confidence, d.box,
                                    d.track_id) for d in fd.detections],
    )


class _Runner:
    """State of one batch session while its files are processed."""

    def __init__(self, conn, det: Detector, params: InferenceParams, station: str,
                 session_id: int, out_dir: Path, rule: StationRule, tiles: TileSpec | None):
        self.conn, self.det, self.params = conn, det, params
        self.station, self.session_id, self.out_dir = station, session_id, out_dir
        self.rule = rule
        self.evidence = EvidenceWriter(settings().evidence_dir, det.info.names)
        self.detect = VideoDetector(det, params, tiles)

    def _verdict(self, fd: FrameDetections) -> FrameVerdict:
        """Role counts, judged by the station's rule (a glove offends at a no-gloves station)."""
        verdict = judge((d.class_id for d in fd.detections), self.det.roles)
        if any(self.rule.judge(d, fd.shape) for d in fd.detections):
            verdict = replace(verdict, verdict=Verdict.VIOLATION)
        elif verdict.verdict is Verdict.VIOLATION:  # bare hands allowed (no-gloves station)
            verdict = replace(verdict, verdict=Verdict.COMPLIANT)
        return verdict

    def _context(self, source: str) -> RecordingContext:
        return RecordingContext(station=self.station, session_id=self.session_id, source=source,
                                model_hash=self.det.info.sha256,
                                thresholds=self.params.as_dict())

    def image(self, item: BatchInput) -> FileResult:
        res = FileResult(item.name, "image")
        image = read_image(item.data if item.data is not None else item.path, item.name)
        fd = self.detect(image, track=False)
        verdict = self._verdict(fd)
        out = write_image(self.out_dir / (_safe_name(Path(item.name).stem) + ".jpg"),
                          draw(image, fd))
        res.verdict, res.annotated_path, res.frames = verdict, out, 1
        res.rows = _table_rows(item.name, 0, fd)
        res.inference_ms = fd.inference_ms
        st.add_result(self.conn, self.session_id, _result_row(item.name, 0, fd, verdict, out))
        if verdict.verdict is Verdict.VIOLATION:
            # A photo is a single instant: an episode of zero duration, no minimum time.
            recorder = EpisodeRecorder(self.conn, self._context(item.name), self.rule,
                                       EpisodeConfig(min_duration_s=0), self.evidence,
                                       coverage=False)
            recorder.process(0.0, fd, image, 0)
            recorder.finish()
            res.violation_frames, res.events = 1, recorder.episodes_total
        return res

    def video(self, item: BatchInput, progress: Progress | None, share: tuple[float, float]
              ) -> FileResult:
        res = FileResult(item.name, "video")
        path = item.path
        if path is None:  # uploads: OpenCV decodes from files only
            path = self.out_dir / ("source-" + _safe_name(item.name))
            path.write_bytes(item.data or b"")
        cap, info = open_video(path, item.name)
        out_path = self.out_dir / (_safe_name(Path(item.name).stem) + ".annotated.mp4")
        self.detect.reset()
        # Footage is judged like a live feed: tracked episodes, not per-frame events.
        recorder = EpisodeRecorder(self.conn, self._context(item.name), self.rule,
                                   evidence=self.evidence)
        peak = {"protected": 0, "violation": 0, "context": 0}
        try:
            with VideoWriter(out_path, info.fps, info.width, info.height) as writer:
                frame_no = 0
                while True:
                    ok, frame = cap.read()
                    if not ok or frame is None:
                        break
                    fd = self.detect(frame, track=True)
                    verdict = self._verdict(fd)
                    recorder.process(frame_no / info.fps, fd, frame, frame_no)
                    writer.write(draw(frame, fd))
                    res.rows.extend(_table_rows(item.name, frame_no, fd))
                    res.inference_ms += fd.inference_ms
                    st.add_result(self.conn, self.session_id,
                                  _result_row(item.name, frame_no, fd, verdict, None))
                    for k in peak:
                        peak[k] = max(peak[k], getattr(verdict, k))
                    res.violation_frames += verdict.verdict is Verdict.VIOLATION
                    frame_no += 1
                    if progress and info.frames:
                        lo, span = share
                        progress(lo + span * min(frame_no / info.frames, 1.0),
                                 f"{item.name}: frame {frame_no}/{info.frames}")
        finally:
            cap.release()
            recorder.finish()
        res.frames = frame_no
        if frame_no == 0:
            raise MediaError(f"{item.name}: no frame could be decoded.")
        res.inference_ms /= frame_no
        res.annotated_path = out_path
        res.events = recorder.episodes_total
        if res.violation_frames:
            kind = Verdict.VIOLATION
        elif peak["protected"] or peak["violation"]:
            kind = Verdict.COMPLIANT
        else:
            kind = Verdict.NO_HANDS
        res.verdict = FrameVerdict(kind, peak["protected"], peak["violation"], peak["context"])
        return res


def write_table_csv(path: Path, rows: Iterable[TableRow]) -> Path:
    """Write the results table as CSV."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(TableRow.HEADER)
        w.writerows(r.values() for r in rows)
    return path


def run_batch(inputs: list[BatchInput], weights: Path | str, params: InferenceParams,
              station: str = "default", roles: Mapping[str, Role | str] | None = None,
              progress: Progress | None = None, db_path: Path | None = None,
              tiles: TileSpec | None = None) -> BatchReport:
    """Process ``inputs`` as one session and return what happened to each file.

    ``tiles`` turns on sliced inference for small hands in wide views (default: the
    station's setting). Raises
    :class:`core.detector.ModelError` for unusable weights and ``PermissionError``
    for an unwritable data folder, before anything is stored.
    """
    s = ensure_home()
    station = station.strip() or "default"
    with DETECTORS.acquire(weights, imgsz=params.imgsz, roles=roles) as det:
        conn = st.connect(db_path)
        try:
            rule = current_rule(conn, station)
            tiles = tiles or rule.tile_spec
            sid = st.start_session(conn, st.SessionInfo(
                kind="batch", source=", ".join(i.name for i in inputs)[:500] or "(none)",
                station=station, model_path=str(det.info.path), model_hash=det.info.sha256,
                conf=params.conf, iou=params.iou, imgsz=params.imgsz,
                params={"files": len(inputs), "roles": det.roles.as_dict(),
                        "tiles": tiles.to_text() if tiles else None}))
            out_dir = s.batch_dir / f"session-{sid:06d}"
            out_dir.mkdir(parents=True, exist_ok=True)
            runner = _Runner(conn, det, params, station, sid, out_dir, rule, tiles)
            files: list[FileResult] = []
            n = max(len(inputs), 1)
            for i, item in enumerate(inputs):
                if progress:
                    progress(i / n, f"{item.name} ({i + 1}/{len(inputs)})")
                files.append(_process(runner, item, progress, (i / n, 1 / n)))
            report = BatchReport(sid, out_dir, files)
            report.table_csv = write_table_csv(out_dir / "results.csv", report.rows)
            report.table_xlsx = write_table_xlsx(
                out_dir / "results.xlsx", TableRow.HEADER, (r.values() for r in report.rows),
                title=f"GloveWatch batch session {sid}, station {station}, "
                      f"model {det.info.name}, conf {params.conf}, IoU {params.iou}")
            st.end_session(conn, sid, "finished")
        except BaseException:
            if "sid" in locals():
                st.end_session(conn, sid, "failed")
            raise
        finally:
            conn.close()
    if progress:
        progress(1.0, "done")
    return report


def _process(runner: _Runner, item: BatchInput, progress: Progress | None,
             share: tuple[float, float]) -> FileResult:
    """Process one file; any failure becomes an error result stored with the session."""
    kind = kind_of(item.name)
    try:
        if item.data is not None and len(item.data) == 0:
            raise MediaError(f"{item.name}: the file is empty.")
        if kind == "image":
            return runner.image(item)
        if kind == "video":
            return runner.video(item, progress, share)
        raise MediaError(f"{item.name}: unsupported file type; upload images "
                         "(jpg, png, bmp, webp, tif) or videos (mp4, avi, mov, mkv, webm).")
    except Exception as exc:  # one bad file must not stop the batch
        if isinstance(exc, (MediaError, OSError)):
            msg = str(exc)
            log.warning("batch session %s: %s", runner.session_id, msg)
        else:
            msg = f"{item.name}: could not be processed ({type(exc).__name__}: {exc})"
            log.exception("batch session %s: %s", runner.session_id, msg)
        st.add_result(runner.conn, runner.session_id,
                      st.ResultRow(source=item.name, error=msg))
        return FileResult(item.name, kind or "unknown", error=msg)
