"""Retention's database side: roll raw rows into hourly figures, then delete them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, not_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from core.storage import schema as t
from core.storage.coverage import rollup_missing
from core.storage.database import Database, new_id, now
from core.storage.history import result_dismissed


@dataclass(frozen=True)
class Purged:
    """What one retention transaction removed, and the files it left to delete."""

    hours_rolled_up: int
    coverage_seconds_deleted: int
    results_deleted: int
    detections_deleted: int
    episodes_cleared: int
    files: tuple[str, ...]  # annotated outputs and evidence images to delete now
    run_id: int


@dataclass(frozen=True)
class RetentionRun:
    ran_at: str
    days: int
    cutoff: str
    report: dict[str, Any]


class RetentionRepo:
    def __init__(self, db: Database):
        self.db = db

    def _results_rollup(self, cutoff: str) -> Any:
        """The statement adding per-frame results older than ``cutoff`` (not dismissed, not
        errors) to the hourly roll-up of their station."""
        r, s, e = t.results, t.sessions, t.events
        rh = t.results_hourly
        hour = func.substr(r.c.ts, 1, 13).concat(":00:00")
        dismissed = result_dismissed(r, e)
        rolled = (
            select(
                s.c.station, hour, func.count(), func.sum(r.c.compliant), func.sum(r.c.violating)
            )
            .select_from(r.join(s, s.c.id == r.c.session_id))
            .where(r.c.ts < cutoff, r.c.error.is_(None), not_(dismissed))
            .group_by(s.c.station, hour)
        )
        ins = (postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert)(rh)
        return ins.from_select(
            ["station", "hour", "frames", "compliant_n", "violating_n"], rolled
        ).on_conflict_do_update(
            index_elements=["station", "hour"],
            set_={
                "frames": rh.c.frames + ins.excluded.frames,
                "compliant_n": rh.c.compliant_n + ins.excluded.compliant_n,
                "violating_n": rh.c.violating_n + ins.excluded.violating_n,
            },
        )

    def purge(self, cutoff: str, days: int) -> Purged:
        """In one transaction: roll coverage seconds and per-frame results older than
        ``cutoff`` into the hourly roll-ups, delete them, and clear evidence paths of older
        episodes. Files are left to the caller, to delete after the commit."""
        r, e, d = t.results, t.events, t.detections
        add_results = self._results_rollup(cutoff)
        old_evidence = (e.c.started_at < cutoff) & or_(
            e.c.evidence_path.is_not(None), e.c.crop_path.is_not(None)
        )
        with self.db.write() as c:
            hours = rollup_missing(c, self.db.dialect, cutoff)
            seconds = c.execute(
                delete(t.coverage_seconds).where(t.coverage_seconds.c.ts < cutoff)
            ).rowcount
            c.execute(add_results)
            annotated = [
                row[0]
                for row in c.execute(
                    select(r.c.annotated_path).where(
                        r.c.ts < cutoff, r.c.annotated_path.is_not(None)
                    )
                )
            ]
            dets = c.execute(
                delete(d).where(d.c.result_id.in_(select(r.c.id).where(r.c.ts < cutoff)))
            ).rowcount
            results = c.execute(delete(r).where(r.c.ts < cutoff)).rowcount
            evidence = c.execute(select(e.c.evidence_path, e.c.crop_path).where(old_evidence)).all()
            c.execute(
                update(e)
                .where(old_evidence)
                .values(evidence_path=None, crop_path=None, evidence_removed_at=now())
            )
            run_id = new_id(
                c.execute(
                    insert(t.retention_runs).values(
                        ran_at=now(), days=days, cutoff=cutoff, report_json="{}"
                    )
                )
            )
        files = tuple(
            dict.fromkeys(p for p in [*annotated, *(x for row in evidence for x in row)] if p)
        )
        return Purged(
            hours,
            int(seconds or 0),
            int(results or 0),
            int(dets or 0),
            len(evidence),
            files,
            run_id,
        )

    def record(self, run_id: int, report: dict[str, Any]) -> None:
        """Keep the full report of a run (after its files were deleted)."""
        with self.db.write() as c:
            c.execute(
                update(t.retention_runs)
                .where(t.retention_runs.c.id == run_id)
                .values(report_json=json.dumps(report))
            )

    def last_runs(self, limit: int = 5) -> list[RetentionRun]:
        rr = t.retention_runs
        with self.db.read() as c:
            return [
                RetentionRun(row.ran_at, row.days, row.cutoff, json.loads(row.report_json))
                for row in c.execute(select(rr).order_by(rr.c.id.desc()).limit(limit))
            ]
