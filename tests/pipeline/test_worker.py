"""The camera worker with the real model and a real store: several file cameras in one
process, motion gating, batched detection, per-camera reconnection and status rows.

Cameras are real clips made from the fixture images; the network camera of the reconnect
and stall tests is the ``opener=`` stand-in of ``tests.pipeline.support``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError
from core.pipeline.cameras import CameraSpec, WorkerConfig, load_config
from core.pipeline.clips import clip_frames, write_clip
from core.pipeline.fleetbench import _moving_clip
from core.pipeline.motion import MotionConfig, MotionGate
from core.pipeline.outlets import DirectOutlet
from core.pipeline.worker import Worker
from core.vision.detector import DETECTORS
from tests.pipeline.support import (
    FakeCamera,
    FakeCapture,
    coverage_totals,
    events,
    sessions,
    wait_for,
)


@pytest.fixture(autouse=True)
def _one_torch_thread(monkeypatch):
    """PyTorch on one thread: on a shared 2-core machine two threads wait on each other and a
    frame takes anywhere from 0.3 to 3.5 s; one thread takes ~0.15 s steadily, so the real-time
    assertions below hold."""
    monkeypatch.setenv("GLOVEWATCH_TORCH_THREADS", "1")


def _config(params, *cameras: CameraSpec, **kw) -> WorkerConfig:
    return WorkerConfig(
        name=kw.pop("name", "w1"),
        cameras=cameras,
        backend="pytorch",
        params=params,
        heartbeat_s=kw.pop("heartbeat_s", 0.5),
        **kw,
    )


def _worker(store, default_weights: Path, cfg: WorkerConfig, **kw) -> Worker:
    return Worker(cfg, DirectOutlet(store), store, default_weights, **kw)


@pytest.fixture(scope="module")
def still_bare(tmp_path_factory, bare_images) -> Path:
    """4 s of one bare hand held still (10 fps, the slight drift of a real camera)."""
    return write_clip(
        [bare_images[0]], tmp_path_factory.mktemp("w") / "bare.mp4", fps=10, seconds_each=4.0
    )


@pytest.fixture(scope="module")
def still_gloved(tmp_path_factory, clean_gloved) -> Path:
    """4 s of gloved hands: two pictures, 2 s each."""
    return write_clip(
        clean_gloved[:2], tmp_path_factory.mktemp("w") / "gloved.mp4", fps=10, seconds_each=2.0
    )


# ---------------------------------------------------------------------------- no model needed


def test_motion_gate_ignores_camera_drift_and_sees_a_new_scene(bare_images, gloved_images):
    frames = list(clip_frames([bare_images[0]], fps=10, seconds_each=1.0))
    other = next(iter(clip_frames([gloved_images[0]], fps=10, seconds_each=0.1)))
    gate = MotionGate()
    assert gate.moved(frames[0])  # the detector has seen nothing yet
    gate.inferred(frames[0])
    assert not any(gate.moved(f) for f in frames[1:])  # 0-2 px drift is not motion
    assert gate.moved(other)
    off = MotionGate(MotionConfig(enabled=False))
    off.inferred(frames[0])
    assert off.moved(frames[1])  # gating off: the detector runs on every frame


def test_cameras_yaml_is_read_and_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("GLOVEWATCH_WORKER_NAME", "from-env")
    cfg_file = tmp_path / "cameras.yaml"
    cfg_file.write_text(
        "backend: pytorch\nfps: 4\nmotion: {min_area: 0.01}\ncameras:\n"
        "  - {name: saw, station: Saw 01, source: 'env:SAW_CAM'}\n"
        "  - {name: replay, station: Press 2, source: clips/p.mp4, loop: true, fps: 2,\n"
        "     motion: false}\n"
    )
    cfg = load_config(cfg_file)
    assert cfg.name == "from-env" and cfg.backend == "pytorch"
    saw, replay = cfg.cameras
    assert (saw.source, saw.fps, saw.motion.min_area, saw.is_file) == (
        "env:SAW_CAM",
        4.0,
        0.01,
        False,
    )
    assert replay.source == str(tmp_path / "clips" / "p.mp4") and replay.loop
    assert replay.fps == 2.0 and not replay.motion.enabled and replay.motion.min_area == 0.01
    assert load_config(cfg_file, worker="line-1").name == "line-1"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("cameras: []\n", "list the cameras"),
        ("cameras:\n  - {name: a, source: x.mp4}\n  - {name: a, source: y.mp4}\n", "unique: a"),
        ("cameras:\n  - {name: a, source: x.mp4, colour: red}\n", "unknown setting(s) colour"),
        ("fps: 0\ncameras:\n  - {name: a, source: x.mp4}\n", "'fps' must be a number"),
        ("worker: a/b\ncameras:\n  - {name: a, source: x.mp4}\n", "cannot be used"),
        ("cameras:\n  - {name: a}\n", "give its 'source'"),
    ],
)
def test_bad_cameras_yaml_is_refused_clearly(tmp_path, text, says):
    cfg_file = tmp_path / "cameras.yaml"
    cfg_file.write_text(text)
    with pytest.raises(ConfigError, match=None) as err:
        load_config(cfg_file)
    assert says in str(err.value)


def test_missing_cameras_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


# ------------------------------------------------------------------------------ real model


def test_batched_detection_equals_single_frames(
    default_weights, fast_params, bare_images, gloved_images
):
    """One predict call over several cameras' frames finds what one call per frame finds."""
    frames = [
        next(iter(clip_frames([p], fps=1, seconds_each=1)))
        for p in (bare_images[0], gloved_images[0], bare_images[2])
    ]
    with DETECTORS.acquire(default_weights, "pytorch", fast_params.imgsz) as det:
        batch = det.detect_batch(frames, fast_params)
        single = [det.detect(f, fast_params) for f in frames]
    assert len(batch) == 3 and sum(len(b) for b in batch) > 0
    for b, s in zip(batch, single):
        assert b.shape == s.shape == (480, 640)
        assert list(b.detections.class_name) == list(s.detections.class_name)
        assert np.allclose(b.detections.xyxy, s.detections.xyxy, atol=1.0)
        assert np.allclose(b.detections.confidence, s.detections.confidence, atol=0.01)
    assert det.detect_batch([], fast_params) == []


