"""Data sets, training runs and the model registry."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Table, insert, select, update

from core.errors import TrainingError
from core.storage import schema as t
from core.storage.database import Database, lock, new_id, now


@dataclass(frozen=True)
class DatasetRecord:
    id: int
    name: str
    path: str  # the normalized data.yaml
    task: str
    names: tuple[str, ...]
    report_json: str
    created_at: str


@dataclass(frozen=True)
class RunRecord:
    id: int
    name: str
    dataset: str
    model: str
    args: dict[str, Any]
    device: str
    status: str
    pid: int | None
    run_dir: Path
    created_at: str
    started_at: str | None
    ended_at: str | None
    message: str | None
    best: dict[str, Any]


@dataclass(frozen=True)
class RegistryRecord:
    id: int
    path: Path
    sha256: str
    run_id: int | None
    dataset: str | None
    roles: dict[str, str]
    scores: dict[str, Any]
    promoted_by: str
    promoted_at: str
    active: bool
    station: str | None = None  # None: the plant-wide model


def _dataset(row: Any) -> DatasetRecord:
    return DatasetRecord(
        row.id,
        row.name,
        row.path,
        row.task,
        tuple(json.loads(row.names_json)),
        row.report_json,
        row.created_at,
    )


def _run(row: Any) -> RunRecord:
    return RunRecord(
        row.id,
        row.name,
        row.dataset,
        row.model,
        json.loads(row.args_json),
        row.device,
        row.status,
        row.pid,
        Path(row.run_dir),
        row.created_at,
        row.started_at,
        row.ended_at,
        row.message,
        json.loads(row.best_json or "{}"),
    )


def _registry(row: Any) -> RegistryRecord:
    return RegistryRecord(
        row.id,
        Path(row.path),
        row.sha256,
        row.run_id,
        row.dataset,
        json.loads(row.roles_json or "{}"),
        json.loads(row.scores_json or "{}"),
        row.promoted_by,
        row.promoted_at,
        bool(row.active),
        row.station,
    )


def _by_ref(table: Table, ref: int | str) -> Any:
    """Select a row by id, or the newest with that name."""
    if isinstance(ref, int) or str(ref).isdigit():
        return select(table).where(table.c.id == int(ref))
    return select(table).where(table.c.name == str(ref)).order_by(table.c.id.desc()).limit(1)


class DatasetRepo:
    def __init__(self, db: Database):
        self.db = db

    def add(
        self, name: str, path: str, task: str, names: tuple[str, ...], report_json: str
    ) -> DatasetRecord:
        with self.db.write() as c:
            created = new_id(
                c.execute(
                    insert(t.datasets).values(
                        name=name,
                        path=path,
                        task=task,
                        names_json=json.dumps(list(names)),
                        report_json=report_json,
                        created_at=now(),
                    )
                )
            )
        found = self.get(created)
        assert found is not None
        return found

    def get(self, ref: int | str) -> DatasetRecord | None:
        with self.db.read() as c:
            row = c.execute(_by_ref(t.datasets, ref)).first()
        return _dataset(row) if row else None

    def by_path(self, path: str) -> DatasetRecord | None:
        d = t.datasets
        with self.db.read() as c:
            row = c.execute(
                select(d).where(d.c.path == path).order_by(d.c.id.desc()).limit(1)
            ).first()
        return _dataset(row) if row else None

    def all(self) -> list[DatasetRecord]:
        with self.db.read() as c:
            return [
                _dataset(r) for r in c.execute(select(t.datasets).order_by(t.datasets.c.id.desc()))
            ]


class RunRepo:
    def __init__(self, db: Database):
        self.db = db

    def create(
        self,
        name: str,
        dataset: str,
        model: str,
        device: str,
        message: str | None,
        folder_for: Callable[[int], str],
        args_for: Callable[[str], dict[str, Any]],
    ) -> int:
        """Queue a new run; refuses a name already queued or running (in one transaction)."""
        r = t.runs
        with self.db.write() as c:
            lock(c, "runs")  # two processes queueing the same name take turns
            clash = c.execute(
                select(r.c.id, r.c.status).where(
                    r.c.status.in_(("queued", "running")), r.c.name == name
                )
            ).first()
            if clash:
                raise TrainingError(
                    f"A run named '{name}' is already {clash.status} (run "
                    f"{clash.id}); stop it first or choose another name."
                )
            run_id = new_id(
                c.execute(
                    insert(r).values(
                        name=name,
                        dataset=dataset,
                        model=model,
                        args_json="{}",
                        device=device,
                        status="queued",
                        run_dir="",
                        created_at=now(),
                        message=message,
                    )
                )
            )
            folder = folder_for(run_id)
            c.execute(
                update(r)
                .where(r.c.id == run_id)
                .values(run_dir=folder, args_json=json.dumps(args_for(folder)))
            )
        return run_id

    def get(self, ref: int | str) -> RunRecord | None:
        with self.db.read() as c:
            row = c.execute(_by_ref(t.runs, ref)).first()
        return _run(row) if row else None

    def all(self) -> list[RunRecord]:
        with self.db.read() as c:
            return [_run(r) for r in c.execute(select(t.runs).order_by(t.runs.c.id.desc()))]

    def with_status(self, status: str) -> list[RunRecord]:
        with self.db.read() as c:
            return [
                _run(r)
                for r in c.execute(
                    select(t.runs).where(t.runs.c.status == status).order_by(t.runs.c.id)
                )
            ]

    def set(self, run_id: int, only_if: tuple[str, ...] | None = None, **cols: Any) -> bool:
        """Update a run's columns (``args``/``best`` as dicts), only in the given states."""
        values = {
            ("args_json" if k == "args" else "best_json" if k == "best" else k): (
                json.dumps(v) if k in ("args", "best") else v
            )
            for k, v in cols.items()
        }
        q = update(t.runs).where(t.runs.c.id == run_id).values(**values)
        if only_if:
            q = q.where(t.runs.c.status.in_(only_if))
        with self.db.write() as c:
            return bool(c.execute(q).rowcount)

    def rename_clash(self, run_id: int, name: str) -> int | None:
        """The id of another active run with ``name``, if any."""
        r = t.runs
        with self.db.read() as c:
            row = c.execute(
                select(r.c.id).where(
                    r.c.status.in_(("queued", "running")), r.c.name == name, r.c.id != run_id
                )
            ).first()
        return int(row[0]) if row else None

    def start_queued(self, spawn: Callable[[RunRecord], int]) -> list[int]:
        """Start the oldest queued run of every device that has none running.

        ``spawn`` starts a run's process and returns its pid (or raises ``TrainingError`` /
        ``OSError``, which fails that run). It runs inside the write transaction, so two
        processes never start the same run. Returns the ids started.
        """
        r = t.runs
        started = []
        with self.db.write() as c:
            # Lock the queued and running rows before deciding (PostgreSQL: FOR UPDATE; SQLite
            # already holds the write lock). A second process waits here, then reads the rows
            # as the first one left them: a run it started is running, its device busy.
            active = c.execute(
                select(r)
                .where(r.c.status.in_(("queued", "running")))
                .order_by(r.c.id)
                .with_for_update()
            ).all()
            busy = {row.device for row in active if row.status == "running"}
            for row in active:
                run = _run(row)
                if run.status != "queued" or run.device in busy:
                    continue
                try:
                    pid = spawn(run)
                except (TrainingError, OSError) as exc:
                    c.execute(
                        update(r)
                        .where(r.c.id == run.id)
                        .values(status="failed", ended_at=now(), message=str(exc))
                    )
                    continue
                c.execute(
                    update(r)
                    .where(r.c.id == run.id)
                    .values(status="running", pid=pid, started_at=run.started_at or now())
                )
                busy.add(run.device)
                started.append(run.id)
        return started


