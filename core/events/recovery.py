"""Crash recovery at start: sessions whose process died are marked interrupted, and the
episodes they left open are closed at the last time they were seen, whatever their age.

A running session records its process (host and pid) and refreshes a heartbeat. On this
host a session is dead when its process is gone (or the pid now belongs to a program that
is not Python); on another host, when its heartbeat is older than ``stale_after_s``.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.processes import running_argv
from core.storage import Store
from core.storage.sessions import SessionRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recovery:
    sessions_interrupted: int
    episodes_closed: int


def _pid_alive(pid: int) -> bool:
    argv = running_argv(pid)
    # a recycled pid that now runs another program is not our process
    return argv is not None and (not argv or any(b"python" in a.lower() for a in argv))


def session_alive(rec: SessionRecord, stale_after_s: float = 120.0) -> bool:
    """Whether the process that runs a session is still there."""
    if rec.pid is None:  # written before sessions recorded their process
        return False
    if rec.host == socket.gethostname():
        return rec.pid == os.getpid() or _pid_alive(rec.pid)
    beat = rec.heartbeat_at or rec.started_at
    limit = (datetime.now() - timedelta(seconds=stale_after_s)).strftime("%Y-%m-%d %H:%M:%S")
    return beat >= limit


def recover(store: Store) -> Recovery:
    """Mark dead sessions interrupted and close the episodes left open (see module doc)."""
    dead = [s.id for s in store.sessions.running() if not session_alive(s)]
    for sid in dead:
        store.sessions.end(sid, "interrupted")
    closed = store.events.close_orphans(dead)
    if dead or closed:
        log.warning(
            "start-up recovery: %d session(s) of ended processes marked interrupted, "
            "%d episode(s) they left open closed at their last sighting",
            len(dead),
            closed,
        )
    return Recovery(len(dead), closed)
