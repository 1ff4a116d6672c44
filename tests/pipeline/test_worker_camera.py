"""One camera of a worker, without its reader running: analysis slots, status, report."""

from __future__ import annotations

import threading

import numpy as np

from core.comms.messages import CameraRun
from core.media import open_video
from core.pipeline.cameras import CameraSpec
from core.pipeline.sources import Frame, SourceStatus
from core.pipeline.worker_camera import Camera
from core.storage.sessions import SessionInfo


def _camera(fps: float = 4.0) -> tuple[Camera, threading.Event]:
    spec = CameraSpec("cam 1", "rtsp://camera.invalid/1", "Saw 1", fps=fps)
    info = SessionInfo("stream", "cam 1", "Saw 1", "m.pt", "ab" * 32, 0.25, 0.7, 640)
    arrived = threading.Event()
    run = CameraRun("w1", "cam 1", "run1", "host", 1, info)
    return Camera(spec, run, threading.Event(), open_video, 2.0, arrived), arrived


def test_advance_counts_the_slots_the_worker_fell_behind():
    cam, _ = _camera(fps=4.0)  # a slot every 0.25 s
    cam.next_due = 0.0
    cam.advance(0.1)
    assert (cam.next_due, cam.missed) == (0.25, 0)
    cam.advance(1.3)  # slots 0.5, 0.75 and 1.0 went by unanalysed
    assert (cam.next_due, cam.missed) == (1.25, 3)


def test_state_follows_the_source_and_a_new_frame_wakes_the_worker():
    cam, arrived = _camera()
    assert cam.state(0.0) == "connecting" and "Connecting to" in cam.message
    cam._on_status(SourceStatus.RECONNECTING, "camera dropped")
    assert cam.state(0.0) == "disconnected"
    cam._on_status(SourceStatus.RUNNING, "")
    assert cam.state(cam.reader.last_read + 1.0) == "live"
    assert cam.state(cam.reader.last_read + 3.0) == "stalled"  # stall_after_s is 2
    frame = Frame(np.zeros((4, 4, 3), np.uint8), None, 0.0)
    cam.slot.put(frame, False, threading.Event())
    assert arrived.is_set() and cam.slot.poll() is frame
    cam.finished = True
    assert cam.state(0.0) == "stopped"
    rep = cam.report(0.0)
    assert (rep.analysed, rep.fps, rep.held, rep.lag_p50_ms) == (0, 0.0, False, None)
    row = cam.row("w1", 0.0, "2026-11-03 09:00:00")
    assert (row.status, row.worker, row.station) == ("stopped", "w1", "Saw 1")
