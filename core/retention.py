"""Retention: delete evidence files and raw per-frame / per-second rows older than N days while
the aggregate figures stay.

Before anything is deleted, raw coverage seconds without an hourly roll-up get one in
``coverage_hourly`` and per-frame results are rolled up into ``results_hourly`` (in the same
transaction), so History shows the same compliance figures afterwards. Episode rows stay
(they are the aggregates of violations); only their evidence files go, marked with
``evidence_removed_at``. Files are only deleted inside the GloveWatch data folder.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from core import store as st
from core.config import settings
from core.history import rollup_coverage

log = logging.getLogger(__name__)


@dataclass
class RetentionReport:
    """What one retention run removed."""

    days: int
    cutoff: str
    files_removed: int = 0
    bytes_freed: int = 0
    files_missing: int = 0
    files_outside_home: list[str] = field(default_factory=list)
    episodes_cleared: int = 0
    results_deleted: int = 0
    detections_deleted: int = 0
    coverage_seconds_deleted: int = 0
    hours_rolled_up: int = 0

    def summary(self) -> str:
        """One readable sentence for the page and the CLI."""
        mb = self.bytes_freed / 1e6
        text = (f"Removed data older than {self.cutoff} ({self.days} days): "
                f"{self.files_removed} evidence files ({mb:.1f} MB) from "
                f"{self.episodes_cleared} episodes, {self.results_deleted} per-frame results "
                f"with {self.detections_deleted} detections, {self.coverage_seconds_deleted} "
                f"per-second coverage rows ({self.hours_rolled_up} missing hourly roll-ups "
                "added first). Episode rows and hourly figures are kept.")
        if self.files_missing:
            text += f" {self.files_missing} evidence files were already gone."
        if self.files_outside_home:
            text += (f" {len(self.files_outside_home)} files outside the data folder were left "
                     "in place.")
        return text


def _remove(path_text: str | None, home: Path, report: RetentionReport) -> None:
    if not path_text:
        return
    path = Path(path_text).resolve()
    if not path.is_relative_to(home):
        report.files_outside_home.append(str(path))
        return
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        report.files_missing += 1
        return
    except OSError as exc:
        log.warning("retention: cannot delete %s: %s", path, exc)
        report.files_outside_home.append(str(path))
        return
    report.files_removed += 1
    report.bytes_freed += size


def run_retention(conn: sqlite3.Connection, days: int | None = None) -> RetentionReport:
    """Delete evidence and raw rows older than ``days`` (default ``settings().retention_days``)
    whole days back from today; returns what was removed and logs it in ``retention_runs``."""
    s = settings()
    days = s.retention_days if days is None else days
    if days < 1:
        raise ValueError("Retention must keep at least 1 day.")
    cutoff = (datetime.now().date() - timedelta(days=days)).isoformat() + " 00:00:00"
    report = RetentionReport(days=days, cutoff=cutoff)
    home = s.home.resolve()
    with st.transaction(conn):
        report.hours_rolled_up = rollup_coverage(conn, before=cutoff)
        report.coverage_seconds_deleted = conn.execute(
            "DELETE FROM coverage_seconds WHERE ts < ?", (cutoff,)).rowcount
        # Per-frame results leave their counts in results_hourly (additive: the rows go now).
        conn.execute(
            "INSERT INTO results_hourly (station, hour, frames, gloved_n, bare_n)"
            " SELECT s.station, substr(r.ts,1,13) || ':00:00', COUNT(*), SUM(r.protected),"
            " SUM(r.violation) FROM results r JOIN sessions s ON s.id = r.session_id"
            " WHERE r.ts < ? AND r.error IS NULL AND NOT EXISTS (SELECT 1 FROM events d"
            " WHERE d.session_id = r.session_id AND d.review = 'dismissed'"
            " AND d.source IS r.source AND COALESCE(d.frame,0) = r.frame)"
            " GROUP BY s.station, substr(r.ts,1,13)"
            " ON CONFLICT(station, hour) DO UPDATE SET frames = frames + excluded.frames,"
            " gloved_n = gloved_n + excluded.gloved_n, bare_n = bare_n + excluded.bare_n",
            (cutoff,))
        annotated = [r[0] for r in conn.execute(
            "SELECT annotated_path FROM results WHERE ts < ? AND annotated_path IS NOT NULL",
            (cutoff,))]
        report.detections_deleted = conn.execute(
            "DELETE FROM detections WHERE result_id IN (SELECT id FROM results WHERE ts < ?)",
            (cutoff,)).rowcount
        report.results_deleted = conn.execute(
            "DELETE FROM results WHERE ts < ?", (cutoff,)).rowcount
        evidence = conn.execute(
            "SELECT id, evidence_path, crop_path FROM events WHERE started_at < ?"
            " AND (evidence_path IS NOT NULL OR crop_path IS NOT NULL)", (cutoff,)).fetchall()
        conn.execute(
            "UPDATE events SET evidence_path = NULL, crop_path = NULL, evidence_removed_at = ?"
            " WHERE started_at < ? AND (evidence_path IS NOT NULL OR crop_path IS NOT NULL)",
            (st.now(), cutoff))
        report.episodes_cleared = len(evidence)
        conn.execute("INSERT INTO retention_runs (ran_at, days, cutoff, report_json)"
                     " VALUES (?,?,?,?)", (st.now(), days, cutoff, json.dumps(asdict(report))))
    # Files go after the commit: a failed transaction must not leave rows pointing at nothing.
    seen: set[str] = set()
    for path in [*annotated, *(p for _, e, c in evidence for p in (e, c))]:
        if path and path not in seen:
            seen.add(path)
            _remove(path, home, report)
    conn.execute("UPDATE retention_runs SET report_json = ? WHERE id = (SELECT MAX(id) FROM"
                 " retention_runs)", (json.dumps(asdict(report)),))
    log.info("retention: %s", report.summary())
    return report


@dataclass(frozen=True)
class RetentionRun:
    ran_at: str
    days: int
    cutoff: str
    report: dict


def last_runs(conn: sqlite3.Connection, limit: int = 5) -> list[RetentionRun]:
    """The latest retention runs, newest first."""
    return [RetentionRun(r[0], r[1], r[2], json.loads(r[3])) for r in conn.execute(
        "SELECT ran_at, days, cutoff, report_json FROM retention_runs ORDER BY id DESC LIMIT ?",
        (limit,))]