def test_worker_with_two_file_cameras_writes_to_the_store(
    store, default_weights, fast_params, still_bare, still_gloved
):
    """No broker: sessions, episodes, coverage and status rows of both cameras in the store."""
    cfg = _config(
        fast_params,
        CameraSpec("bare-cam", str(still_bare), "Saw 01"),
        CameraSpec("glove-cam", str(still_gloved), "Press 2"),
    )
    report = _worker(store, default_weights, cfg).run()
    by_name = {c.name: c for c in report.cameras}
    assert set(by_name) == {"bare-cam", "glove-cam"} and report.transport == "store"
    assert all(c.analysed >= 1 and c.status == "stopped" for c in report.cameras)
    rows = sessions(store)
    assert [(r.kind, r.source, r.station, r.status) for r in rows] == [
        ("file", "bare-cam", "Saw 01", "finished"),
        ("file", "glove-cam", "Press 2", "finished"),
    ]
    eps = events(store)
    assert eps and all(e.station == "Saw 01" and e.state == "closed" for e in eps)
    assert all(e.event_key.startswith(f"w1/bare-cam/{report.run}:") for e in eps)
    assert {e.session_id for e in eps} == {rows[0].id}
    assert by_name["bare-cam"].episodes == len(eps)
    watched, ok, bad = coverage_totals(store, "Saw 01")
    assert watched >= 3.0 and bad > 0 and ok == 0
    watched, ok, bad = coverage_totals(store, "Press 2")
    assert watched >= 3.0 and ok > 0 and bad == 0
    (w,) = store.fleet.workers()
    assert (w.name, w.status, w.details["transport"]) == ("w1", "stopped", "store")
    cams = {c.name: c for c in store.fleet.cameras()}
    assert {c.status for c in cams.values()} == {"stopped"}
    assert cams["bare-cam"].analysed == by_name["bare-cam"].analysed
    assert cams["bare-cam"].skipped == by_name["bare-cam"].skipped
    assert cams["glove-cam"].station == "Press 2" and cams["glove-cam"].worker == "w1"


@pytest.mark.slow
def test_motion_gating_skips_a_still_scene_and_still_counts_it_covered(
    store, default_weights, fast_params, still_bare, bare_images, tmp_path
):
    """A still camera: the detector runs once per max_skip_s, the skipped frames reuse its
    detections, and the whole time counts as watched, with its bare hand as violating.
    A panning camera next to it: nothing is skipped."""
    moving = _moving_clip([bare_images[1]], tmp_path / "moving.mp4", seconds_each=2.0)
    cfg = _config(
        fast_params,
        CameraSpec("still", str(still_bare), "Still"),
        CameraSpec("moving", str(moving), "Moving", fps=2),
    )
    report = _worker(store, default_weights, cfg).run()
    still, mov = report.cameras
    assert still.analysed <= 2 and still.skipped >= 10
    assert mov.skipped == 0 and mov.analysed >= 2
    watched, _ok, bad = coverage_totals(store, "Still")
    assert watched >= 3.2  # of 4 s: every frame, skipped or not, accounted its time
    assert bad >= 0.8 * watched  # the reused detections still judge the hand
    assert [e.station for e in events(store)].count("Still") == 1


