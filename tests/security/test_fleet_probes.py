"""Issue 18's fleet probes, replayed against a real Mosquitto, the real ingester and a real
store (SQLite, then PostgreSQL): each is refused or harmless, and nothing already stored is
lost. Most run on an open broker (anyone may connect and publish: the worst case, and what a
broker without ``core fleet mosquitto-config`` allows); the last ones on the broker with the
generated accounts and ACL.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from core.analytics import history as h
from core.analytics.retention import run_retention
from core.comms import messages as m
from core.comms.bus import MqttSink
from core.events.sinks import EpisodeEvent
from core.pipeline.broker import find_mosquitto
from core.storage import open_store
from core.storage.events import EventRow
from core.storage.filters import HistoryFilter
from core.storage.fleet import CameraRow, WorkerRow
from tests.pipeline.support import coverage_totals, events, sessions, wait_for
from tests.security.fleet import (
    DAY,
    HOST,
    KEY,
    PID,
    camera_run,
    connect_reason,
    cover,
    credential,
    fleet,
    message_bytes,
    row,
    snapshot,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        find_mosquitto() is None,
        reason="mosquitto is not installed (Debian: apt-get install mosquitto); CI installs it",
    ),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request, store):
    if request.param == "sqlite":
        return store
    return open_store(request.getfixturevalue("pg_url"))


def test_a_forged_unsigned_episode_from_a_stranger_never_reaches_the_store(any_store, tmp_path):
    with fleet(any_store, tmp_path) as f:
        ghost = camera_run("intruder", "no-such-camera", "x1")
        for worker, run in (("intruder", ghost), ("w1", camera_run(camera="no-such-camera"))):
            body = m.episode_message(run, EpisodeEvent("new", f"{run.key_prefix}:1", row()), 0)
            f.publish(m.topic(worker, "episodes"), body.encode())
        f.wait_seen(2)
        assert snapshot(any_store) == f.before
        letters = any_store.fleet.dead_letters()
        assert {d.topic for d in letters} >= {"glovewatch/intruder/episodes"}
        assert all(d.reason.startswith("refused") for d in letters)


def test_a_forged_end_cannot_rewrite_another_workers_episode(any_store, tmp_path):
    with fleet(any_store, tmp_path) as f:
        forged = EpisodeEvent("end", KEY, row(59.0, "closed", severity="critical"))
        end_w1 = m.episode_message(camera_run(), forged, 0).encode()
        topic_w1 = m.topic("w1", "episodes")
        f.publish(topic_w1, end_w1)  # unsigned
        f.publish(topic_w1, f.signed("w2", topic_w1, end_w1))  # another worker's key
        f.wait_seen(2)
        topic_w2 = m.topic("w2", "episodes")
        f.publish(topic_w2, f.signed("w2", topic_w2, end_w1))  # names w1 on w2's topic
        own_run = camera_run("w2")
        steal = m.episode_message(own_run, forged, 0).encode()  # w2's run, w1's key
        f.publish(topic_w2, f.signed("w2", topic_w2, steal))
        f.wait_seen(2, "rejected")
        assert snapshot(any_store) == f.before
        assert events(any_store)[0].state == "open"


def test_a_forged_retained_offline_status_ends_nothing_even_after_a_restart(any_store, tmp_path):
    with fleet(any_store, tmp_path) as f:
        will = m.Status(
            WorkerRow("w1", "offline", HOST), (CameraRow("cam-1", "Saw 01", "stopped"),), PID
        )
        f.publish(m.topic("w1", "status"), will.encode(), retain=True)
        f.wait_seen(1)
        f.stop_ingester()
        f.start_ingester("ingest-after-restart")  # gets the retained forgery again
        f.wait_seen(1)
        time.sleep(0.3)
        assert snapshot(any_store) == f.before
        assert [s.status for s in sessions(any_store)] == ["running"]


def test_forged_acks_make_no_worker_drop_a_message(any_store, tmp_path):
    """With the ingester away, a stranger acknowledges w1's pending messages (unsigned, and
    signed with another worker's key): w1 keeps them and they all land when it is back."""
    with fleet(any_store, tmp_path) as f:
        f.stop_ingester()
        pub = f.worker
        assert pub is not None
        out = MqttSink(pub, camera_run("w1", run="r2"))
        for n in range(1, 4):
            out.episode(EpisodeEvent("end", f"w1/cam-1/r2:{n}", row(float(n), "closed")))
        out.coverage("Saw 01", None, cover(20, 21))
        time.sleep(0.5)
        pending = [p.id for p in pub.outbox.due(time.monotonic() + 999, 0, 100)]
        assert len(pending) == 4
        acks = m.encode_acks("w1", pending)
        topic = m.topic("w1", "acks")
        f.publish(topic, acks)
        f.publish(topic, f.signed("w2", topic, acks))
        time.sleep(1.0)
        assert len(pub.outbox) == 4  # nothing forgotten
        f.start_ingester("ingest-back")
        assert pub.flush(20)
        keys_now = {e.event_key for e in events(any_store)}
        assert keys_now == {KEY, "w1/cam-1/r2:1", "w1/cam-1/r2:2", "w1/cam-1/r2:3"}
        assert coverage_totals(any_store, "Saw 01")[0] == 5.0


