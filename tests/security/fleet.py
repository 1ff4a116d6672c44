"""A small real fleet for the probes: a real Mosquitto, the real ingester in a thread, a real
store (SQLite or PostgreSQL) and worker ``w1`` that has already recorded an open episode,
coverage and a heartbeat, with ``snapshot`` of what the store held before a probe. Probes
then publish as an attacker on the plant network would: any client on the broker."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from core.comms import auth, keys
from core.comms import messages as m
from core.comms.bus import BrokerAddress, BusPublisher, MqttSink, make_client
from core.comms.ingest import Ingester
from core.comms.outbox import Outbox
from core.events.sinks import EpisodeEvent
from core.pipeline.broker import Mosquitto
from core.storage import Store
from core.storage.coverage import CoverageRow
from core.storage.events import EventRow
from core.storage.fleet import CameraRow, WorkerRow
from core.storage.sessions import SessionInfo
from tests.pipeline.support import coverage_totals, events, sessions, wait_for

SECRET = bytes(range(100, 132))
HOST, PID = "line-1", 4242
DAY = (date.today() - timedelta(days=1)).isoformat()
KEY = "w1/cam-1/r1:1"  # w1's open episode


def session_info(station: str = "Saw 01", camera: str = "cam-1") -> SessionInfo:
    return SessionInfo("stream", camera, station, "m.pt", "ab" * 32, 0.25, 0.7, 320)


def camera_run(worker: str = "w1", camera: str = "cam-1", run: str = "r1") -> m.CameraRun:
    return m.CameraRun(worker, camera, run, HOST, PID, session_info(camera=camera))


def row(duration: float = 2.0, state: str = "open", **kw: Any) -> EventRow:
    return EventRow(
        "Saw 01",
        f"{DAY} 10:00:00",
        f"{DAY} 10:00:{int(duration):02d}",
        duration,
        source="cam-1",
        class_name="hand",
        peak_conf=0.8,
        state=state,
        **kw,
    )


def cover(*seconds: int) -> list[CoverageRow]:
    return [CoverageRow(f"{DAY} 10:00:{s:02d}", 1.0, 1.0, 1, 0.0, 1.0) for s in seconds]


def credential(store: Store, worker: str = "w1") -> auth.Credential:
    """``worker``'s key: issued once, as core fleet add-worker does."""
    rec = store.fleet.worker_key(worker)
    if rec is None:
        return keys.issue(store, SECRET, worker)
    return auth.Credential(worker, auth.derive_key(SECRET, worker, rec.generation))


def snapshot(store: Store) -> tuple[Any, ...]:
    """What a probe must leave as it was: episodes, coverage, sessions, workers, cameras."""
    return (
        [(e.event_key, e.state, e.duration_s, e.severity, e.class_name) for e in events(store)],
        coverage_totals(store, "Saw 01"),
        [(s.id, s.status, s.host, s.pid) for s in sessions(store)],
        [(w.name, w.status) for w in store.fleet.workers()],
        [(c.name, c.worker, c.status, c.station) for c in store.fleet.cameras()],
    )


@dataclass
class Fleet:
    store: Store
    broker: Mosquitto
    tmp: Path
    ingester: Ingester | None = None
    worker: BusPublisher | None = None
    before: tuple[Any, ...] = ()
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start_ingester(self, client_id: str = "ingest-probe") -> Ingester:
        ing = Ingester(self.store, SECRET, self.tmp / "evidence")
        self._stop, ready = threading.Event(), threading.Event()
        self._thread = threading.Thread(
            target=ing.run,
            args=(self.broker.url, self._stop, ready),
            kwargs={"client_id": client_id, "ack_every_s": 0.05},
            daemon=True,
        )
        self._thread.start()
        assert ready.wait(15), "the ingester did not subscribe"
        self.ingester = ing
        return ing

    def stop_ingester(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)

    def publish(
        self, topic: str, payload: bytes, retain: bool = False, user: tuple[str, str] | None = None
    ) -> None:
        """Publish as any other client on the broker would."""
        addr = BrokerAddress.parse(self.broker.url)
        client = make_client(addr, f"probe-{time.monotonic_ns()}", False)
        if user is not None:
            client.username_pw_set(*user)
        client.connect(addr.host, addr.port)
        client.loop_start()
        client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()

    def signed(self, worker: str, topic: str, body: bytes) -> bytes:
        return auth.seal(credential(self.store, worker).key, topic, body, time.time())

    def wait_seen(self, n: int, what: str = "refused") -> None:
        """Until the ingester counted ``n`` more messages as ``what`` than before."""
        assert self.ingester is not None
        wait_for(lambda: getattr(self.ingester.stats(), what) >= n, 15, f"{n} {what}")

    def publisher(self, worker: str = "w1", journal: str = "w1.jsonl") -> BusPublisher:
        cred = credential(self.store, worker)
        pub = BusPublisher(self.broker.url, cred, Outbox(self.tmp / journal), PID, 0.5).start()
        assert pub.wait_connected(10)
        return pub


@contextmanager
def fleet(store: Store, tmp: Path, users: bool = False) -> Iterator[Fleet]:
    """The fleet with w1's episode, coverage and heartbeat stored (``users``: the broker with
    the accounts and ACL of ``core fleet mosquitto-config``; else an open broker, the worst
    case: anyone can publish anything)."""
    credential(store, "w1"), credential(store, "w2")
    accounts = keys.broker_accounts(store, SECRET) if users else None
    broker = Mosquitto(tmp / "broker", users=accounts).start()
    f = Fleet(store, broker, tmp)
    try:
        f.start_ingester()
        f.worker = pub = f.publisher()
        sink = MqttSink(pub, camera_run())
        sink.episode(EpisodeEvent("new", KEY, row()))
        sink.coverage("Saw 01", None, cover(1, 2, 3))
        pub.status(
            m.Status(
                WorkerRow("w1", "online", HOST),
                (CameraRow("cam-1", "Saw 01", "live", "w1"),),
                PID,
            )
        )
        assert pub.flush(15)
        wait_for(lambda: bool(store.fleet.workers()), 10, "w1's heartbeat")
        f.before = snapshot(store)
        yield f
    finally:
        if f.worker is not None:
            f.worker.close(timeout_s=0.5)
        f.stop_ingester()
        broker.stop()


def message_bytes(run: m.CameraRun, kind: str, key: str, **values: Any) -> bytes:
    """An episode message whose row holds ``values`` over a sane one (NaN and all)."""
    body = {"kind": kind, "key": key, "row": {**asdict(row()), **values}}
    return json.dumps(
        {"id": m.new_id(), "type": "episode", "run": run.as_dict(), "sent_at": 0.0, "body": body}
    ).encode()


def connect_reason(url: str, user: tuple[str, str] | None) -> str:
    """What the broker answers a client logging in as ``user`` (None: anonymous)."""
    addr = BrokerAddress.parse(url)
    client = make_client(addr, f"probe-{time.monotonic_ns()}", False)
    if user is not None:
        client.username_pw_set(*user)
    said: list[str] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: said.append(str(reason))
    client.connect_async(addr.host, addr.port)
    client.loop_start()
    try:
        wait_for(lambda: bool(said), 10, "the broker's answer")
    finally:
        client.disconnect()
        client.loop_stop()
    return said[0]
