"""One schema per message type: what the ingester accepts from a (verified) worker.

A signature says who sent a message, not that it is sane. Each body is checked field by field
before anything is written: known keys only, strings within their length, timestamps in the
store's format and within a window of the ingester's clock, numbers finite and non-negative
within their range, enums among their values, episode keys and sessions belonging to the
sending worker, and evidence named by a reference inside the evidence store (never a path).
A failing message raises :class:`Refused` with the reason, which goes to the dead-letter
table.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from core.comms import messages as m
from core.events.sinks import EpisodeEvent
from core.storage.coverage import CoverageRow
from core.storage.events import EventRow
from core.storage.fleet import CameraRow, WorkerRow
from core.storage.sessions import SessionInfo

_TS = "%Y-%m-%d %H:%M:%S"
_TOKEN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
# what EvidenceWriter names: <day>/<slug>.jpg (letters, digits, _ . -), no folder above it
EVIDENCE_REF = re.compile(r"\d{4}-\d{2}-\d{2}/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}\.(?:jpg|png)")
SEVERITIES = ("warning", "critical")
KINDS = ("new", "update", "end")
SESSION_KINDS = ("batch", "live", "stream", "file")
WORKER_STATES = ("online", "offline", "stopped")
CAMERA_STATES = ("connecting", "live", "stalled", "disconnected", "stopped")
NAME, TEXT, PATH = 100, 500, 1024  # string limits: names, free text, sources and URLs
MAX_ROWS, MAX_CAMERAS, MAX_JSON = 7200, 256, 16384


class Refused(ValueError):
    """A message that is not applied; ``str()`` is the reason."""


@dataclass(frozen=True)
class Window:
    """The timestamps accepted, relative to the ingester's clock."""

    now: datetime
    past: timedelta = timedelta(days=90)
    future: timedelta = timedelta(days=1)


def _text(v: Any, what: str, limit: int, optional: bool = False) -> Any:
    if v is None and optional:
        return None
    if not isinstance(v, str) or not v or len(v) > limit:
        raise Refused(f"{what} must be text of 1-{limit} characters")
    if "\x00" in v:
        raise Refused(f"{what} holds a NUL character")
    return v


def _number(v: Any, what: str, hi: float, optional: bool = False) -> Any:
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise Refused(f"{what} must be a finite number")
    if not 0 <= v <= hi:
        raise Refused(f"{what} must be between 0 and {hi:g}")
    return float(v)


def _integer(v: Any, what: str, hi: int = 2**53, optional: bool = False, lo: int = 0) -> Any:
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise Refused(f"{what} must be a whole number between {lo} and {hi}")
    return v


def _enum(v: Any, what: str, allowed: tuple[str, ...]) -> str:
    if v not in allowed:
        raise Refused(f"{what} must be one of {', '.join(allowed)}")
    return str(v)


def _time(v: Any, what: str, window: Window, optional: bool = False) -> Any:
    if v is None and optional:
        return None
    try:
        at = datetime.strptime(v, _TS) if isinstance(v, str) and len(v) == 19 else None
    except ValueError:
        at = None
    if at is None:
        raise Refused(f"{what} is not a time (YYYY-MM-DD HH:MM:SS)")
    if not window.now - window.past <= at <= window.now + window.future:
        raise Refused(f"{what} {v} is too far from the ingester's clock")
    return v


def _json(v: Any, what: str, limit: int = MAX_JSON) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise Refused(f"{what} must be an object")
    try:
        size = len(json.dumps(v, allow_nan=False))
    except (TypeError, ValueError):
        raise Refused(f"{what} holds values that are not plain finite JSON") from None
    if size > limit:
        raise Refused(f"{what} is over {limit} bytes")
    return v


