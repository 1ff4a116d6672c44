"""Violation episodes (``events``): insert, refresh, close, list, review with its audit trail."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, false, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from core.storage import schema as t
from core.storage.database import Database, new_id, now
from core.storage.filters import HistoryFilter, episode_conditions

_TS = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class EventRow:
    """A violation episode to store (an episode of a video/stream, or one photo)."""

    station: str
    started_at: str
    ended_at: str | None = None
    duration_s: float = 0.0
    session_id: int | None = None
    source: str | None = None
    frame: int | None = None
    class_name: str | None = None
    peak_conf: float | None = None
    severity: str = "warning"
    evidence_path: str | None = None
    crop_path: str | None = None
    model_hash: str | None = None
    model_name: str | None = None
    track_id: int | None = None
    zone: str | None = None
    rule_version: int | None = None
    reason: str | None = None
    thresholds: dict[str, Any] = field(default_factory=dict)
    state: str = "closed"
    event_key: str | None = None  # unique per episode: a repeated write changes nothing

    def values(self) -> dict[str, Any]:
        return {
            "station": self.station,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_s": self.duration_s,
            "session_id": self.session_id,
            "source": self.source,
            "frame": self.frame,
            "class_name": self.class_name,
            "peak_conf": self.peak_conf,
            "severity": self.severity,
            "evidence_path": self.evidence_path,
            "crop_path": self.crop_path,
            "model_hash": self.model_hash,
            "model_name": self.model_name,
            "track_id": self.track_id,
            "zone": self.zone,
            "rule_version": self.rule_version,
            "reason": self.reason,
            "thresholds_json": json.dumps(self.thresholds),
            "state": self.state,
            "event_key": self.event_key,
        }


@dataclass(frozen=True)
class OpenRefresh:
    """The latest state of a still-open episode (written about once a second)."""

    event_id: int
    ended_at: str
    duration_s: float
    peak_conf: float
    severity: str
    zone: str | None


@dataclass(frozen=True)
class EpisodeRecord:
    """One stored episode, as listed for review."""

    id: int
    station: str
    started_at: str
    ended_at: str | None
    duration_s: float
    class_name: str | None
    peak_conf: float | None
    severity: str
    state: str
    review: str
    review_comment: str | None
    reviewed_by: str | None
    reviewed_at: str | None
    evidence_path: str | None
    crop_path: str | None
    evidence_removed_at: str | None
    session_id: int | None
    source: str | None
    frame: int | None
    model_hash: str | None
    model_name: str | None
    rule_version: int | None
    zone: str | None
    reason: str | None


@dataclass(frozen=True)
class ReviewEntry:
    """One review decision in an episode's audit trail."""

    event_id: int
    review: str
    comment: str | None
    reviewed_by: str | None
    reviewed_at: str


@dataclass(frozen=True)
class FrameDetection:
    """A stored detection of the frame an episode's evidence shows."""

    role: str
    status: str | None
    box: tuple[float, float, float, float]


_EPISODE_COLS = [t.events.c[name] for name in EpisodeRecord.__dataclass_fields__]

EPISODE_ORDERS = {
    "newest": [t.events.c.started_at.desc()],
    "longest": [t.events.c.duration_s.desc(), t.events.c.started_at.desc()],
    "critical first": [
        (t.events.c.severity == "critical").desc(),
        t.events.c.duration_s.desc(),
        t.events.c.started_at.desc(),
    ],
}


def _episode(row: Any) -> EpisodeRecord:
    return EpisodeRecord(**row._mapping)


def _seconds_between(a: str, b: str) -> float:
    return max(0.0, (datetime.strptime(b, _TS) - datetime.strptime(a, _TS)).total_seconds())