@pytest.mark.slow
def test_a_camera_that_drops_is_reconnected_and_shown_disconnected(
    store, default_weights, fast_params, bare_images
):
    frames = list(clip_frames([bare_images[0]], fps=10, seconds_each=0.3))
    # 1.5 s of frames, then it drops; the first try to reconnect fails, the next succeeds
    camera = FakeCamera(
        [FakeCapture(frames, fps=10, loops=5), None, FakeCapture(frames, fps=10, loops=None)]
    )
    cfg = _config(fast_params, CameraSpec("net", "rtsp://cam.example/1", "Saw 01"), heartbeat_s=0.2)
    worker = _worker(store, default_weights, cfg, opener=camera)
    seen: list[str] = []
    th = threading.Thread(target=worker.run, kwargs={"seconds": 8.0}, daemon=True)
    th.start()
    wait_for(worker.ready.is_set, 120, "the worker to start")
    wait_for(
        lambda: (
            seen.append(worker.cameras[0].state(time.monotonic()))
            or (len(camera.urls) >= 3 and seen[-1] == "live")
        ),
        30,
        "the reconnection",
        poll=0.05,
    )
    th.join(30)
    assert "disconnected" in seen and seen[-1] == "live"
    assert camera.urls == ["rtsp://cam.example/1"] * 3
    (row,) = store.fleet.cameras()
    assert row.status == "stopped" and row.analysed + row.skipped > 10


class _Hanging(FakeCapture):
    """Sends a few frames, then nothing for ``hang_s`` (a frozen camera), then drops."""

    def __init__(self, frames, hang_s: float):
        super().__init__(frames, fps=10, loops=1)
        self.hang_s = hang_s

    def read(self):
        if self.served >= len(self.frames):
            self.released.wait(self.hang_s)
            return False, None
        return super().read()


@pytest.mark.slow
def test_a_silent_camera_is_reported_stalled(store, default_weights, fast_params, bare_images):
    frames = list(clip_frames([bare_images[0]], fps=10, seconds_each=0.3))
    camera = FakeCamera([_Hanging(frames, hang_s=6.0)])
    cfg = _config(
        fast_params,
        CameraSpec("frozen", "rtsp://cam.example/2", "Saw 01"),
        heartbeat_s=0.2,
        stall_after_s=1.0,
    )
    worker = _worker(store, default_weights, cfg, opener=camera)
    th = threading.Thread(target=worker.run, kwargs={"seconds": 5.0}, daemon=True)
    th.start()
    wait_for(worker.ready.is_set, 120, "the worker to start")
    wait_for(
        lambda: any(c.status == "stalled" for c in store.fleet.cameras()),
        10,
        "the stalled status row",
    )
    (w,) = store.fleet.workers()
    assert w.status == "online"
    th.join(30)


def test_a_worker_applies_retention_to_its_own_evidence(
    gw_home, store, default_weights, monkeypatch, fast_params
):
    """On another machine the central retention cannot reach a worker's disk: the worker
    removes its own evidence older than GLOVEWATCH_RETENTION_DAYS."""
    from datetime import date

    from core.config import settings

    monkeypatch.setenv("GLOVEWATCH_RETENTION_DAYS", "30")
    ev = settings().evidence_dir
    for day in ("2026-01-01", "2026-02-20"):
        (ev / day).mkdir(parents=True)
        (ev / day / "saw-1.jpg").write_bytes(b"jpeg")
    w = _worker(store, default_weights, _config(fast_params, CameraSpec("c1", "x.mp4", "Saw 01")))
    assert w.purge_evidence(today=date(2026, 3, 1)) == (1, 4)
    assert not (ev / "2026-01-01").exists() and (ev / "2026-02-20" / "saw-1.jpg").exists()
    # Only a worker behind a broker purges on its own: a direct one shares the store's
    # retention, which also marks the episodes' evidence as removed.
    from core.comms.bus import MqttOutlet

    assert MqttOutlet.remote and not w.outlet.remote
