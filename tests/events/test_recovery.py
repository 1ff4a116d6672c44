"""Crash recovery at start: sessions of dead processes are marked interrupted and the episodes
they left open are closed at their last sighting, whatever their age; live ones stay open."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import datetime, timedelta

from core.events.recovery import recover, session_alive
from core.storage.events import EventRow
from core.storage.sessions import SessionInfo, SessionRecord
from tests.conftest import ROOT

INFO = SessionInfo("live", "camera 1", "Saw", "m.pt", "ab" * 32, 0.25, 0.7, 640)

# A monitoring process that starts a session, stores two open episodes (one a year old, one
# from a minute ago) and dies without closing anything.
_CRASHING = """
import json, sys
from core.storage import open_store
from core.storage.events import EventRow
from core.storage.sessions import SessionInfo
store = open_store()
sid = store.sessions.start(SessionInfo("live", "camera 9", "Saw", "m.pt", "cd" * 32, 0.25,
                                       0.7, 640))
ids = [store.events.insert(EventRow("Saw", a, b, session_id=sid, state="open"))
       for a, b in json.loads(sys.argv[1])]
print(json.dumps({"sid": sid, "ids": ids}))
"""


def _ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def _crashed_process(gw_home, spans):
    out = subprocess.run(
        [sys.executable, "-c", _CRASHING, json.dumps(spans)],
        cwd=ROOT,
        env={**os.environ, "GLOVEWATCH_HOME": str(gw_home), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_dead_process_sessions_are_interrupted_and_their_episodes_closed(store, gw_home):
    now = datetime.now().replace(microsecond=0)
    old = (_ts(now - timedelta(days=365)), _ts(now - timedelta(days=365) + timedelta(seconds=7)))
    recent = (_ts(now - timedelta(seconds=60)), _ts(now - timedelta(seconds=48)))
    dead = _crashed_process(gw_home, [old, recent])
    # this process is alive and still recording
    live_sid = store.sessions.start(INFO)
    live_ep = store.events.insert(
        EventRow("Saw", recent[0], recent[1], session_id=live_sid, state="open")
    )
    # an open episode whose session is gone
    orphan = store.events.insert(EventRow("Saw", old[0], old[1], session_id=None, state="open"))

    rep = recover(store)

    assert (rep.sessions_interrupted, rep.episodes_closed) == (1, 3)
    assert store.sessions.get(dead["sid"]).status == "interrupted"
    assert store.sessions.get(dead["sid"]).ended_at is not None
    assert store.sessions.get(live_sid).status == "running"
    year_old, fresh = (store.events.get(i) for i in dead["ids"])
    assert (year_old.state, year_old.ended_at, year_old.duration_s) == ("closed", old[1], 7.0)
    assert (fresh.state, fresh.ended_at, fresh.duration_s) == ("closed", recent[1], 12.0)
    assert store.events.get(live_ep).state == "open"
    gone = store.events.get(orphan)
    assert gone.state == "closed" and gone.ended_at == old[1]
    # running it again changes nothing
    assert recover(store) == type(rep)(0, 0)
    assert store.events.get(live_ep).state == "open"


def test_open_episode_of_an_ended_session_is_closed(store):
    sid = store.sessions.start(INFO)
    store.sessions.end(sid, "finished")
    eid = store.events.insert(
        EventRow("Saw", "2026-01-01 08:00:00", None, session_id=sid, state="open")
    )
    assert recover(store).episodes_closed == 1
    ep = store.events.get(eid)
    assert ep.state == "closed" and ep.ended_at == "2026-01-01 08:00:00" and ep.duration_s == 0


def _record(**kw) -> SessionRecord:
    base = dict(
        id=1,
        kind="live",
        source="c",
        station="S",
        model_path="m",
        model_hash="h",
        started_at=_ts(datetime.now()),
        ended_at=None,
        status="running",
        pid=os.getpid(),
        host=socket.gethostname(),
        heartbeat_at=None,
    )
    return SessionRecord(**{**base, **kw})


def test_session_alive_by_process_here_and_heartbeat_elsewhere():
    assert session_alive(_record())  # this very process
    assert not session_alive(_record(pid=None))  # written before sessions knew their process
    assert not session_alive(_record(pid=2**22 + 12345))  # no such process
    fresh = _ts(datetime.now() - timedelta(seconds=30))
    stale = _ts(datetime.now() - timedelta(minutes=10))
    assert session_alive(_record(host="other-host", heartbeat_at=fresh))
    assert not session_alive(_record(host="other-host", heartbeat_at=stale))
    assert session_alive(_record(host="other-host", heartbeat_at=stale), stale_after_s=3600)
