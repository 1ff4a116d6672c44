"""The Cameras page under AppTest: workers and cameras from the store, with a status that
accounts for silence (a worker whose heartbeat is old is not online, and its cameras are not
live whatever they last said)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from core.analytics.fleet import camera_state, fleet_status, worker_state
from core.storage.fleet import CameraRow, WorkerRow
from tests.helpers import open_page
from tests.pages.support import metrics, plain, sign_in, values
from tests.pipeline.support import events


def _ts(seconds_ago: float) -> str:
    return (datetime.now() - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%d %H:%M:%S")


def _fleet(store) -> None:
    """line-1 reporting now (a live and a stalled camera), line-2 silent for 10 minutes
    (its camera said live), line-3 stopped."""
    store.fleet.report(
        WorkerRow(
            "line-1",
            "online",
            "box-a",
            _ts(3600),
            _ts(2),
            {"transport": "mqtt", "outbox_pending": 0},
        ),
        [
            CameraRow(
                "saw-01", "Saw 01", "live", "line-1", "rtsp://cam1", 4.9, 120, 380, _ts(2), _ts(2)
            ),
            CameraRow(
                "press-02",
                "Press 2",
                "stalled",
                "line-1",
                "env:CAM_P2",
                0.0,
                50,
                10,
                _ts(40),
                _ts(2),
                "No frames from env:CAM_P2 for 38 s",
            ),
        ],
    )
    store.fleet.report(
        WorkerRow("line-2", "online", "box-b", _ts(7200), _ts(600)),
        [
            CameraRow(
                "lathe-03",
                "Lathe 3",
                "live",
                "line-2",
                "rtsp://cam3",
                5.0,
                10,
                0,
                _ts(600),
                _ts(600),
            )
        ],
    )
    store.fleet.report(
        WorkerRow("line-3", "stopped", "box-c", _ts(9000), _ts(5)),
        [
            CameraRow(
                "mill-04",
                "<b>Mill</b> *4*",
                "stopped",
                "line-3",
                "mill.mp4",
                0.0,
                7,
                3,
                _ts(5),
                _ts(5),
            )
        ],
    )


def _table(at: Any, column: str) -> Any:
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _status(df: Any, key: str) -> dict[str, str]:
    return {row[key]: row["status"].split(" ", 1)[1] for _, row in df.iterrows()}


def test_status_from_heartbeat_age():
    assert worker_state("online", 5, 30, 120) == "online"
    assert worker_state("online", 45, 30, 120) == "stalled"
    assert worker_state("online", 500, 30, 120) == "disconnected"
    assert worker_state("offline", 1, 30, 120) == "offline"  # its last will
    assert camera_state("live", 2, "online", 30) == "live"
    assert camera_state("live", 50, "online", 30) == "stalled"
    assert camera_state("live", 2, "disconnected", 30) == "disconnected"
    assert camera_state("live", 2, "stopped", 30) == "stopped"


def test_fleet_status_reads_the_store(store):
    _fleet(store)
    workers, cameras = fleet_status(store)
    assert {w.name: w.status for w in workers} == {
        "line-1": "online",
        "line-2": "disconnected",
        "line-3": "stopped",
    }
    assert {c.name: c.status for c in cameras} == {
        "saw-01": "live",
        "press-02": "stalled",
        "lathe-03": "disconnected",
        "mill-04": "stopped",
    }
    saw = next(c for c in cameras if c.name == "saw-01")
    assert (
        saw.skipped_share == 380 / 500
        and next(w for w in workers if w.name == "line-1").cameras == 2
    )


def test_cameras_page_shows_workers_and_cameras(store):
    _fleet(store)
    at = open_page("pages/8_Cameras.py")
    assert "Cameras" in values(at.title)
    assert _status(_table(at, "worker"), "worker") == {
        "line-1": "online",
        "line-2": "disconnected",
        "line-3": "stopped",
    }
    cams = _table(at, "camera")
    assert _status(cams, "camera") == {
        "saw-01": "live",
        "press-02": "stalled",
        "lathe-03": "disconnected",
        "mill-04": "stopped",
    }
    saw = cams[cams["camera"] == "saw-01"].iloc[0]
    assert (saw["fps"], saw["analysed"], saw["skipped (no motion)"], saw["skipped share"]) == (
        4.9,
        120,
        380,
        "76%",
    )
    m = metrics(at)
    assert m["Workers online"] == "1 / 3" and m["Cameras live"] == "1 / 4"
    assert m["Stalled"] == "1" and m["Disconnected"] == "1"
    (warning,) = values(at.warning)
    assert "press-02" in plain(warning) and "lathe-03" in plain(warning)
    assert "saw-01" not in plain(warning)
    # a station name typed by a user is shown, never rendered
    assert cams[cams["camera"] == "mill-04"].iloc[0]["station"] == "<b>Mill</b> *4*"


def test_no_worker_yet_says_how_to_start_one(gw_home):
    at = open_page("pages/8_Cameras.py")
    assert any("python -m core worker" in i for i in values(at.info))
    assert not at.dataframe


def test_a_viewer_may_see_the_cameras(store, accounts):
    _fleet(store)
    at = sign_in(open_page(), "vera")
    at.switch_page("pages/8_Cameras.py").run()
    assert not at.exception and not values(at.error)
    assert "Cameras" in values(at.title) and len(at.dataframe) == 2


def test_the_cameras_page_lists_refused_messages_with_their_reason(store):
    """A forged (unsigned) episode and a real worker's message with a NaN duration, through
    the real ingester: both shown with why; nothing applied."""
    import math
    import time

    from core.comms import auth, keys
    from core.comms import messages as m
    from core.comms.ingest import Ingester
    from core.events.sinks import EpisodeEvent
    from core.storage.events import EventRow
    from core.storage.sessions import SessionInfo

    _fleet(store)
    at = open_page("pages/8_Cameras.py")
    assert "No message was refused" in " ".join(values(at.caption))
    secret = bytes(32)
    ing, cred = Ingester(store, secret), keys.issue(store, secret, "line-1")
    info = SessionInfo("stream", "saw-01", "Saw 01", "m", "ab", 0.25, 0.7, 320)
    run = m.CameraRun("line-1", "saw-01", "r1", "box-a", 1, info)
    row = EventRow("Saw 01", _ts(60), _ts(50), math.nan)
    msg = m.episode_message(run, EpisodeEvent("new", "line-1/saw-01/r1:1", row), 0.0)
    assert ing.apply(msg.topic, msg.encode()) == "refused"
    signed = auth.seal(cred.key, msg.topic, msg.encode(), time.time())
    assert ing.apply(msg.topic, signed) == "rejected"
    at = open_page("pages/8_Cameras.py")
    df = _table(at, "reason")
    assert len(df) == 2 and set(df["worker"]) == {"line-1"}
    assert df["reason"].str.contains("duration_s must be a finite number").any()
    assert df["reason"].str.startswith("refused: unsigned").any()
    assert events(store) == []