class EventRepo:
    """Episodes and their reviews."""

    def __init__(self, db: Database):
        self.db = db

    def insert(self, row: EventRow) -> int:
        with self.db.write() as c:
            return new_id(c.execute(insert(t.events).values(**row.values())))

    def upsert_by_key(self, row: EventRow) -> int:
        """Insert an episode once per ``event_key``; a second call returns the same id and
        leaves the row as it is (messages that arrive twice)."""
        assert row.event_key
        ins = (postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert)(t.events)
        with self.db.write() as c:
            # ON CONFLICT, not look-then-insert: two writers with the same key (an ingester
            # and a retry, on a shared server) cannot both insert, nor fail on the index.
            created = c.execute(
                ins.values(**row.values())
                .on_conflict_do_nothing(index_elements=["event_key"])
                .returning(t.events.c.id)
            ).first()
            if created:
                return int(created[0])
            return int(
                c.execute(
                    select(t.events.c.id).where(t.events.c.event_key == row.event_key)
                ).scalar_one()
            )

    def id_by_key(self, key: str) -> int | None:
        with self.db.read() as c:
            found = c.execute(select(t.events.c.id).where(t.events.c.event_key == key)).first()
        return int(found[0]) if found else None

    def insert_many(self, rows: Sequence[EventRow]) -> int:
        """Bulk insert (demo data); returns the number written."""
        if rows:
            with self.db.write() as c:
                c.execute(insert(t.events), [r.values() for r in rows])
        return len(rows)

    def refresh_open(self, updates: Sequence[OpenRefresh]) -> None:
        """Write the last-seen time and figures of open episodes."""
        if not updates:
            return
        with self.db.write() as c:
            for u in updates:
                c.execute(
                    update(t.events)
                    .where(t.events.c.id == u.event_id)
                    .values(
                        ended_at=u.ended_at,
                        duration_s=u.duration_s,
                        peak_conf=u.peak_conf,
                        severity=u.severity,
                        zone=u.zone,
                    )
                )

    def close(self, event_id: int, row: EventRow) -> None:
        """Close an open episode with its final figures and evidence."""
        with self.db.write() as c:
            c.execute(
                update(t.events)
                .where(t.events.c.id == event_id)
                .values(
                    ended_at=row.ended_at,
                    duration_s=row.duration_s,
                    class_name=row.class_name,
                    peak_conf=row.peak_conf,
                    severity=row.severity,
                    zone=row.zone,
                    track_id=row.track_id,
                    evidence_path=row.evidence_path,
                    crop_path=row.crop_path,
                    frame=row.frame,
                    reason=row.reason,
                    state="closed",
                )
            )

    def close_orphans(self, dead_sessions: Iterable[int]) -> int:
        """Close episodes left open by dead processes, at the last time they were seen.

        An open episode is an orphan when its session is in ``dead_sessions``, is not
        running, or is missing. Returns how many were closed.
        """
        dead = list(dead_sessions)
        e, s = t.events, t.sessions
        orphan = or_(
            e.c.session_id.is_(None),
            e.c.session_id.in_(dead) if dead else false(),
            ~select(s.c.id).where(s.c.id == e.c.session_id, s.c.status == "running").exists(),
        )
        with self.db.write() as c:
            rows = c.execute(
                select(e.c.id, e.c.started_at, e.c.ended_at).where(e.c.state == "open", orphan)
            ).all()
            for r in rows:
                last = r.ended_at or r.started_at
                c.execute(
                    update(e)
                    .where(e.c.id == r.id)
                    .values(
                        ended_at=last,
                        duration_s=round(_seconds_between(r.started_at, last), 3),
                        state="closed",
                    )
                )
        return len(rows)

    def get(self, event_id: int) -> EpisodeRecord | None:
        with self.db.read() as c:
            row = c.execute(select(*_EPISODE_COLS).where(t.events.c.id == event_id)).first()
        return _episode(row) if row else None

    def matching(
        self, f: HistoryFilter, limit: int = 200, offset: int = 0, order: str = "newest"
    ) -> list[EpisodeRecord]:
        """Episodes matching the filter (dismissed ones included), for review and reports."""
        q = (
            select(*_EPISODE_COLS)
            .where(*episode_conditions(f, t.events))
            .order_by(*EPISODE_ORDERS[order])
            .limit(limit)
            .offset(offset)
        )
        with self.db.read() as c:
            return [_episode(r) for r in c.execute(q)]

    def for_session(self, session_id: int) -> list[EpisodeRecord]:
        """Episodes of one session, oldest first (the Live page's list)."""
        q = (
            select(*_EPISODE_COLS)
            .where(t.events.c.session_id == session_id)
            .order_by(t.events.c.started_at, t.events.c.id)
        )
        with self.db.read() as c:
            return [_episode(r) for r in c.execute(q)]

    def count(self, f: HistoryFilter) -> int:
        q = select(func.count()).select_from(t.events).where(*episode_conditions(f, t.events))
        with self.db.read() as c:
            return int(c.execute(q).scalar_one())

    def classes(self) -> list[str]:
        """Class names episodes were raised for."""
        q = (
            select(t.events.c.class_name)
            .distinct()
            .where(t.events.c.class_name.is_not(None))
            .order_by(t.events.c.class_name)
        )
        with self.db.read() as c:
            return [r[0] for r in c.execute(q)]

    def set_review(
        self, event_id: int, review: str, comment: str | None, reviewed_by: str | None
    ) -> ReviewEntry | None:
        """Record a review decision and keep it in the trail; None if there is no episode."""
        entry = ReviewEntry(event_id, review, comment, reviewed_by, now())
        with self.db.write() as c:
            res = c.execute(
                update(t.events)
                .where(t.events.c.id == event_id)
                .values(
                    review=review,
                    review_comment=comment,
                    reviewed_by=reviewed_by,
                    reviewed_at=entry.reviewed_at if review != "unreviewed" else None,
                )
            )
            if res.rowcount == 0:
                return None
            c.execute(
                insert(t.event_reviews).values(
                    event_id=event_id,
                    review=review,
                    comment=comment,
                    reviewed_by=reviewed_by,
                    reviewed_at=entry.reviewed_at,
                )
            )
        return entry

    def review_history(self, event_id: int) -> list[ReviewEntry]:
        """All review decisions of an episode, oldest first."""
        r = t.event_reviews
        q = (
            select(r.c.event_id, r.c.review, r.c.comment, r.c.reviewed_by, r.c.reviewed_at)
            .where(r.c.event_id == event_id)
            .order_by(r.c.id)
        )
        with self.db.read() as c:
            return [ReviewEntry(*row) for row in c.execute(q)]

    def frame_detections(self, ep: EpisodeRecord) -> list[FrameDetection]:
        """Stored detections of the frame an episode's evidence shows (batch sessions)."""
        d, r = t.detections, t.results
        q = (
            select(d.c.role, d.c.status, d.c.x1, d.c.y1, d.c.x2, d.c.y2)
            .join(r, r.c.id == d.c.result_id)
            .where(
                and_(
                    r.c.session_id == ep.session_id,
                    r.c.source.is_not_distinct_from(ep.source),
                    r.c.frame == (ep.frame or 0),
                )
            )
        )
        with self.db.read() as c:
            return [
                FrameDetection(row.role, row.status, (row.x1, row.y1, row.x2, row.y2))
                for row in c.execute(q)
            ]
