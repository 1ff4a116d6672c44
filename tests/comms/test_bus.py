"""The event bus: workers publish episodes, coverage and heartbeats over MQTT; one ingester
applies each message exactly once to the real store. Every worker here has a key issued as
``core fleet add-worker`` issues it, and every message is signed (tests/security tries what
happens when it is not).

Tests with a broker start a real Mosquitto on a free loopback port (they skip, saying so,
where the binary is not installed; CI installs it). The episode events are made by hand:
what is tested is the transport and the store, not the model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import pytest

from core.comms import auth, checks
from core.comms import messages as m
from core.comms.bus import BrokerAddress, BusPublisher, MqttSink, make_client
from core.comms.ingest import Ingester
from core.comms.outbox import Outbox, read_journal
from core.events.sinks import EpisodeEvent, StoreSink
from core.pipeline.broker import Mosquitto, find_mosquitto, free_port
from core.storage.coverage import CoverageRow
from core.storage.events import EventRow
from core.storage.fleet import CameraRow, WorkerRow
from core.storage.sessions import SessionInfo
from tests.conftest import ROOT
from tests.pipeline.support import coverage_totals, events, sessions, wait_for
from tests.security.fleet import DAY, SECRET, cover, credential, row

HOST, PID = "worker-host", 4242
SESSION = SessionInfo("stream", "cam-1", "Saw 01", "m.pt", "ab" * 32, 0.25, 0.7, 320)


def _run(run: str = "r1", worker: str = "w1", camera: str = "cam-1", pid: int = PID) -> m.CameraRun:
    return m.CameraRun(worker, camera, run, HOST, pid, SESSION)


def _signed(cred: auth.Credential, topic: str, body: bytes) -> bytes:
    return auth.seal(cred.key, topic, body, time.time())


def _apply(ing: Ingester, cred: auth.Credential, msg: m.Message | m.Status, topic: str = "") -> str:
    """Sign ``msg`` as ``cred``'s worker and hand it to the ingester."""
    topic = topic or (msg.topic if isinstance(msg, m.Message) else m.topic(cred.worker, "status"))
    return ing.apply(topic, _signed(cred, topic, msg.encode()))


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request, store):
    """The test's SQLite store, then a PostgreSQL one (skips where PostgreSQL is absent)."""
    if request.param == "sqlite":
        return store
    from core.storage import open_store

    return open_store(request.getfixturevalue("pg_url"))


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A private Mosquitto on a free loopback port."""
    if find_mosquitto() is None:
        pytest.skip(
            "mosquitto is not installed (Debian: apt-get install mosquitto); CI "
            "installs it and runs these tests"
        )
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


@contextmanager
def ingesting(store, url: str, client_id: str = "ingest-test") -> Iterator[Ingester]:
    """An ingester applying messages in a thread while the block runs."""
    ing = Ingester(store, SECRET)
    stop, ready = threading.Event(), threading.Event()
    th = threading.Thread(
        target=ing.run,
        args=(url, stop, ready),
        kwargs={"client_id": client_id, "ack_every_s": 0.05},
        daemon=True,
    )
    th.start()
    assert ready.wait(15), "the ingester did not subscribe"
    try:
        yield ing
    finally:
        stop.set()
        th.join(15)


def _publisher(
    store, url: str, outbox: Path | None = None, worker: str = "w1", resend_after_s: float = 1.0
) -> BusPublisher:
    return BusPublisher(url, credential(store, worker), Outbox(outbox), PID, resend_after_s).start()


def _raw_publish(url: str, topic: str, payload: bytes, retain: bool = False) -> None:
    """Publish as another client would (to deliver a message a second time on purpose)."""
    client = make_client(BrokerAddress.parse(url), f"raw-{time.monotonic_ns()}", False)
    client.connect(BrokerAddress.parse(url).host, BrokerAddress.parse(url).port)
    client.loop_start()
    client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


# ---------------------------------------------------------------------------- no broker needed


def test_messages_round_trip_and_bad_ones_are_refused(store):
    run = _run()
    ev = EpisodeEvent("end", "w1/cam-1/r1:1", row(3.0, "closed"))
    msg = m.episode_message(run, ev, 1234.5)
    back = checks.message("w1", "episodes", msg.encode())  # as the ingester reads it
    window = checks.Window(datetime.now())
    assert back.run == run and checks.episode(back, window) == ev
    assert msg.topic == "glovewatch/w1/episodes"
    cov = m.coverage_message(run, "Saw 01", cover(1, 2), 1.0)
    back = checks.message("w1", "coverage", cov.encode())
    assert checks.coverage(back, window) == ("Saw 01", cover(1, 2))
    ing, w2 = Ingester(store, SECRET), credential(store, "w2")
    credential(store, "w1")
    assert ing.apply("glovewatch/w1/episodes", b"{not json") == "refused"
    assert ing.apply("glovewatch/w1/episodes", msg.encode()) == "refused"  # unsigned
    assert _apply(ing, w2, msg, "glovewatch/w2/episodes") == "rejected"  # names w1
    assert ing.apply("other/topic", msg.encode()) == "refused"
    assert events(store) == []
    with pytest.raises(Exception, match="cannot be used"):
        m.check_worker_name("line/1")


def test_each_message_is_applied_once_even_when_delivered_twice(any_store):
    """The ingester without MQTT: new/update/end and coverage, each delivered twice, and an
    update delivered again after the end (a resend) leaves the closed episode as it was."""
    store = any_store
    ing, run, key, cred = Ingester(store, SECRET), _run(), "w1/cam-1/r1:1", credential(store)
    new = m.episode_message(run, EpisodeEvent("new", key, row(1.0)), time.time())
    upd = m.episode_message(run, EpisodeEvent("update", key, row(2.0)), time.time())
    end = m.episode_message(run, EpisodeEvent("end", key, row(3.0, "closed")), time.time())
    cov = m.coverage_message(run, "Saw 01", cover(1, 2, 3), time.time())
    outcomes = [_apply(ing, cred, msg) for msg in (new, new, upd, end, end, upd)]
    assert outcomes == ["applied", "duplicate", "applied", "applied", "duplicate", "duplicate"]
    assert [_apply(ing, cred, cov) for _ in range(2)] == [
        "applied",
        "duplicate",
    ]
    (ep,) = events(store)
    assert (ep.event_key, ep.state, ep.duration_s) == (key, "closed", 3.0)
    assert coverage_totals(store, "Saw 01") == (3.0, 0.0, 3.0)
    (s,) = sessions(store)
    assert (s.host, s.pid, s.source, ep.session_id) == (HOST, PID, "cam-1", s.id)
    assert json.loads(s.params_json)["run"] == "r1"
    acks = ing.take_acks()["w1"]
    assert set(acks) == {new.id, upd.id, end.id, cov.id}  # duplicates acknowledged again too
    # a restarted ingester (nothing in memory) still knows both
    again = Ingester(store, SECRET)
    assert _apply(again, cred, upd) == "applied"  # first time for this process ...
    assert _apply(again, cred, cov) == "duplicate"
    assert events(store)[0].duration_s == 3.0  # ... and it changed nothing
    assert coverage_totals(store, "Saw 01") == (3.0, 0.0, 3.0)


def test_status_messages_keep_rows_and_a_dead_worker_is_wound_up(any_store):
    """Heartbeats update the worker's and cameras' rows; its last will (offline) ends its
    sessions and closes the episodes it left open, at their last sighting."""
    store = any_store
    ing, run, cred = Ingester(store, SECRET), _run(), credential(store)
    new = m.episode_message(run, EpisodeEvent("new", "w1/cam-1/r1:1", row(2.0)), 0.0)
    assert _apply(ing, cred, new) == "applied"
    for analysed in (3, 9):
        beat = m.Status(
            WorkerRow("w1", "online", HOST, "2026-03-02 09:00:00"),
            (CameraRow("cam-1", "Saw 01", "live", "w1", "rtsp://c", 5.0, analysed, 2),),
            PID,
        )
        assert _apply(ing, cred, beat) == "status"
    (w,) = store.fleet.workers()
    (c,) = store.fleet.cameras()
    assert (w.name, w.status, w.host, w.started_at) == ("w1", "online", HOST, "2026-03-02 09:00:00")
    assert (c.name, c.status, c.analysed, c.skipped, c.fps) == ("cam-1", "live", 9, 2, 5.0)
    assert events(store)[0].state == "open"
    will = m.Status(
        WorkerRow("w1", "offline", HOST), (CameraRow("cam-1", "Saw 01", "disconnected", "w1"),), PID
    )
    assert _apply(ing, cred, will) == "status"
    assert store.fleet.workers()[0].status == "offline"
    assert store.fleet.cameras()[0].status == "disconnected"
    (s,) = sessions(store)
    assert s.status == "interrupted"
    ep = events(store)[0]
    assert (ep.state, ep.ended_at, ep.duration_s) == ("closed", f"{DAY} 10:00:02", 2.0)


def test_history_and_home_show_the_cameras_of_every_worker(any_store):
    """What two workers sent lands in the figures History and Home read (by station)."""
    store = any_store
    from core.analytics.history import per_station
    from core.storage.filters import HistoryFilter

    ing, today = Ingester(store, SECRET), date.today().isoformat()
    for worker, station in (("w1", "Saw 01"), ("w2", "Press 2")):
        cred = credential(store, worker)
        run = m.CameraRun(
            worker,
            f"{worker}-cam",
            "r1",
            HOST,
            PID,
            SessionInfo("stream", f"{worker}-cam", station, "m.pt", "ab" * 32, 0.25, 0.7, 320),
        )
        row = EventRow(
            station,
            f"{today} 10:00:00",
            f"{today} 10:00:04",
            4.0,
            source=f"{worker}-cam",
            class_name="hand",
            state="closed",
        )
        for msg in (
            m.episode_message(run, EpisodeEvent("end", f"{worker}/{worker}-cam/r1:1", row), 0.0),
            m.coverage_message(
                run,
                station,
                [CoverageRow(f"{today} 10:00:0{s}", 1.0, 1.0, 1, 1.0, 0.0) for s in range(3)],
                0.0,
            ),
        ):
            assert _apply(ing, cred, msg) == "applied"
    stats = {s.key[0]: s for s in per_station(store, HistoryFilter(date.today(), date.today()))}
    assert {k: (s.episodes, s.watched_s) for k, s in stats.items()} == {
        "Saw 01": (1, 3.0),
        "Press 2": (1, 3.0),
    }
    day = store.sessions.day_summary()
    assert (day.sessions, day.events) == (2, 2)


def test_store_sink_update_after_end_changes_nothing(store):
    sink = StoreSink(store)
    sink.episode(EpisodeEvent("new", "k1", row(1.0)))
    sink.episode(EpisodeEvent("end", "k1", row(5.0, "closed")))
    for fresh in (sink, StoreSink(store)):  # this sink, and one that never saw the episode
        fresh.episode(EpisodeEvent("update", "k1", row(2.0)))
        fresh.episode(EpisodeEvent("new", "k1", row(1.0)))
    (ep,) = events(store)
    assert (ep.state, ep.duration_s, ep.ended_at) == ("closed", 5.0, f"{DAY} 10:00:05")


def test_outbox_keeps_unacknowledged_messages_across_a_restart(tmp_path):
    path = tmp_path / "w1.jsonl"
    box = Outbox(path)
    for i in range(5):
        box.add(f"id{i}", "glovewatch/w1/coverage", json.dumps({"n": i}).encode())
    assert box.ack(["id0", "id2", "nope"]) == 2
    box.close()
    again = Outbox(path)  # the worker started again
    assert [p.id for p in again.due(time.monotonic(), 30, 100)] == ["id1", "id3", "id4"]
    again.sent("id1", time.monotonic())
    assert [p.id for p in again.due(time.monotonic(), 30, 100)] == ["id3", "id4"]
    assert [p.id for p in again.due(time.monotonic() + 31, 30, 100)] == ["id1", "id3", "id4"]
    messages, acked = read_journal(path)  # the full history of what was emitted
    assert [x["n"] for x in messages] == [0, 1, 2, 3, 4] and acked == {"id0", "id2"}
    full = Outbox(tmp_path / "small.jsonl", max_pending=2)
    for i in range(3):
        full.add(f"x{i}", "t", b"{}")
    assert full.stats().dropped == 1 and len(full) == 2


def test_broker_addresses():
    assert BrokerAddress.parse("mqtt://127.0.0.1") == BrokerAddress("127.0.0.1", 1883)
    a = BrokerAddress.parse("mqtts://u:p%40ss@broker.plant:8884")
    assert (a.host, a.port, a.tls, a.username, a.password) == (
        "broker.plant",
        8884,
        True,
        "u",
        "p@ss",
    )
    with pytest.raises(Exception, match="not a broker address"):
        BrokerAddress.parse("http://x")


# --------------------------------------------------------------------------- a real broker


def test_published_episodes_and_coverage_land_once_despite_a_duplicate(any_store, broker, tmp_path):
    store = any_store
    run, key = _run(), "w1/cam-1/r1:7"
    with ingesting(store, broker.url) as ing:
        pub = _publisher(store, broker.url, tmp_path / "w1.jsonl")
        assert pub.wait_connected(10)
        sink = MqttSink(pub, run)
        sink.episode(EpisodeEvent("new", key, row(1.0)))
        sink.episode(EpisodeEvent("update", key, row(2.0)))
        sink.coverage("Saw 01", None, cover(1, 2))
        sink.episode(EpisodeEvent("end", key, row(4.0, "closed")))
        assert pub.flush(15), "the ingester did not acknowledge everything"
        # the same update and coverage delivered a second time, on purpose
        sent, _ = read_journal(tmp_path / "w1.jsonl")
        for msg in (sent[1], sent[2]):  # replayed by the worker itself (signed)
            topic = m.topic("w1", "episodes" if msg["type"] == "episode" else "coverage")
            _raw_publish(
                broker.url, topic, _signed(credential(store), topic, json.dumps(msg).encode())
            )
        wait_for(lambda: ing.stats().duplicates >= 2, 15, "both duplicates to arrive")
        stats = ing.stats()
        pub.close(timeout_s=2)
    (ep,) = events(store)
    assert (ep.event_key, ep.state, ep.duration_s) == (key, "closed", 4.0)
    assert coverage_totals(store, "Saw 01") == (2.0, 0.0, 2.0)
    assert stats.applied == 4 and stats.failed == 0 and stats.latency_n == 1
    assert store.fleet.applied(sent[2]["id"])


def test_messages_sent_while_the_ingester_is_down_arrive_when_it_is_back(store, broker, tmp_path):
    """The ingester's persistent session keeps what came while it was away; the worker's
    resends of the same messages (unacknowledged meanwhile) change nothing."""
    with ingesting(store, broker.url, "ingest-persist"):
        pass  # subscribed once: the broker now keeps its session
    pub = _publisher(store, broker.url, tmp_path / "w1.jsonl", resend_after_s=0.5)
    assert pub.wait_connected(10)
    sink = MqttSink(pub, _run())
    for n in range(1, 4):
        sink.episode(EpisodeEvent("new", f"w1/cam-1/r1:{n}", row(1.0)))
        sink.episode(EpisodeEvent("end", f"w1/cam-1/r1:{n}", row(2.0 + n, "closed")))
        sink.coverage("Saw 01", None, cover(n))
    time.sleep(1.5)  # unacknowledged: sent again at least once meanwhile
    assert len(pub.outbox) == 9
    with ingesting(store, broker.url, "ingest-persist") as ing:  # back, with a new process
        assert pub.flush(15)
        stats = ing.stats()
    pub.close(timeout_s=2)
    assert sorted(e.duration_s for e in events(store)) == [3.0, 4.0, 5.0]
    assert all(e.state == "closed" for e in events(store))
    assert coverage_totals(store, "Saw 01") == (3.0, 0.0, 3.0)
    assert stats.duplicates >= 1  # the resends


def test_a_restarted_worker_sends_what_was_never_acknowledged(store, broker, tmp_path):
    """Messages emitted while no broker could be reached stay in the outbox journal; the
    worker started again sends them."""
    journal = tmp_path / "w1.jsonl"
    dead = _publisher(store, f"mqtt://127.0.0.1:{free_port()}", journal)  # nothing listens there
    sink = MqttSink(dead, _run("r-old"))
    sink.episode(EpisodeEvent("new", "w1/cam-1/r-old:1", row(1.0)))
    sink.coverage("Saw 01", None, cover(5, 6))
    assert not dead.close(timeout_s=0.5)  # stopped with both unacknowledged
    with ingesting(store, broker.url):
        pub = _publisher(store, broker.url, journal)
        assert pub.flush(15)
        pub.close(timeout_s=2)
    (ep,) = events(store)
    assert ep.event_key == "w1/cam-1/r-old:1" and ep.state == "open"
    assert coverage_totals(store, "Saw 01") == (2.0, 0.0, 2.0)


def test_messages_buffered_while_the_broker_is_down(store, broker, tmp_path):
    with ingesting(store, broker.url):
        pub = _publisher(store, broker.url, tmp_path / "w1.jsonl")
        assert pub.wait_connected(10)
        broker.kill()
        wait_for(lambda: not pub.connected, 10, "the worker to notice")
        sink = MqttSink(pub, _run())
        sink.episode(EpisodeEvent("new", "w1/cam-1/r1:1", row(1.0)))
        sink.episode(EpisodeEvent("end", "w1/cam-1/r1:1", row(6.0, "closed")))
        sink.coverage("Saw 01", None, cover(1, 2, 3))
        assert len(pub.outbox) == 3  # buffered, not lost
        broker.restart()
        assert pub.flush(30), "not delivered after the broker came back"
        pub.close(timeout_s=2)
    (ep,) = events(store)
    assert (ep.state, ep.duration_s) == ("closed", 6.0)
    assert coverage_totals(store, "Saw 01") == (3.0, 0.0, 3.0)


# A worker process: connects with its last will, sends a heartbeat and opens an episode,
# then waits to be killed.
_WORKER = """
import sys, time
from core.comms import messages as m
from core.comms.auth import Credential
from core.comms.bus import MqttOutlet
from core.events.sinks import EpisodeEvent
from core.storage.events import EventRow
from core.storage.fleet import CameraRow, WorkerRow
from core.storage.sessions import SessionInfo
import os, socket
out = MqttOutlet(sys.argv[1], Credential.parse(sys.argv[2]), os.getpid(), None)
cams = [CameraRow("cam-k", "Saw 01", "disconnected", "w-kill")]
out.start(WorkerRow("w-kill", "offline", socket.gethostname()), cams)
run = m.CameraRun("w-kill", "cam-k", "rk", socket.gethostname(), os.getpid(),
                  SessionInfo("stream", "cam-k", "Saw 01", "m.pt", "cd" * 32, .25, .7, 320))