class RegistryRepo:
    def __init__(self, db: Database):
        self.db = db

    def active(self, station: str | None = None) -> RegistryRecord | None:
        """The active plant-wide entry, or the one of ``station``."""
        m = t.model_registry
        where = m.c.station.is_(None) if station is None else m.c.station == station
        with self.db.read() as c:
            row = c.execute(
                select(m).where(m.c.active == 1, where).order_by(m.c.id.desc()).limit(1)
            ).first()
        return _registry(row) if row else None

    def get(self, entry_id: int) -> RegistryRecord | None:
        m = t.model_registry
        with self.db.read() as c:
            row = c.execute(select(m).where(m.c.id == entry_id)).first()
        return _registry(row) if row else None

    def all(self) -> list[RegistryRecord]:
        m = t.model_registry
        with self.db.read() as c:
            return [_registry(r) for r in c.execute(select(m).order_by(m.c.id.desc()))]

    def promote(
        self,
        path: str,
        sha256: str,
        run_id: int | None,
        dataset: str | None,
        roles: dict[str, str],
        scores: dict[str, Any],
        by: str,
        station: str | None = None,
    ) -> RegistryRecord:
        """Record a promotion and make it the only active entry of its scope (the plant, or
        one station)."""
        m = t.model_registry
        scope = m.c.station.is_(None) if station is None else m.c.station == station
        with self.db.write() as c:
            c.execute(update(m).where(m.c.active == 1, scope).values(active=0))
            created = new_id(
                c.execute(
                    insert(m).values(
                        path=path,
                        sha256=sha256,
                        run_id=run_id,
                        dataset=dataset,
                        roles_json=json.dumps(roles),
                        scores_json=json.dumps(scores),
                        promoted_by=by,
                        promoted_at=now(),
                        active=1,
                        station=station,
                    )
                )
            )
        found = self.get(created)
        assert found is not None
        return found

    def activate(self, entry_id: int | None, station: str | None = None) -> None:
        """Make ``entry_id`` the active entry of its scope (None: none there, i.e. the
        shipped default plant-wide, or the plant-wide model at a station)."""
        m = t.model_registry
        scope = m.c.station.is_(None) if station is None else m.c.station == station
        with self.db.write() as c:
            c.execute(update(m).where(m.c.active == 1, scope).values(active=0))
            if entry_id is not None:
                c.execute(update(m).where(m.c.id == entry_id).values(active=1))
