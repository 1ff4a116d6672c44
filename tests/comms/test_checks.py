"""The schema of each message type and what the ingester does with a message that fails
it, or fails its signature (no broker: :meth:`Ingester.apply` on the real store)."""

from __future__ import annotations

import math
import time
from datetime import date, datetime, timedelta

import pytest

from core.comms import auth, checks, keys
from core.comms import messages as m
from core.comms.ingest import Ingester
from core.events.sinks import EpisodeEvent
from core.storage.coverage import CoverageRow
from core.storage.events import EventRow
from core.storage.fleet import CameraRow, WorkerRow
from core.storage.sessions import SessionInfo
from tests.pipeline.support import coverage_totals, events

SECRET = bytes(range(32))
DAY = (date.today() - timedelta(days=1)).isoformat()
RUN = m.CameraRun(
    "w1",
    "cam-1",
    "r1",
    "host",
    7,
    SessionInfo("stream", "cam-1", "Saw 01", "m", "ab", 0.2, 0.7, 320),
)
ROW = EventRow("Saw 01", f"{DAY} 10:00:00", f"{DAY} 10:00:03", 3.0, class_name="hand")
WINDOW = checks.Window(datetime.now())


def _episode(**row) -> m.Message:
    msg = m.episode_message(RUN, EpisodeEvent("new", "w1/cam-1/r1:1", ROW), 0.0)
    body = {**msg.body, "row": {**msg.body["row"], **row}}
    return m.Message(msg.id, msg.type, msg.run, msg.sent_at, body)


def _check(msg: m.Message) -> object:
    d = checks.message("w1", "episodes" if msg.type == "episode" else "coverage", msg.encode())
    return checks.episode(d, WINDOW) if d.type == "episode" else checks.coverage(d, WINDOW)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"started_at": "-0001-01-01 00:00:00"}, "not a time"),
        ({"started_at": "9999-12-31 23:59:59"}, "too far"),
        ({"started_at": "not a time"}, "not a time"),
        ({"duration_s": -1.0}, "between 0"),
        ({"duration_s": math.nan}, "finite"),
        ({"peak_conf": math.inf}, "finite"),
        ({"severity": "meh"}, "one of"),
        ({"state": "gone"}, "one of"),
        ({"station": "S" * 101}, "1-100"),
        ({"evidence_path": "/etc/passwd"}, "evidence store"),
        ({"evidence_path": f"{DAY}/../../glovewatch.sqlite"}, "evidence store"),
        ({"crop_path": "../x.jpg"}, "evidence store"),
        ({"ended_at": f"{DAY} 09:00:00"}, "before"),
        ({"station": "Press 2"}, "session"),
        ({"surprise": 1}, "unknown fields"),
        ({"thresholds": {"conf": math.nan}}, "finite JSON"),
    ],
)
def test_episode_rows_outside_their_schema_are_refused(change, reason):
    with pytest.raises(checks.Refused, match=reason):
        _check(_episode(**change))


def test_good_messages_pass_and_keys_belong_to_their_run():
    event = _check(_episode(evidence_path=f"{DAY}/saw-01-s0-e1.jpg"))
    assert isinstance(event, EpisodeEvent) and event.row.evidence_path == f"{DAY}/saw-01-s0-e1.jpg"
    other = m.episode_message(RUN, EpisodeEvent("end", "w2/cam-1/r1:1", ROW), 0.0)
    with pytest.raises(checks.Refused, match="camera run"):
        _check(other)
    cov = m.coverage_message(RUN, "Saw 01", [CoverageRow(f"{DAY} 10:00:01", 1.0)], 0.0)
    assert _check(cov) == ("Saw 01", [CoverageRow(f"{DAY} 10:00:01", 1.0)])
    elsewhere = m.coverage_message(RUN, "Press 2", [CoverageRow(f"{DAY} 10:00:01", 1.0)], 0.0)
    with pytest.raises(checks.Refused, match="session"):
        _check(elsewhere)  # coverage, like an episode, belongs to its session's station
    cov.body["rows"][0][1] = -1.0
    with pytest.raises(checks.Refused, match="watched_s"):
        _check(cov)
    cov.body["rows"] = []
    with pytest.raises(checks.Refused, match="1-7200 rows"):
        _check(cov)


def test_statuses_name_their_own_worker_and_cameras():
    good = m.Status(WorkerRow("w1", "online", "h"), (CameraRow("c", "Saw 01", "live"),), 7)
    assert checks.status("w1", good.encode(), WINDOW).cameras[0].worker == "w1"
    chatty = m.Status(
        WorkerRow("w1", "online"), (CameraRow("c", "S", "live", message="e" * 2000),), 7
    )
    assert len(checks.status("w1", chatty.encode(), WINDOW).cameras[0].message or "") == 500
    for bad, reason in (
        (m.Status(WorkerRow("w2", "online"), (), 7), "not 'w1'"),
        (m.Status(WorkerRow("w1", "sleeping"), (), 7), "one of"),
        (m.Status(WorkerRow("w1", "online"), (CameraRow("c", "S", "live", "w2"),), 7), "another"),
        (m.Status(WorkerRow("w1", "online"), (CameraRow("c", "S", "live", fps=-3),), 7), "fps"),
    ):
        with pytest.raises(checks.Refused, match=reason):
            checks.status("w1", bad.encode(), WINDOW)


