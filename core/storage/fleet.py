"""Camera workers and their cameras (status rows), and the messages an ingester applied once.

A worker reports its own row and one row per camera (the Cameras page reads them). An
ingester that writes what workers publish over MQTT records each coverage message's id in
``ingested`` in the same transaction as the coverage itself, so a message delivered twice
adds nothing. Sessions of a worker's camera run are found again by the run's token, so the
ingester and a restarted ingester attach a run's episodes to the same session.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from core.storage import schema as t
from core.storage.coverage import CoverageRow, write_seconds
from core.storage.database import Database, new_id, now
from core.storage.sessions import SessionInfo, insert_session


@dataclass(frozen=True)
class WorkerRow:
    """What a camera worker last said about itself."""

    name: str
    status: str  # online | offline | stopped
    host: str | None = None
    started_at: str | None = None
    heartbeat_at: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CameraRow:
    """What a worker last said about one of its cameras."""

    name: str
    station: str
    status: str  # connecting | live | stalled | disconnected | stopped
    worker: str | None = None
    source: str | None = None
    fps: float = 0.0  # analysed (or motion-skipped) frames per second, recently
    analysed: int = 0  # frames the detector ran on
    skipped: int = 0  # frames motion gating answered with the previous detections
    last_frame_at: str | None = None
    heartbeat_at: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class WorkerKey:
    """A worker's current key, by generation and fingerprint (see core.comms.auth)."""

    name: str
    generation: int
    fingerprint: str
    created_at: str
    revoked_at: str | None = None


@dataclass(frozen=True)
class DeadLetter:
    """A message the ingester refused, and why."""

    topic: str
    reason: str
    worker: str | None = None
    message_id: str | None = None
    excerpt: str | None = None
    at: str | None = None


def _insert(dialect: str, table: Any) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _upsert(
    conn: Connection,
    dialect: str,
    table: Any,
    key: str,
    rows: Sequence[dict[str, Any]],
    owned: bool = False,
) -> None:
    """Insert or update rows by ``key``; ``owned``: only rows of the same ``worker`` are
    updated (a worker cannot take over another worker's camera by naming it)."""
    if not rows:
        return
    ins = _insert(dialect, table)
    cols = [c for c in rows[0] if c != key]
    where = (table.c.worker == ins.excluded.worker) if owned else None
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=[key], set_={c: ins.excluded[c] for c in cols}, where=where
        ),
        list(rows),
    )


