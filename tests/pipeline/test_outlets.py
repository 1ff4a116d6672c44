"""The direct outlet (no broker) on a real store: a session per camera, status rows."""

from __future__ import annotations

from core.comms.messages import CameraRun
from core.pipeline.outlets import DirectOutlet
from core.storage.fleet import CameraRow, WorkerRow
from core.storage.sessions import SessionInfo


def test_direct_outlet_opens_and_ends_a_session_per_camera_and_reports_status(store):
    info = SessionInfo("stream", "cam 1", "Saw 1", "m.pt", "ab" * 32, 0.25, 0.7, 640)
    run = CameraRun("w1", "cam 1", "run1", "host", 123, info)
    outlet = DirectOutlet(store, session_beat_s=0.0)
    outlet.start(WorkerRow("w1", "offline"), [])
    sink, sid = outlet.open_camera(run)
    assert sid is not None and sink is outlet.sink
    assert store.sessions.get(sid).status == "running"
    outlet.heartbeat(WorkerRow("w1", "online"), [CameraRow("cam 1", "Saw 1", "live", "w1")])
    assert [(w.name, w.status) for w in store.fleet.workers()] == [("w1", "online")]
    assert store.sessions.get(sid).heartbeat_at is not None
    outlet.close_camera(run, sid, "finished")
    assert store.sessions.get(sid).status == "finished"
    stopped = [CameraRow("cam 1", "Saw 1", "stopped", "w1")]
    assert outlet.close(WorkerRow("w1", "stopped"), stopped)
    assert [c.status for c in store.fleet.cameras()] == ["stopped"]
    assert outlet.details() == {"transport": "store"}