def test_evidence_paths_in_messages_are_rejected_and_retention_deletes_nothing_else(
    any_store, tmp_path, gw_home
):
    """Even w1's own key cannot name a file: a path is not an evidence reference. Rows that
    already name the store file, a promoted model, a symlink out or a '..' path (written
    before this check existed) lose nothing to retention."""
    model = gw_home / "runs" / "promoted" / "best.pt"
    outside = tmp_path / "elsewhere.jpg"
    for p in (model, outside):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"keep me")
    with fleet(any_store, tmp_path) as f:
        assert f.worker is not None
        topic = m.topic("w1", "episodes")
        for n, path in enumerate((str(model), "/etc/passwd", "../glovewatch.sqlite"), 2):
            body = message_bytes(camera_run(), "new", f"w1/cam-1/r1:{n}", evidence_path=path)
            f.publish(topic, f.signed("w1", topic, body))
        f.wait_seen(3, "rejected")
        assert snapshot(any_store) == f.before
        assert any("evidence" in d.reason for d in any_store.fleet.dead_letters())
    link = gw_home / "evidence" / DAY / "link.jpg"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside)
    store_file = gw_home / "glovewatch.sqlite"
    old = "2000-01-01 10:00:00"
    for path in (store_file, model, link, gw_home / "evidence" / ".." / "glovewatch.sqlite"):
        any_store.events.insert(EventRow("Saw 01", old, evidence_path=str(path)))
    rep = run_retention(any_store, days=1)
    assert rep.files_removed == 0 and rep.files_outside_home == 4
    assert store_file.exists() and model.read_bytes() == b"keep me" and outside.exists()


BAD_ROWS = {
    "year -1": {"started_at": "-0001-01-01 00:00:00"},
    "year 9999": {"started_at": "9999-12-31 23:59:59", "ended_at": "9999-12-31 23:59:59"},
    "not a time": {"started_at": "not a time"},
    "negative duration": {"duration_s": -5.0},
    "NaN": {"duration_s": math.nan},
    "Inf": {"peak_conf": math.inf},
    "unknown severity": {"severity": "apocalyptic"},
    "10 kB class": {"class_name": "x" * 10_000},
}


def test_bad_values_are_rejected_acknowledged_and_history_still_reads(any_store, tmp_path):
    """Each bad value is not applied, acknowledged as rejected (w1's outbox empties, so it
    is not resent forever), kept as a dead letter with its reason; History reads as before."""
    f_all = HistoryFilter(date.fromisoformat(DAY), date.today())
    with fleet(any_store, tmp_path) as f:
        pub = f.worker
        assert pub is not None
        before = h.kpis(any_store, f_all).total
        for n, bad in enumerate(BAD_ROWS.values(), 2):
            raw = message_bytes(camera_run(), "new", f"w1/cam-1/r1:{n}", **bad)
            pub.outbox.add(json.loads(raw)["id"], m.topic("w1", "episodes"), raw)
        nan_cover = m.coverage_message(camera_run(), "Saw 01", cover(30), 0.0)
        nan_cover.body["rows"][0][1] = math.nan
        pub.outbox.add(nan_cover.id, nan_cover.topic, nan_cover.encode())
        assert pub.flush(20), "rejected messages must be acknowledged"
        assert f.ingester is not None and f.ingester.stats().rejected == len(BAD_ROWS) + 1
        assert snapshot(any_store) == f.before
        assert h.kpis(any_store, f_all).total == before
        reasons = [d.reason for d in any_store.fleet.dead_letters()]
        assert len(reasons) == len(BAD_ROWS) + 1 and all(reasons)


def test_a_10_mib_station_name_is_refused_unread(any_store, tmp_path):
    with fleet(any_store, tmp_path) as f:
        run = camera_run()
        huge = replace(run, session=replace(run.session, station="S" * (10 << 20)))
        body = m.coverage_message(huge, "S" * (10 << 20), cover(40), 0.0).encode()
        topic = m.topic("w1", "coverage")
        for payload in (body, f.signed("w1", topic, body)):
            f.publish(topic, payload)
        f.wait_seen(2)
        assert snapshot(any_store) == f.before
        assert all(len(d.excerpt or "") <= 300 for d in any_store.fleet.dead_letters())


