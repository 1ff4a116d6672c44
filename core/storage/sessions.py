"""Detection sessions and their per-image / per-frame results with detections."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Insert, case, func, insert, select, update

from core.storage import schema as t
from core.storage.database import Database, new_id, now


@dataclass(frozen=True)
class SessionInfo:
    """What a detection session runs with."""

    kind: str  # batch | live | stream | file
    source: str
    station: str
    model_path: str
    model_hash: str
    conf: float
    iou: float
    imgsz: int
    params: dict[str, Any] = field(default_factory=dict)
    started_by: str | None = None


def insert_session(
    info: SessionInfo, pid: int, host: str, params: dict[str, Any] | None = None
) -> Insert:
    """The statement that records a running session of process ``pid`` on ``host``
    (``params`` replaces ``info.params`` in the record)."""
    stamp = now()
    return insert(t.sessions).values(
        kind=info.kind,
        source=info.source,
        station=info.station,
        model_path=info.model_path,
        model_hash=info.model_hash,
        conf=info.conf,
        iou=info.iou,
        imgsz=info.imgsz,
        params_json=json.dumps(info.params if params is None else params),
        started_at=stamp,
        status="running",
        pid=pid,
        host=host,
        heartbeat_at=stamp,
        started_by=info.started_by,
    )


@dataclass(frozen=True)
class SessionRecord:
    """A stored session."""

    id: int
    kind: str
    source: str
    station: str
    model_path: str
    model_hash: str
    started_at: str
    ended_at: str | None
    status: str
    pid: int | None
    host: str | None
    heartbeat_at: str | None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DetectionRow:
    """One detection of a stored frame."""

    class_id: int
    class_name: str
    role: str
    confidence: float
    box: tuple[float, float, float, float]
    track_id: int | None = None
    status: str | None = None  # compliant | violating | context, by the station rule


@dataclass(frozen=True)
class ResultRow:
    """One image or video frame of a session (``error`` set when it could not be read)."""

    source: str
    frame: int = 0
    verdict: str | None = None
    protected: int = 0  # gloved hands (by class)
    violation: int = 0  # bare hands (by class)
    context: int = 0
    compliant: int = 0  # hands compliant with the station rule
    violating: int = 0  # hands violating it
    annotated_path: str | None = None
    error: str | None = None
    detections: Sequence[DetectionRow] = ()
    ts: str | None = None


@dataclass(frozen=True)
class DaySummary:
    """Figures of one calendar day, for the overview page."""

    day: str
    sessions: int
    images: int
    compliant: int
    violating: int
    events: int
    critical: int

    @property
    def compliance(self) -> float | None:
        """Compliant / all hand detections judged, or None when no hand was seen."""
        hands = self.compliant + self.violating
        return self.compliant / hands if hands else None


def _record(row: Any) -> SessionRecord:
    return SessionRecord(
        row.id,
        row.kind,
        row.source,
        row.station,
        row.model_path,
        row.model_hash,
        row.started_at,
        row.ended_at,
        row.status,
        row.pid,
        row.host,
        row.heartbeat_at,
        json.loads(row.params_json or "{}"),
    )


class SessionRepo:
    """Sessions, results and detections."""

    def __init__(self, db: Database):
        self.db = db

    def start(self, info: SessionInfo) -> int:
        """Record the start of a session by this process; returns its id."""
        with self.db.write() as c:
            return new_id(c.execute(insert_session(info, os.getpid(), socket.gethostname())))

    def end(self, session_id: int, status: str = "finished") -> None:
        with self.db.write() as c:
            c.execute(
                update(t.sessions)
                .where(t.sessions.c.id == session_id)
                .values(ended_at=now(), status=status)
            )

    def heartbeat(self, session_id: int) -> None:
        """This session's process is alive (for crash recovery on other processes)."""
        with self.db.write() as c:
            c.execute(
                update(t.sessions).where(t.sessions.c.id == session_id).values(heartbeat_at=now())
            )

    def running(self) -> list[SessionRecord]:
        """Sessions recorded as running (some may belong to dead processes)."""
        with self.db.read() as c:
            return [
                _record(r)
                for r in c.execute(select(t.sessions).where(t.sessions.c.status == "running"))
            ]

    def get(self, session_id: int) -> SessionRecord | None:
        with self.db.read() as c:
            row = c.execute(select(t.sessions).where(t.sessions.c.id == session_id)).first()
        return _record(row) if row else None

    def add_result(self, session_id: int, row: ResultRow) -> int:
        """Store one image/frame result with its detections in one transaction."""
        with self.db.write() as c:
            res = c.execute(
                insert(t.results).values(
                    session_id=session_id,
                    source=row.source,
                    frame=row.frame,
                    ts=row.ts or now(),
                    verdict=row.verdict,
                    protected=row.protected,
                    violation=row.violation,
                    context=row.context,
                    compliant=row.compliant,
                    violating=row.violating,
                    annotated_path=row.annotated_path,
                    error=row.error,
                )
            )
            rid = new_id(res)
            if row.detections:
                c.execute(
                    insert(t.detections),
                    [
                        {
                            "result_id": rid,
                            "class_id": d.class_id,
                            "class_name": d.class_name,
                            "role": d.role,
                            "confidence": d.confidence,
                            "x1": d.box[0],
                            "y1": d.box[1],
                            "x2": d.box[2],
                            "y2": d.box[3],
                            "track_id": d.track_id,
                            "status": d.status,
                        }
                        for d in row.detections
                    ],
                )
        return rid

    def set_annotated(self, result_id: int, path: str) -> None:
        with self.db.write() as c:
            c.execute(
                update(t.results).where(t.results.c.id == result_id).values(annotated_path=path)
            )

    def day_summary(self, day: str | None = None) -> DaySummary:
        """Sessions, processed frames, judged hands and episodes on ``day`` (default today)."""
        day = day or now()[:10]
        lo, hi = f"{day} 00:00:00", f"{day} 23:59:59"
        s, r, e = t.sessions, t.results, t.events
        with self.db.read() as c:
            n_sessions = c.execute(
                select(func.count()).select_from(s).where(s.c.started_at.between(lo, hi))
            ).scalar_one()
            frames, ok, bad = c.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(r.c.compliant), 0),
                    func.coalesce(func.sum(r.c.violating), 0),
                ).where(r.c.ts.between(lo, hi), r.c.error.is_(None))
            ).one()
            n_events, critical = c.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(case((e.c.severity == "critical", 1), else_=0)), 0),
                ).where(e.c.started_at.between(lo, hi), e.c.review != "dismissed")
            ).one()
        return DaySummary(
            day, int(n_sessions), int(frames), int(ok), int(bad), int(n_events), int(critical)
        )
