"""Retention: delete evidence files and raw per-frame / per-second rows older than N days while
the figures stay.

Before anything is deleted, raw coverage seconds without an hourly roll-up get one and
per-frame results are rolled up into hourly counts (in the same transaction), so History shows
the same compliance figures afterwards. Episode rows stay (they are the record of violations);
only their evidence files go, marked with ``evidence_removed_at``. Files are only deleted inside
the evidence store and the batch outputs folder (resolved, so neither a symlink nor ``..`` leads
out of them).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from core.config import settings
from core.events.evidence import EvidenceStore
from core.storage import Store
from core.storage.retention import RetentionRun

log = logging.getLogger(__name__)

__all__ = ["RetentionReport", "RetentionRun", "last_runs", "run_retention"]


@dataclass
class RetentionReport:
    """What one retention run removed."""

    days: int
    cutoff: str
    files_removed: int = 0
    bytes_freed: int = 0
    files_missing: int = 0
    files_outside_home: int = 0
    episodes_cleared: int = 0
    results_deleted: int = 0
    detections_deleted: int = 0
    coverage_seconds_deleted: int = 0
    hours_rolled_up: int = 0
    by: str | None = None

    def summary(self) -> str:
        """One readable sentence for the page and the CLI."""
        mb = self.bytes_freed / 1e6
        text = (
            f"Removed data older than {self.cutoff} ({self.days} days): "
            f"{self.files_removed} evidence files ({mb:.1f} MB) from "
            f"{self.episodes_cleared} episodes, {self.results_deleted} per-frame results "
            f"with {self.detections_deleted} detections, {self.coverage_seconds_deleted} "
            f"per-second coverage rows ({self.hours_rolled_up} missing hourly roll-ups "
            "added first). Episode rows and hourly figures are kept."
        )
        if self.files_missing:
            text += f" {self.files_missing} evidence files were already gone."
        if self.files_outside_home:
            text += (
                f" {self.files_outside_home} files outside the evidence store were left in place."
            )
        return text


def _remove(path_text: str, stores: Sequence[EvidenceStore], report: RetentionReport) -> None:
    """Delete one file if it lies inside one of ``stores`` (resolved: a symlink or ``..``
    out of them is left alone and counted)."""
    store = next((s for s in stores if s.path(path_text) is not None), None)
    if store is None:
        report.files_outside_home += 1
        return
    try:
        size = store.remove(path_text)
    except FileNotFoundError:
        report.files_missing += 1
        return
    except OSError as exc:
        log.warning("retention: cannot delete %s: %s", Path(path_text).name, exc)
        report.files_outside_home += 1
        return
    if size is None:
        report.files_outside_home += 1
        return
    report.files_removed += 1
    report.bytes_freed += size


def run_retention(store: Store, days: int | None = None, by: str | None = None) -> RetentionReport:
    """Delete evidence and raw rows older than ``days`` (default ``settings().retention_days``)
    whole days back from today; returns what was removed and keeps it in the store."""
    s = settings()
    days = s.retention_days if days is None else days
    if days < 1:
        raise ValueError("Retention must keep at least 1 day.")
    cutoff = (datetime.now().date() - timedelta(days=days)).isoformat() + " 00:00:00"
    purged = store.retention.purge(cutoff, days)
    report = RetentionReport(
        days=days,
        cutoff=cutoff,
        episodes_cleared=purged.episodes_cleared,
        results_deleted=purged.results_deleted,
        detections_deleted=purged.detections_deleted,
        coverage_seconds_deleted=purged.coverage_seconds_deleted,
        hours_rolled_up=purged.hours_rolled_up,
        by=by,
    )
    # Files go after the commit: a failed transaction must not leave rows pointing at nothing.
    # Only inside the evidence store and the batch outputs: never the store file, models or
    # anything else a row might name (an evidence frame's detections file goes with it).
    stores = [EvidenceStore(s.evidence_dir), EvidenceStore(s.batch_dir)]
    for path in purged.files:
        _remove(path, stores, report)
    store.retention.record(purged.run_id, asdict(report))
    store.audit.add(
        by or "-",
        "retention.run",
        f"{days} days",
        {"cutoff": cutoff, "files": report.files_removed},
    )
    log.info("retention: %s", report.summary())
    return report


def last_runs(store: Store, limit: int = 5) -> list[RetentionRun]:
    """The latest retention runs, newest first."""
    return store.retention.last_runs(limit)
