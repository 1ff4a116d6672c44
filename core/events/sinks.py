"""Where recorders' episode events and coverage go: the store, alerts, or several at once.

An :class:`EpisodeEvent` is ``new`` (an episode confirmed), ``update`` (its latest figures)
or ``end`` (closed), with a key unique to that episode, so a sink can apply each event once
even when it arrives twice (retries, a message bus).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from core.events.alerts import Alert, Alerter
from core.storage import Store
from core.storage.coverage import CoverageRow
from core.storage.events import EventRow, OpenRefresh

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpisodeEvent:
    kind: str  # new | update | end
    key: str
    row: EventRow


class Sink(Protocol):
    def episode(self, event: EpisodeEvent) -> None: ...

    def coverage(
        self, station: str, session_id: int | None, rows: Sequence[CoverageRow]
    ) -> None: ...


class StoreSink:
    """Persists episode events and coverage in the store (the one writer of episodes).

    Episodes are written by their key, so an event applied twice (a retried message) changes
    nothing, an ``update`` or ``end`` whose ``new`` was never seen still lands, and an
    ``update`` that arrives after its episode was closed (a resent message) changes nothing.
    """

    def __init__(self, store: Store):
        self.store = store
        self._ids: dict[str, int] = {}
        self._lock = threading.Lock()

    def event_id(self, key: str) -> int | None:
        with self._lock:
            known = self._ids.get(key)
        return known if known is not None else self.store.events.id_by_key(key)

    def episode(self, event: EpisodeEvent) -> None:
        row = replace(event.row, event_key=event.key)
        with self._lock:
            event_id = self._ids.get(event.key)
        if event_id is None:
            event_id = self.store.events.id_by_key(event.key)
            if event_id is None:
                event_id = self.store.events.upsert_by_key(row)
                if event.kind == "new":
                    with self._lock:
                        self._ids[event.key] = event_id
                    return
            elif event.kind != "end":
                # not open in this sink: it may have been closed already (by its end, applied
                # earlier, or by crash recovery), and then its final figures must stay
                stored = self.store.events.get(event_id)
                if stored is None or stored.state == "closed":
                    return
            if event.kind != "end":
                with self._lock:
                    self._ids[event.key] = event_id
        if event.kind == "update":
            self.store.events.refresh_open(
                [
                    OpenRefresh(
                        event_id,
                        row.ended_at or row.started_at,
                        row.duration_s,
                        row.peak_conf or 0.0,
                        row.severity,
                        row.zone,
                    )
                ]
            )
        elif event.kind == "end":
            self.store.events.close(event_id, row)
            with self._lock:
                self._ids.pop(event.key, None)

    def coverage(self, station: str, session_id: int | None, rows: Sequence[CoverageRow]) -> None:
        self.store.coverage.write(station, session_id, rows)


class AlertingSink:
    """A :class:`StoreSink` that also raises an alert for each new episode it stores."""

    def __init__(self, inner: StoreSink, alerter: Alerter):
        self.inner, self.alerter = inner, alerter

    def episode(self, event: EpisodeEvent) -> None:
        self.inner.episode(event)
        if event.kind != "new":
            return
        event_id = self.inner.event_id(event.key)
        if event_id is None:
            return
        row = event.row
        try:
            self.alerter.notify(
                event_id,
                row.station,
                row.severity,
                row.class_name,
                row.zone,
                row.started_at,
                row.evidence_path,
            )
        except Exception:  # an alert must never stop recording
            log.exception("alert for episode %s failed", event_id)

    def coverage(self, station: str, session_id: int | None, rows: Sequence[CoverageRow]) -> None:
        self.inner.coverage(station, session_id, rows)

    def recent_alerts(self) -> list[Alert]:
        return self.alerter.recent()