sink, _ = out.open_camera(run)
out.heartbeat(WorkerRow("w-kill", "online", socket.gethostname(), heartbeat_at=None),
              [CameraRow("cam-k", "Saw 01", "live", "w-kill", fps=5.0, analysed=3)])
sink.episode(EpisodeEvent("new", "w-kill/cam-k/rk:1", EventRow(
    "Saw 01", sys.argv[3] + " 10:00:00", sys.argv[3] + " 10:00:02", 2.0, source="cam-k",
    state="open")))
print("sent", flush=True)
time.sleep(600)
"""


def test_retained_status_and_last_will_of_a_killed_worker(store, broker):
    with ingesting(store, broker.url):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER, broker.url, credential(store, "w-kill").text(), DAY],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "sent"
            wait_for(
                lambda: (
                    [(w.name, w.status) for w in store.fleet.workers()] == [("w-kill", "online")]
                    and events(store)
                ),
                20,
                "the worker online",
            )
            cam = store.fleet.cameras()[0]
            assert (cam.name, cam.status, cam.analysed) == ("cam-k", "live", 3)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            wait_for(lambda: store.fleet.workers()[0].status == "offline", 30, "the last will")
        finally:
            if proc.poll() is None:
                proc.kill()
        wait_for(lambda: events(store)[0].state == "closed", 10, "recovery of its episode")
    (s,) = sessions(store)
    assert (s.status, s.pid) == ("interrupted", proc.pid)
    ep = events(store)[0]
    assert (ep.ended_at, ep.duration_s) == (f"{DAY} 10:00:02", 2.0)  # its last sighting
    # anyone subscribing later gets the retained status: offline
    got: list[bytes] = []
    addr = BrokerAddress.parse(broker.url)
    client = make_client(addr, "late-viewer", False)
    client.on_message = lambda _c, _u, msg: got.append(msg.payload)
    client.connect(addr.host, addr.port)
    client.subscribe(m.topic("w-kill", "status"), qos=1)
    client.loop_start()
    try:
        wait_for(lambda: bool(got), 10, "the retained status")
    finally:
        client.disconnect()
        client.loop_stop()
    envelope = auth.unwrap(got[0])
    assert auth.verify(credential(store, "w-kill").key, m.topic("w-kill", "status"), envelope)
    will = checks.status("w-kill", envelope.body, checks.Window(datetime.now()))
    assert will.worker.status == "offline"
