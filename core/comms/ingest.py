"""The ingester: the one process that writes what camera workers publish into the store.

It subscribes (a persistent MQTT session, so messages queued while it was away are delivered
when it comes back) to every worker's ``episodes``, ``coverage`` and ``status`` topics and
applies each message exactly once:

- episode events through :class:`~core.events.sinks.StoreSink`, by episode key (a ``new``,
  ``update`` or ``end`` applied twice changes nothing);
- coverage by message id, recorded in the same transaction as the coverage rows;
- status messages as the worker's and cameras' rows; a worker that went ``offline`` (its
  last will) or ``stopped`` has its sessions ended and the episodes it left open closed.

Episodes and coverage are attached to one session per camera run, created on first sight
with the worker's host and pid. After applying a message the ingester acknowledges its id
to the worker (``acks``), which can then forget it; a message whose write failed is not
acknowledged and comes again.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import OrderedDict, defaultdict, deque
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from core.comms import messages as m
from core.comms.bus import BrokerAddress, make_client
from core.events.sinks import EpisodeEvent, StoreSink
from core.storage import Store

log = logging.getLogger(__name__)

SUBSCRIPTIONS = [m.topic("+", kind) for kind in ("episodes", "coverage", "status")]


@dataclass(frozen=True)
class IngestStats:
    """What an ingester did so far."""

    applied: int  # episode and coverage messages written
    duplicates: int  # delivered again and left as they were
    statuses: int
    rejected: int  # not GloveWatch messages
    failed: int  # could not be written (not acknowledged; the worker sends them again)
    latency_p50_ms: float | None  # new episode: emitted at the worker -> committed here
    latency_p95_ms: float | None
    latency_n: int


def _percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    if len(xs) == 1:
        return round(xs[0], 1)
    return round(statistics.quantiles(xs, n=100, method="inclusive")[int(q) - 1], 1)


class Ingester:
    """Applies workers' messages to ``store`` (see module docstring)."""

    def __init__(self, store: Store, keep_ids_days: float = 7.0):
        self.store = store
        self.sink = StoreSink(store)
        self.keep_ids_days = keep_ids_days
        self._sessions: dict[str, int] = {}
        self._lock = threading.Lock()
        self._acks: dict[str, list[str]] = defaultdict(list)
        self._recent: OrderedDict[str, None] = OrderedDict()  # episode message ids seen
        self._latency: deque[float] = deque(maxlen=100_000)
        self._n = dict(applied=0, duplicates=0, statuses=0, rejected=0, failed=0)

    # --- applying one message (no MQTT needed) ---------------------------------------
    def apply(self, topic: str, payload: bytes) -> str:
        """Apply one message; returns ``applied``, ``duplicate``, ``status`` or
        ``rejected``. A store error propagates (the message is then not acknowledged)."""
        try:
            worker, kind = m.worker_of(topic)
            if kind == "status":
                self._status(m.decode_status(payload))
                self._count("statuses")
                return "status"
            msg = m.decode(payload)
            if msg.run.worker != worker:
                raise ValueError(f"message of {msg.run.worker} on {topic}")
        except ValueError as exc:
            log.warning("ignored a message on %s: %s", topic, exc)
            self._count("rejected")
            return "rejected"
        if msg.type == "episode":
            outcome = self._episode(msg)
        else:
            station, rows = m.coverage_of(msg)
            fresh = self.store.fleet.coverage_once(msg.id, station, self._session(msg.run), rows)
            outcome = "applied" if fresh else "duplicate"
        self._count(outcome + ("s" if outcome == "duplicate" else ""))
        with self._lock:
            self._acks[worker].append(msg.id)
        return outcome

    def _count(self, what: str) -> None:
        with self._lock:
            self._n[what] += 1

    def _episode(self, msg: m.Message) -> str:
        with self._lock:
            seen = msg.id in self._recent
        event = m.episode_of(msg)
        self.sink.episode(
            EpisodeEvent(
                event.kind, event.key, replace(event.row, session_id=self._session(msg.run))
            )
        )
        if seen:
            return "duplicate"
        with self._lock:
            self._recent[msg.id] = None
            while len(self._recent) > 50_000:
                self._recent.popitem(last=False)
            if event.kind == "new":
                self._latency.append((time.time() - msg.sent_at) * 1000)
        return "applied"

    def _session(self, run: m.CameraRun) -> int:
        with self._lock:
            sid = self._sessions.get(run.key_prefix)
        if sid is None:
            sid = self.store.fleet.run_session(run.run, run.session, run.host, run.pid)
            with self._lock:
                self._sessions[run.key_prefix] = sid
        return sid

    def _status(self, status: m.Status) -> None:
        w = status.worker
        self.store.fleet.report(w, status.cameras)
        if not w.host:
            return
        if w.status == "online":
            self.store.fleet.beat_sessions(w.host, status.pid)
            return
        ended = self.store.fleet.end_sessions(
            w.host, status.pid, "interrupted" if w.status == "offline" else "finished"
        )
        if ended:
            closed = self.store.events.close_orphans(ended)
            log.warning(
                "worker %s is %s: %d session(s) ended, %d open episode(s) closed at "
                "their last sighting",
                w.name,
                w.status,
                len(ended),
                closed,
            )

    def take_acks(self) -> dict[str, list[str]]:
        """Message ids applied since the last call, per worker (to acknowledge)."""
        with self._lock:
            acks, self._acks = dict(self._acks), defaultdict(list)
        return acks

    def stats(self) -> IngestStats:
        with self._lock:
            lat = sorted(self._latency)
            n = dict(self._n)
        return IngestStats(
            n["applied"],
            n["duplicates"],
            n["statuses"],
            n["rejected"],
            n["failed"],
            _percentile(lat, 50),
            _percentile(lat, 95),
            len(lat),
        )

    def prune(self) -> int:
        """Forget applied message ids older than ``keep_ids_days``."""
        before = (datetime.now() - timedelta(days=self.keep_ids_days)).strftime("%Y-%m-%d %H:%M:%S")
        return self.store.fleet.prune_ingested(before)

    # --- the MQTT side -----------------------------------------------------------------
    def run(
        self,
        url: str,
        stop: threading.Event,
        ready: threading.Event | None = None,
        client_id: str = "glovewatch-ingester",
        ack_every_s: float = 0.2,
    ) -> IngestStats:
        """Subscribe and apply messages until ``stop`` is set; reconnects by itself."""
        address = BrokerAddress.parse(url)
        client = make_client(address, client_id, persistent=True)
        connected = threading.Event()

        def on_connect(c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if reason.is_failure:
                log.warning("the broker refused the ingester: %s", reason)
                return
            c.subscribe([(t, 1) for t in SUBSCRIPTIONS])
            connected.set()
            log.info("ingester connected to %s:%s", address.host, address.port)

        def on_subscribe(_c: Any, _u: Any, _mid: Any, _codes: Any, _p: Any) -> None:
            if ready is not None:
                ready.set()

        def on_disconnect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            connected.clear()
            if not stop.is_set():
                log.warning("ingester lost the broker (%s); reconnecting", reason)

        def on_message(_c: Any, _u: Any, msg: Any) -> None:
            try:
                self.apply(msg.topic, msg.payload)
            except Exception:  # a store error: not acknowledged, so the worker resends it
                self._count("failed")
                log.exception("message on %s could not be written", msg.topic)

        client.on_connect, client.on_subscribe = on_connect, on_subscribe
        client.on_disconnect, client.on_message = on_disconnect, on_message
        client.connect_async(address.host, address.port, keepalive=10)
        client.loop_start()
        last_prune = time.monotonic()
        try:
            while not stop.wait(ack_every_s):
                self._send_acks(client, connected)
                if time.monotonic() - last_prune > 3600:
                    last_prune = time.monotonic()
                    try:
                        self.prune()
                    except Exception:
                        log.exception("pruning applied message ids failed")
            self._send_acks(client, connected)
            time.sleep(0.2)
        finally:
            client.disconnect()
            client.loop_stop()
        return self.stats()

    def _send_acks(self, client: Any, connected: threading.Event) -> None:
        if not connected.is_set():
            return  # kept: acknowledged when the broker is back (or the worker resends)
        for worker, ids in self.take_acks().items():
            for i in range(0, len(ids), 500):
                client.publish(m.topic(worker, "acks"), m.encode_acks(ids[i : i + 500]), qos=1)