def _fields(d: Any, cls: type, what: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise Refused(f"{what} must be an object")
    extra = set(d) - {f.name for f in fields(cls)}
    if extra:
        raise Refused(f"{what} has unknown fields: {', '.join(sorted(map(str, extra))[:5])}")
    return d


def _session(d: Any) -> SessionInfo:
    d = _fields(d, SessionInfo, "run.session")
    return SessionInfo(
        _enum(d.get("kind"), "session kind", SESSION_KINDS),
        _text(d.get("source"), "session source", PATH),
        _text(d.get("station"), "station", NAME),
        _text(d.get("model_path"), "model path", PATH),
        _text(d.get("model_hash"), "model hash", 128),
        _number(d.get("conf"), "conf", 1.0),
        _number(d.get("iou"), "iou", 1.0),
        _integer(d.get("imgsz"), "imgsz", 16384),
        _json(d.get("params", {}), "session params"),
        _text(d.get("started_by"), "started_by", NAME, optional=True),
    )


def _run(d: Any, worker: str) -> m.CameraRun:
    if not isinstance(d, dict) or set(d) != {"worker", "camera", "run", "host", "pid", "session"}:
        raise Refused("run must say worker, camera, run, host, pid and session")
    if d["worker"] != worker:
        raise Refused(f"the message names worker {str(d['worker'])[:64]!r}, not {worker!r}")
    if not isinstance(d["run"], str) or not _TOKEN.fullmatch(d["run"]):
        raise Refused("the run token must be 1-64 letters, digits or _ . : -")
    return m.CameraRun(
        worker,
        _text(d["camera"], "camera", 80),
        d["run"],
        _text(d["host"], "host", 255),
        _integer(d["pid"], "pid", 2**31),
        _session(d["session"]),
    )


def evidence_ref(v: Any, what: str) -> str | None:
    """An evidence reference (``<day>/<name>.jpg`` inside the evidence store), or None."""
    if v is None:
        return None
    if not isinstance(v, str) or not EVIDENCE_REF.fullmatch(v) or ".." in v:
        raise Refused(f"{what} must name a file of the evidence store (<day>/<name>.jpg)")
    return v


def _event_row(d: Any, window: Window) -> EventRow:
    d = _fields(d, EventRow, "episode row")
    started = _time(d.get("started_at"), "started_at", window)
    ended = _time(d.get("ended_at"), "ended_at", window, optional=True)
    if ended is not None and ended < started:
        raise Refused("ended_at is before started_at")
    return EventRow(
        station=_text(d.get("station"), "station", NAME),
        started_at=started,
        ended_at=ended,
        duration_s=_number(d.get("duration_s", 0.0), "duration_s", 7 * 86400),
        source=_text(d.get("source"), "source", PATH, optional=True),
        frame=_integer(d.get("frame"), "frame", optional=True),
        class_name=_text(d.get("class_name"), "class_name", NAME, optional=True),
        peak_conf=_number(d.get("peak_conf"), "peak_conf", 1.0, optional=True),
        severity=_enum(d.get("severity", "warning"), "severity", SEVERITIES),
        evidence_path=evidence_ref(d.get("evidence_path"), "evidence_path"),
        crop_path=evidence_ref(d.get("crop_path"), "crop_path"),
        model_hash=_text(d.get("model_hash"), "model_hash", 128, optional=True),
        model_name=_text(d.get("model_name"), "model_name", PATH, optional=True),
        track_id=_integer(d.get("track_id"), "track_id", optional=True, lo=-1),  # -1: none
        zone=_text(d.get("zone"), "zone", NAME, optional=True),
        rule_version=_integer(d.get("rule_version"), "rule_version", optional=True),
        reason=_text(d.get("reason"), "reason", TEXT, optional=True),
        thresholds=_json(d.get("thresholds", {}), "thresholds", 4096),
        state=_enum(d.get("state", "closed"), "state", ("open", "closed")),
    )


def episode(msg: m.Message, window: Window) -> EpisodeEvent:
    """The checked episode event of an episode message."""
    b = _fields_of(msg.body, {"kind", "key", "row"}, "episode")
    key = b["key"]
    if not isinstance(key, str) or len(key) > 256 or not key.startswith(msg.run.key_prefix + ":"):
        raise Refused("the episode key does not belong to the message's camera run")
    row = _event_row(b["row"], window)
    if row.station != msg.run.session.station:
        raise Refused("the episode's station is not its session's")
    return EpisodeEvent(_enum(b["kind"], "episode kind", KINDS), key, row)


def coverage(msg: m.Message, window: Window) -> tuple[str, list[CoverageRow]]:
    """The checked station and rows of a coverage message."""
    b = _fields_of(msg.body, {"station", "rows"}, "coverage")
    rows = b["rows"]
    if not isinstance(rows, list) or not 0 < len(rows) <= MAX_ROWS:
        raise Refused(f"coverage must hold 1-{MAX_ROWS} rows")
    out = []
    for r in rows:
        if not isinstance(r, list) or len(r) != 6:
            raise Refused("a coverage row must be [ts, watched_s, hand_s, hands, ok_s, bad_s]")
        out.append(
            CoverageRow(
                _time(r[0], "coverage ts", window),
                _number(r[1], "watched_s", 60.0),
                _number(r[2], "hand_s", 60.0),
                _integer(r[3], "hands", 1000),
                _number(r[4], "compliant_s", 60000.0),
                _number(r[5], "violating_s", 60000.0),
            )
        )
    station = _text(b["station"], "station", NAME)
    if station != msg.run.session.station:
        raise Refused("the coverage's station is not its session's")
    return station, out


def _fields_of(body: Any, keys: set[str], what: str) -> dict[str, Any]:
    if not isinstance(body, dict) or set(body) != keys:
        raise Refused(f"a {what} body must hold exactly {', '.join(sorted(keys))}")
    return body


def message(worker: str, kind: str, body: bytes) -> m.Message:
    """The checked envelope of an episode or coverage message (its body is checked by
    :func:`episode` or :func:`coverage`)."""
    d = _loads(body)
    d = _fields_of(d, {"id", "type", "run", "sent_at", "body"}, "message")
    want = "episode" if kind == "episodes" else "coverage"
    if d["type"] != want:
        raise Refused(f"a {str(d['type'])[:20]!r} message on the {kind} topic")
    if not isinstance(d["id"], str) or not _TOKEN.fullmatch(d["id"]):
        raise Refused("the message id must be 1-64 letters, digits or _ . : -")
    sent_at = d["sent_at"]
    if isinstance(sent_at, bool) or not isinstance(sent_at, int | float):
        raise Refused("sent_at must be a number")
    if not math.isfinite(sent_at):
        raise Refused("sent_at must be finite")
    return m.Message(d["id"], want, _run(d["run"], worker), float(sent_at), d["body"])


def status(worker: str, body: bytes, window: Window) -> m.Status:
    """The checked heartbeat (or last will) of ``worker``."""
    d = _fields_of(_loads(body), {"worker", "cameras", "pid"}, "status")
    w = _fields(d["worker"], WorkerRow, "status worker")
    if w.get("name") != worker:
        raise Refused(f"the status names worker {str(w.get('name'))[:64]!r}, not {worker!r}")
    wide = Window(window.now, timedelta(days=3650), window.future)
    row = WorkerRow(
        worker,
        _enum(w.get("status"), "worker status", WORKER_STATES),
        _text(w.get("host"), "host", 255, optional=True),
        _time(w.get("started_at"), "started_at", wide, optional=True),
        _time(w.get("heartbeat_at"), "heartbeat_at", wide, optional=True),
        _json(w.get("details", {}), "worker details"),
    )
    cams = d["cameras"]
    if not isinstance(cams, list) or len(cams) > MAX_CAMERAS:
        raise Refused(f"a status lists at most {MAX_CAMERAS} cameras")
    return m.Status(
        row, tuple(_camera(c, worker, wide) for c in cams), _integer(d["pid"], "pid", 2**31)
    )


def _camera(d: Any, worker: str, window: Window) -> CameraRow:
    c = _fields(d, CameraRow, "camera")
    if c.get("worker") not in (None, worker):
        raise Refused(f"worker {worker!r} reports a camera of another worker")
    return CameraRow(
        _text(c.get("name"), "camera name", 80),
        _text(c.get("station"), "station", NAME),
        _enum(c.get("status"), "camera status", CAMERA_STATES),
        worker,
        _text(c.get("source"), "camera source", PATH, optional=True),
        _number(c.get("fps", 0.0), "fps", 1000.0),
        _integer(c.get("analysed", 0), "analysed"),
        _integer(c.get("skipped", 0), "skipped"),
        _time(c.get("last_frame_at"), "last_frame_at", window, optional=True),
        _time(c.get("heartbeat_at"), "heartbeat_at", window, optional=True),
        _text(_clip(c.get("message")), "camera message", TEXT, optional=True),
    )


def _clip(v: Any) -> Any:
    """A camera's message is free text from its source (an OpenCV error, say): a long one
    is cut rather than costing the whole heartbeat."""
    return v[: TEXT - 1] + "…" if isinstance(v, str) and len(v) > TEXT else v


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refused("the body is not JSON") from None