class FleetRepo:
    """Workers, cameras, the ingested-message ledger and sessions of worker camera runs."""

    def __init__(self, db: Database):
        self.db = db

    # --- status rows -----------------------------------------------------------------
    def report(self, worker: WorkerRow, cameras: Sequence[CameraRow] = ()) -> None:
        """Write a worker's row and its cameras' rows (one transaction)."""
        w = {
            "name": worker.name,
            "host": worker.host,
            "status": worker.status,
            "started_at": worker.started_at,
            "heartbeat_at": worker.heartbeat_at or now(),
            "details_json": json.dumps(worker.details, default=str),
        }
        with self.db.write() as c:
            _upsert(c, self.db.dialect, t.workers, "name", rows=[w])
            _upsert(
                c,
                self.db.dialect,
                t.cameras,
                "name",
                owned=True,
                rows=[
                    {
                        "name": cam.name,
                        "worker": cam.worker or worker.name,
                        "station": cam.station,
                        "source": cam.source,
                        "status": cam.status,
                        "fps": cam.fps,
                        "analysed": cam.analysed,
                        "skipped": cam.skipped,
                        "last_frame_at": cam.last_frame_at,
                        "heartbeat_at": cam.heartbeat_at or w["heartbeat_at"],
                        "message": cam.message,
                    }
                    for cam in cameras
                ],
            )

    def workers(self) -> list[WorkerRow]:
        w = t.workers.c
        with self.db.read() as c:
            rows = c.execute(
                select(
                    w.name, w.status, w.host, w.started_at, w.heartbeat_at, w.details_json
                ).order_by(w.name)
            ).all()
        return [
            WorkerRow(
                r.name,
                r.status,
                r.host,
                r.started_at,
                r.heartbeat_at,
                json.loads(r.details_json or "{}"),
            )
            for r in rows
        ]

    def cameras(self) -> list[CameraRow]:
        k = t.cameras.c
        with self.db.read() as c:
            rows = c.execute(
                select(
                    k.name,
                    k.station,
                    k.status,
                    k.worker,
                    k.source,
                    k.fps,
                    k.analysed,
                    k.skipped,
                    k.last_frame_at,
                    k.heartbeat_at,
                    k.message,
                ).order_by(k.worker, k.name)
            ).all()
        return [CameraRow(*r) for r in rows]

    def forget_worker(self, name: str) -> None:
        """Remove a worker and its cameras from the status tables (a retired machine)."""
        with self.db.write() as c:
            c.execute(delete(t.cameras).where(t.cameras.c.worker == name))
            c.execute(delete(t.workers).where(t.workers.c.name == name))

    # --- messages applied once -------------------------------------------------------
    def coverage_once(
        self, message_id: str, station: str, session_id: int | None, rows: Sequence[CoverageRow]
    ) -> bool:
        """Write a coverage message unless its id was applied before; the id and the rows
        are committed together. Returns False for a message seen before (nothing written)."""
        with self.db.write() as c:
            fresh = c.execute(
                _insert(self.db.dialect, t.ingested)
                .values(id=message_id, at=now())
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(t.ingested.c.id)
            ).first()
            if fresh is None:
                return False
            if rows and session_id is not None:
                rows = self._new_seconds(c, session_id, rows)
            if rows:
                write_seconds(c, self.db.dialect, station, session_id, rows)
        return True

    def _new_seconds(
        self, c: Connection, session_id: int, rows: Sequence[CoverageRow]
    ) -> list[CoverageRow]:
        """The rows whose second this session was not credited with yet (now credited):
        coverage replayed under a new message id counts once."""
        by_ts = {r.ts: r for r in rows}
        credited = c.execute(
            _insert(self.db.dialect, t.ingested_seconds)
            .values([{"session_id": session_id, "ts": ts} for ts in by_ts])
            .on_conflict_do_nothing(index_elements=["session_id", "ts"])
            .returning(t.ingested_seconds.c.ts)
        ).all()
        return [by_ts[r.ts] for r in credited]

    def applied(self, message_id: str) -> bool:
        """Whether a message id was applied already."""
        with self.db.read() as c:
            return (
                c.execute(select(t.ingested.c.id).where(t.ingested.c.id == message_id)).first()
                is not None
            )

    def prune_ingested(self, before: str) -> int:
        """Forget message ids applied before ``before`` (no worker resends that old)."""
        with self.db.write() as c:
            c.execute(delete(t.ingested_seconds).where(t.ingested_seconds.c.ts < before))
            return int(c.execute(delete(t.ingested).where(t.ingested.c.at < before)).rowcount or 0)

    # --- sessions of worker camera runs ----------------------------------------------
    def run_session(
        self, run: str, info: SessionInfo, host: str, pid: int, worker: str | None = None
    ) -> int:
        """The session of one camera run of a worker process (``run`` is unique per camera
        and worker start), created on first use with the worker's host and pid, so crash
        recovery judges it by the worker's process, not by the ingester's. The session
        belongs to ``worker`` (when given): another worker naming the same run gets its own."""
        s = t.sessions.c
        owner = worker if worker is not None else info.params.get("worker")
        with self.db.write() as c:
            for row in c.execute(
                select(s.id, s.params_json).where(
                    s.host == host, s.pid == pid, s.source == info.source, s.station == info.station
                )
            ).all():
                params = json.loads(row.params_json or "{}")
                if params.get("run") == run and params.get("worker") == owner:
                    return int(row.id)
            params = {**info.params, "run": run, "worker": owner}
            return new_id(c.execute(insert_session(info, pid, host, params)))

    def _running(self, c: Connection, host: str, pid: int, worker: str | None) -> list[int]:
        """Running sessions of a worker process (of ``worker`` only, when given)."""
        s = t.sessions.c
        rows = c.execute(
            select(s.id, s.params_json).where(s.host == host, s.pid == pid, s.status == "running")
        ).all()
        return [
            int(r.id)
            for r in rows
            if worker is None or json.loads(r.params_json or "{}").get("worker") == worker
        ]

    def beat_sessions(self, host: str, pid: int, worker: str | None = None) -> None:
        """A worker process is alive: refresh its running sessions' heartbeats."""
        s = t.sessions.c
        with self.db.write() as c:
            ids = self._running(c, host, pid, worker)
            if ids:
                c.execute(update(t.sessions).where(s.id.in_(ids)).values(heartbeat_at=now()))

    def end_sessions(
        self, host: str, pid: int, status: str, worker: str | None = None
    ) -> list[int]:
        """End the running sessions of a worker process (of ``worker`` only, when given);
        returns their ids."""
        s = t.sessions.c
        with self.db.write() as c:
            ids = self._running(c, host, pid, worker)
            if ids:
                c.execute(
                    update(t.sessions).where(s.id.in_(ids)).values(status=status, ended_at=now())
                )
        return ids

    # --- worker keys (generation and fingerprint; the key itself is never stored) ------
    def next_key_generation(self, name: str) -> int:
        """The generation a new key for ``name`` gets (1 for a new worker)."""
        k = t.worker_keys.c
        with self.db.read() as c:
            found = c.execute(select(k.generation).where(k.name == name)).scalar()
        return int(found or 0) + 1

    def issue_key(self, name: str, generation: int, fingerprint: str) -> None:
        """Record ``name``'s current key (replacing, so retiring, an older one)."""
        row = {
            "name": name,
            "generation": generation,
            "fingerprint": fingerprint,
            "created_at": now(),
            "revoked_at": None,
        }
        with self.db.write() as c:
            _upsert(c, self.db.dialect, t.worker_keys, "name", rows=[row])

    def revoke_key(self, name: str) -> bool:
        """Stop accepting ``name``'s key; False when it has none."""
        k = t.worker_keys.c
        with self.db.write() as c:
            done = c.execute(
                update(t.worker_keys)
                .where(k.name == name, k.revoked_at.is_(None))
                .values(revoked_at=now())
            ).rowcount
        return bool(done)

    def worker_keys(self) -> list[WorkerKey]:
        """Every worker that was issued a key, by name."""
        k = t.worker_keys.c
        with self.db.read() as c:
            rows = c.execute(
                select(k.name, k.generation, k.fingerprint, k.created_at, k.revoked_at).order_by(
                    k.name
                )
            ).all()
        return [WorkerKey(*r) for r in rows]

    def worker_key(self, name: str) -> WorkerKey | None:
        """``name``'s key record, or None."""
        k = t.worker_keys.c
        with self.db.read() as c:
            r = c.execute(
                select(k.name, k.generation, k.fingerprint, k.created_at, k.revoked_at).where(
                    k.name == name
                )
            ).first()
        return WorkerKey(*r) if r is not None else None

    # --- dead letters: refused messages, the newest ones kept ------------------------
    def dead_letter(self, letter: DeadLetter, keep: int = 1000) -> None:
        """Keep a refused message's reason (and its start); only the newest ``keep`` stay."""
        d = t.dead_letters
        with self.db.write() as c:
            c.execute(
                insert(d).values(
                    # in the order written (then random): "newest first" holds within a second
                    id=f"{time.time_ns():016x}{uuid.uuid4().hex[:8]}",
                    at=letter.at or now(),
                    worker=letter.worker,
                    topic=letter.topic,
                    reason=letter.reason,
                    message_id=letter.message_id,
                    excerpt=letter.excerpt,
                )
            )
            excess = int(c.execute(select(func.count()).select_from(d)).scalar_one()) - keep
            if excess > 0:
                oldest = select(d.c.id).order_by(d.c.at, d.c.id).limit(excess)
                c.execute(delete(d).where(d.c.id.in_(oldest.scalar_subquery())))

    def dead_letters(self, limit: int = 200) -> list[DeadLetter]:
        """The newest refused messages first."""
        d = t.dead_letters.c
        with self.db.read() as c:
            rows = c.execute(
                select(d.at, d.worker, d.topic, d.reason, d.message_id, d.excerpt)
                .order_by(d.at.desc(), d.id.desc())
                .limit(limit)
            ).all()
        return [
            DeadLetter(r.topic, r.reason, r.worker, r.message_id, r.excerpt, r.at) for r in rows
        ]