def _signed(
    cred: auth.Credential, msg: m.Message | m.Status, at: float | None = None
) -> tuple[str, bytes]:
    topic = msg.topic if isinstance(msg, m.Message) else m.topic(cred.worker, "status")
    return topic, auth.seal(cred.key, topic, msg.encode(), time.time() if at is None else at)


def test_the_ingester_refuses_rejects_and_acknowledges_as_it_should(any_store):
    store = any_store
    ing, cred = Ingester(store, SECRET), keys.issue(store, SECRET, "w1")
    bad = _episode(duration_s=math.nan)
    assert ing.apply(*_signed(cred, bad)) == "rejected"
    assert ing.take_rejected() == {"w1": [bad.id]} and ing.take_acks() == {}
    old = _episode()
    assert ing.apply(*_signed(cred, old, time.time() - 3600)) == "stale"  # not acknowledged
    assert ing.apply(old.topic, old.encode()) == "refused"  # unsigned
    stranger = auth.Credential("w1", auth.derive_key(b"another fleet", "w1", 1))
    assert ing.apply(*_signed(stranger, old)) == "refused"
    assert ing.take_rejected() == {} and ing.take_acks() == {}
    assert events(store) == []
    letters = store.fleet.dead_letters()
    assert [d.reason.split(":")[0] for d in letters].count("refused") == 2
    assert any("duration_s" in d.reason and d.message_id == bad.id for d in letters)
    assert ing.apply(*_signed(cred, old)) == "applied"
    keys.revoke(store, "w1")
    ing.keys.ttl_s = 0.0  # the cache would keep the key for 5 s
    assert ing.apply(*_signed(cred, _episode())) == "refused"  # a revoked key


def test_coverage_replayed_under_new_ids_counts_once(any_store):
    store = any_store
    ing, cred = Ingester(store, SECRET), keys.issue(store, SECRET, "w1")
    rows = [CoverageRow(f"{DAY} 10:00:0{s}", 1.0, 1.0, 1, 1.0, 0.0) for s in range(3)]
    for _ in range(3):
        assert ing.apply(*_signed(cred, m.coverage_message(RUN, "Saw 01", rows, 0.0))) == "applied"
    more = rows[2:] + [CoverageRow(f"{DAY} 10:00:09", 1.0, 1.0, 1, 1.0, 0.0)]
    ing.apply(*_signed(cred, m.coverage_message(RUN, "Saw 01", more, 0.0)))
    assert coverage_totals(store, "Saw 01") == (4.0, 4.0, 0.0)


def test_a_heartbeat_replayed_changes_nothing_but_a_will_is_always_taken(store):
    ing, cred = Ingester(store, SECRET), keys.issue(store, SECRET, "w1")
    online = m.Status(WorkerRow("w1", "online", "h"), (), 7)
    first = _signed(cred, online)
    assert ing.apply(*first) == "status"
    assert ing.apply(*first) == "stale"  # the same heartbeat again
    will = m.Status(WorkerRow("w1", "offline", "h"), (), 7)
    assert ing.apply(*_signed(cred, will, time.time() - 86400)) == "status"  # signed at connect
    assert store.fleet.workers()[0].status == "offline"


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request, store):
    if request.param == "sqlite":
        return store
    from core.storage import open_store

    return open_store(request.getfixturevalue("pg_url"))


def test_a_message_body_over_the_limit_is_not_even_queued(tmp_path):
    from core.comms.bus import BusPublisher
    from core.comms.outbox import Outbox

    cred = auth.Credential("w1", auth.derive_key(SECRET, "w1", 1))
    pub = BusPublisher("mqtt://127.0.0.1:1", cred, Outbox(None), 7)
    huge = m.coverage_message(RUN, "S" * (1 << 20), [CoverageRow(f"{DAY} 10:00:00")], 0.0)
    pub.send(huge)
    pub.send(m.coverage_message(RUN, "Saw 01", [CoverageRow(f"{DAY} 10:00:00")], 0.0))
    assert len(pub.outbox) == 1


def test_a_flood_of_forgeries_is_counted_but_only_sampled_into_the_store(store):
    ing = Ingester(store, SECRET)
    for _ in range(200):
        assert ing.apply("glovewatch/w9/episodes", b"{}") == "refused"
    assert ing.stats().refused == 200
    assert 20 <= len(store.fleet.dead_letters(1000)) <= 60  # a second boundary may pass
