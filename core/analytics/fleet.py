"""The fleet at a glance: every camera worker and camera, with a status that accounts for
silence.

Workers report themselves and their cameras (directly, or through the ingester); a row only
says what was true at its last heartbeat. :func:`fleet_status` judges the rows by their age:
a worker whose heartbeat is older than ``stale_after_s`` is *stalled*, older than
``lost_after_s`` *disconnected*, and the cameras of a worker that is not online cannot be
live whatever they last said.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.storage import Store
from core.storage.fleet import DeadLetter

_TS = "%Y-%m-%d %H:%M:%S"

WORKER_STATES = ("online", "stalled", "disconnected", "offline", "stopped")
CAMERA_STATES = ("live", "connecting", "stalled", "disconnected", "stopped")


@dataclass(frozen=True)
class WorkerView:
    name: str
    host: str | None
    status: str  # online | stalled | disconnected | offline (died) | stopped
    reported: str  # what the worker last said
    started_at: str | None
    heartbeat_at: str | None
    age_s: float | None  # seconds since its last heartbeat
    cameras: int
    transport: str
    details: dict[str, Any]


@dataclass(frozen=True)
class CameraView:
    name: str
    worker: str | None
    station: str
    source: str | None
    status: str  # live | connecting | stalled | disconnected | stopped
    reported: str
    fps: float
    analysed: int
    skipped: int
    last_frame_at: str | None
    heartbeat_at: str | None
    age_s: float | None
    message: str | None

    @property
    def skipped_share(self) -> float | None:
        """Share of frames motion gating answered without the detector."""
        total = self.analysed + self.skipped
        return self.skipped / total if total else None


def _age(stamp: str | None, now: datetime) -> float | None:
    if not stamp:
        return None
    try:
        return max(0.0, (now - datetime.strptime(stamp, _TS)).total_seconds())
    except ValueError:
        return None


def worker_state(
    reported: str, age_s: float | None, stale_after_s: float, lost_after_s: float
) -> str:
    """A worker's status from what it said and how long ago."""
    if reported in ("offline", "stopped"):
        return reported
    if age_s is None or age_s > lost_after_s:
        return "disconnected"
    if age_s > stale_after_s:
        return "stalled"
    return "online"


def camera_state(
    reported: str, age_s: float | None, worker: str | None, stale_after_s: float
) -> str:
    """A camera's status from what its worker said, how long ago, and the worker's state."""
    if worker in ("stopped",):
        return "stopped"
    if worker is not None and worker != "online":
        return "disconnected"  # its worker is silent or gone: nobody watches this camera
    if reported == "stopped":
        return "stopped"
    if reported in ("live", "connecting") and (age_s is None or age_s > stale_after_s):
        return "stalled"
    return reported if reported in CAMERA_STATES else "disconnected"


def fleet_status(
    store: Store,
    now: datetime | None = None,
    stale_after_s: float = 30.0,
    lost_after_s: float = 120.0,
) -> tuple[list[WorkerView], list[CameraView]]:
    """Every worker and camera with its judged status (see module docstring)."""
    now = now or datetime.now()
    cams = store.fleet.cameras()
    per_worker: dict[str, int] = {}
    for c in cams:
        if c.worker:
            per_worker[c.worker] = per_worker.get(c.worker, 0) + 1
    workers = []
    states: dict[str, str] = {}
    for w in store.fleet.workers():
        age = _age(w.heartbeat_at, now)
        state = worker_state(w.status, age, stale_after_s, lost_after_s)
        states[w.name] = state
        workers.append(
            WorkerView(
                w.name,
                w.host,
                state,
                w.status,
                w.started_at,
                w.heartbeat_at,
                None if age is None else round(age, 1),
                per_worker.get(w.name, 0),
                str(w.details.get("transport", "")),
                w.details,
            )
        )
    cameras = []
    for c in cams:
        age = _age(c.heartbeat_at, now)
        cameras.append(
            CameraView(
                c.name,
                c.worker,
                c.station,
                c.source,
                camera_state(c.status, age, states.get(c.worker or ""), stale_after_s),
                c.status,
                c.fps,
                c.analysed,
                c.skipped,
                c.last_frame_at,
                c.heartbeat_at,
                None if age is None else round(age, 1),
                c.message,
            )
        )
    return workers, cameras


def count_by_status(views: list[CameraView] | list[WorkerView]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in views:
        out[v.status] = out.get(v.status, 0) + 1
    return out


def dead_letters(store: Store, limit: int = 100) -> list[DeadLetter]:
    """The messages the ingester refused or rejected lately (newest first), with the reason:
    unsigned or forged ones, and those of real workers that failed their schema."""
    return store.fleet.dead_letters(limit)
