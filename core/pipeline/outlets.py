"""Where a camera worker's episodes, coverage and heartbeats go: its *outlet*.

:class:`Outlet` is what :class:`~core.pipeline.worker.Worker` talks to. With no broker
configured it is :class:`DirectOutlet` (the store, written in this process); with a broker
it is :class:`~core.comms.bus.MqttOutlet`, for an ingester to write.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

from core.comms.messages import CameraRun
from core.events.sinks import Sink, StoreSink
from core.storage import Store
from core.storage.fleet import CameraRow, WorkerRow


class Outlet(Protocol):
    """Where a worker's episodes, coverage and heartbeats go."""

    # True when the store is reached through a broker: the worker's evidence then stays on
    # its own disk, out of the central retention's reach, and the worker applies it there.
    remote: bool

    def start(self, offline: WorkerRow, cameras: Sequence[CameraRow]) -> None: ...

    def open_camera(self, run: CameraRun) -> tuple[Sink, int | None]: ...

    def close_camera(self, run: CameraRun, session_id: int | None, status: str) -> None: ...

    def heartbeat(self, worker: WorkerRow, cameras: Sequence[CameraRow]) -> None: ...

    def details(self) -> dict[str, Any]: ...

    def close(
        self, worker: WorkerRow, cameras: Sequence[CameraRow], timeout_s: float = 10.0
    ) -> bool: ...


class DirectOutlet:
    """No broker: a session per camera, episodes and coverage through a
    :class:`StoreSink`, status rows written straight into the store."""

    remote = False  # the store's own retention reaches this worker's evidence

    def __init__(self, store: Store, session_beat_s: float = 30.0):
        self.store = store
        self.sink = StoreSink(store)
        self.session_beat_s = session_beat_s
        self._sessions: list[int] = []
        self._last_beat = time.monotonic()

    def start(self, offline: WorkerRow, cameras: Sequence[CameraRow]) -> None:
        """Nothing to connect to."""

    def open_camera(self, run: CameraRun) -> tuple[Sink, int | None]:
        sid = self.store.sessions.start(run.session)
        self._sessions.append(sid)
        return self.sink, sid

    def close_camera(self, run: CameraRun, session_id: int | None, status: str) -> None:
        if session_id is not None:
            self.store.sessions.end(session_id, status)
            self._sessions.remove(session_id)

    def heartbeat(self, worker: WorkerRow, cameras: Sequence[CameraRow]) -> None:
        self.store.fleet.report(worker, cameras)
        if time.monotonic() - self._last_beat >= self.session_beat_s:
            self._last_beat = time.monotonic()
            for sid in list(self._sessions):
                self.store.sessions.heartbeat(sid)

    def details(self) -> dict[str, Any]:
        return {"transport": "store"}

    def close(
        self, worker: WorkerRow, cameras: Sequence[CameraRow], timeout_s: float = 10.0
    ) -> bool:
        self.store.fleet.report(worker, cameras)
        return True