def test_coverage_replayed_under_new_ids_counts_once(any_store, tmp_path):
    with fleet(any_store, tmp_path) as f:
        topic = m.topic("w1", "coverage")
        for _ in range(3):  # the same seconds, each time a new message id (signed by w1)
            again = m.coverage_message(camera_run(), "Saw 01", cover(1, 2, 3), 0.0)
            f.publish(topic, f.signed("w1", topic, again.encode()))
        assert f.ingester is not None
        wait_for(lambda: f.ingester.stats().applied >= 5, 15, "the replays")  # type: ignore[union-attr]
        assert coverage_totals(any_store, "Saw 01") == f.before[1] == (3.0, 0.0, 3.0)


def test_the_generated_broker_refuses_strangers_and_confines_each_worker(any_store, tmp_path):
    """With the accounts and ACL of core fleet mosquitto-config: no anonymous client, and a
    real worker can neither publish under another's topics nor read another's acks."""
    with fleet(any_store, tmp_path, users=True) as f:
        w2 = credential(any_store, "w2")
        creds = ("w2", w2.mqtt_password)
        assert "authori" in connect_reason(f.broker.url, None).lower()
        assert "authori" in connect_reason(f.broker.url, ("w1", w2.mqtt_password)).lower()
        assert connect_reason(f.broker.url, creds) == "Success"
        topic = m.topic("w1", "episodes")
        forged = m.episode_message(camera_run(), EpisodeEvent("end", KEY, row(9.0, "closed")), 0)
        f.publish(topic, f.signed("w2", topic, forged.encode()), user=creds)
        time.sleep(1.0)
        assert f.ingester is not None and f.ingester.stats().refused == 0  # the ACL dropped it
        assert snapshot(any_store) == f.before
        got: list[bytes] = []
        spy = f.publisher("w2", "w2.jsonl")
        spy.client.on_message = lambda _c, _u, msg: got.append(msg.payload)
        spy.client.subscribe(m.topic("w1", "acks"), qos=1)
        time.sleep(0.3)
        assert f.worker is not None
        MqttSink(f.worker, camera_run()).coverage("Saw 01", None, cover(50))
        assert f.worker.flush(15)  # w1 got its ack ...
        time.sleep(0.5)
        assert got == []  # ... and w2 saw none of it
        spy.close(timeout_s=0.5)
    assert (tmp_path / "broker" / "passwd").stat().st_mode & 0o077 == 0


def test_a_real_worker_passes_every_check_through_the_generated_broker(store, tmp_path, gw_home):
    """The checks are not stricter than the product: a real ``core worker`` (a moving clip,
    the shipped model) through the broker with accounts and ACL has nothing refused or
    rejected, and its evidence lands inside the ingester's evidence store."""
    import subprocess
    import threading

    from core.comms import auth, keys
    from core.comms.ingest import Ingester
    from core.pipeline.broker import Mosquitto
    from core.pipeline.fleetbench import camera_yaml, child_env, python_core, scene_clips

    cred = keys.issue_in(store, gw_home, "line-9")
    secret = auth.load_secret(gw_home)
    broker = Mosquitto(tmp_path / "broker", users=keys.broker_accounts(store, secret)).start()
    _, moving = scene_clips(tmp_path / "clips")
    cfg = tmp_path / "line-9.yaml"
    cfg.write_text(camera_yaml("line-9", [("cam a", moving[0])], 5.0, "pytorch", 320, True, None))
    ing = Ingester(store, secret, gw_home / "evidence")
    stop, ready = threading.Event(), threading.Event()
    th = threading.Thread(target=ing.run, args=(broker.url, stop, ready), daemon=True)
    th.start()
    try:
        assert ready.wait(15)
        env = {**child_env(gw_home, store.url, broker.url), "GLOVEWATCH_WORKER_KEY": cred}
        done = subprocess.run(
            python_core("worker", "--config", str(cfg), "--seconds", "20", "--json"),
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        wait_for(lambda: store.fleet.workers()[0].status == "stopped", 15, "its final status")
    finally:
        stop.set()
        th.join(15)
        broker.stop()
    stats = ing.stats()
    assert (stats.rejected, stats.refused, stats.failed) == (0, 0, 0)
    assert stats.applied > 0 and stats.statuses > 0 and store.fleet.dead_letters() == []
    # episodes depend on the model's pace on a loaded machine; those there kept their evidence
    # inside the ingester's evidence store
    assert all(
        e.evidence_path is None or Path(e.evidence_path).is_relative_to(gw_home / "evidence")
        for e in events(store)
    )
