"""Crash recovery at start: whatever command starts first closes the episodes a dead process
left open, at the time they were last seen, and leaves live sessions alone."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from core.errors import EXIT_OK
from core.storage.events import EventRow, OpenRefresh
from core.storage.sessions import SessionInfo
from tests.cli.support import ROOT, cli, cli_process

_TS = "%Y-%m-%d %H:%M:%S"
STARTED = (datetime.now() - timedelta(days=9)).strftime(_TS)  # old: closed whatever its age
LAST_SEEN = (datetime.now() - timedelta(days=9) + timedelta(seconds=37)).strftime(_TS)

# A process that records a live session with an open episode through the repositories, then
# dies without closing anything (as a killed camera process would).
CRASHED_PROCESS = f"""
import json, os
import core
from core.storage import open_store
from core.storage.events import EventRow, OpenRefresh
from core.storage.sessions import SessionInfo

st = open_store()
sid = st.sessions.start(SessionInfo("live", "rtsp://cam", "Saw 01", "w.pt", "h", 0.25, 0.7, 640))
eid = st.events.insert(EventRow("Saw 01", "{STARTED}", session_id=sid, state="open",
                                class_name="hand", severity="critical"))
st.events.refresh_open([OpenRefresh(eid, "{LAST_SEEN}", 37.0, 0.8, "critical", None)])
print(json.dumps({{"session": sid, "episode": eid, "pid": os.getpid()}}), flush=True)
os._exit(9)
"""


@pytest.fixture
def crashed(gw_home) -> dict:
    """What the crashed process left in this test's store: its session, episode and pid."""
    r = subprocess.run(
        [sys.executable, "-c", CRASHED_PROCESS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 9, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def _live_session_of_this_process(store) -> tuple[int, int]:
    sid = store.sessions.start(SessionInfo("live", "cam-2", "Press 2", "w.pt", "h", 0.25, 0.7, 640))
    eid = store.events.insert(
        EventRow("Press 2", STARTED, session_id=sid, state="open", class_name="hand")
    )
    store.events.refresh_open([OpenRefresh(eid, LAST_SEEN, 37.0, 0.6, "warning", None)])
    return sid, eid


@pytest.mark.parametrize("argv", [["stations", "list"], ["users", "list", "--json"], ["registry"]])
def test_any_command_closes_what_a_dead_process_left_open(store, capfd, crashed, argv):
    live_session, live_episode = _live_session_of_this_process(store)
    assert store.events.get(crashed["episode"]).state == "open"

    r = cli(capfd, *argv)
    assert r.code == EXIT_OK, r.err

    ep = store.events.get(crashed["episode"])
    assert (ep.state, ep.ended_at, ep.duration_s) == ("closed", LAST_SEEN, 37.0)
    assert ep.severity == "critical" and ep.class_name == "hand"
    assert store.sessions.get(crashed["session"]).status == "interrupted"
    # the session of this very process is alive: its episode stays open
    assert store.events.get(live_episode).state == "open"
    assert store.sessions.get(live_session).status == "running"
    # a second start finds nothing more to do
    assert cli(capfd, *argv).code == EXIT_OK
    assert store.events.get(live_episode).state == "open"
    assert store.events.get(crashed["episode"]).ended_at == LAST_SEEN


def test_recovery_as_a_process(store, gw_home, crashed):
    """``python -m core stations list`` in a new process: the crashed session is not its own,
    and its process is gone, so its episode is closed there too."""
    r = cli_process("stations", "list", home=gw_home)
    assert r.code == EXIT_OK, r.err
    assert store.events.get(crashed["episode"]).state == "closed"
    assert "1 session(s) of ended processes marked interrupted" in r.err
