"""The live pipeline with the real model: file replays made from real images, and cameras
stood in for through ``SourceRunner(opener=...)`` (real frames, a connection that drops)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from core.errors import MediaError
from core.events.episodes import EpisodeConfig
from core.events.rules import StationRule, Zone
from core.events.stations import save_rule
from core.media import read_image
from core.pipeline import live
from core.pipeline.clips import clip_frames
from core.pipeline.live import FrameProcessor, LiveConfig, SourceRunner, valid_camera_url
from core.pipeline.sources import SourceStatus, resolve_source, shown_source
from tests.pipeline.support import (
    FakeCamera,
    FakeCapture,
    coverage_totals,
    session_params,
    session_row,
    sessions,
    wait_for,
)

PASSWORD_URL = "rtsp://user:p@ss/w0rd@cam:554/x"


def _config(weights: Path, params, source: str, kind: str = "file", **kw) -> LiveConfig:
    """What the Live page builds: the source as shown (file name, masked URL, env: ref)."""
    return LiveConfig(
        weights=weights,
        backend="pytorch",
        params=params,
        kind=kind,
        source=shown_source(source),
        **kw,
    )


@pytest.fixture(scope="module")
def bare_frames(bare_images) -> list:
    """A few 640x480 camera frames of one bare hand (slightly drifting, like a camera)."""
    return list(clip_frames([bare_images[0]], fps=10, seconds_each=0.4))


def _watch(runner: SourceRunner, seen: list, until, timeout: float, what: str) -> None:
    """Poll the runner's status into ``seen`` until ``until()``."""

    def check() -> bool:
        seen.append(runner.status())
        return until()

    wait_for(check, timeout, what, poll=0.02)


# ---------------------------------------------------------------------------- no model needed


def test_camera_addresses_the_live_page_accepts():
    assert valid_camera_url("rtsp://cam:554/live") and valid_camera_url(" https://c/x.mjpg ")
    assert valid_camera_url("env:SAW_CAM")
    assert not valid_camera_url("/etc/passwd") and not valid_camera_url("file:///etc/passwd")


def test_sources_are_shown_without_paths_or_passwords(monkeypatch, tmp_path):
    assert shown_source(str(tmp_path / "srv" / "shift.mp4")) == "shift.mp4"
    assert shown_source(PASSWORD_URL) == "rtsp://user:***@cam:554/x"
    assert shown_source("env:SAW_CAM") == "env:SAW_CAM"
    monkeypatch.setenv("SAW_CAM", PASSWORD_URL)
    assert resolve_source("env:SAW_CAM") == PASSWORD_URL
    monkeypatch.delenv("SAW_CAM")
    with pytest.raises(MediaError, match="SAW_CAM"):
        resolve_source("env:SAW_CAM")


def test_missing_and_corrupt_files_fail_clearly(store, default_weights, fast_params, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    for source in (bad, tmp_path / "missing.mp4"):
        proc = FrameProcessor(_config(default_weights, fast_params, str(source)))
        runner = SourceRunner(str(source), proc).start()
        assert runner.join(30)
        status, message = runner.status()
        assert status is SourceStatus.FAILED and source.name in message
        assert str(tmp_path) not in message  # the file's name, never the server path
    assert sessions(store) == []  # nothing was recorded for a source that never opened


def test_unreachable_camera_fails_after_max_attempts_without_showing_its_password(
    store, default_weights, fast_params
):
    camera = FakeCamera([])  # never answers
    proc = FrameProcessor(_config(default_weights, fast_params, PASSWORD_URL, kind="stream"))
    runner = SourceRunner(PASSWORD_URL, proc, max_attempts=2, opener=camera).start()
    seen: list = []
    _watch(runner, seen, lambda: not runner.alive, 30, "the runner to give up")
    status, message = runner.status()
    assert status is SourceStatus.FAILED
    assert "cannot be reached" in message and "Nothing more will be tried" in message
    assert "rtsp://user:***@cam:554/x" in message
    assert camera.urls == [PASSWORD_URL, PASSWORD_URL]  # the real address, twice, then no more
    assert SourceStatus.RECONNECTING in {s for s, _ in seen}
    for _, text in [*seen, (None, proc.snapshot().message)]:
        assert "p@ss" not in text and "w0rd" not in text
    assert sessions(store) == []


def test_unset_env_camera_fails_at_once_naming_the_variable(
    default_weights, fast_params, monkeypatch
):
    monkeypatch.delenv("GW_NO_SUCH_CAM", raising=False)
    camera = FakeCamera([])
    proc = FrameProcessor(
        _config(default_weights, fast_params, "env:GW_NO_SUCH_CAM", kind="stream")
    )
    runner = SourceRunner("env:GW_NO_SUCH_CAM", proc, opener=camera).start()
    assert runner.join(10)
    status, message = runner.status()
    assert status is SourceStatus.FAILED and "GW_NO_SUCH_CAM" in message
    assert "not set" in message and camera.urls == []


# ---------------------------------------------------------------------------- with the model


def test_file_replay_shows_loading_while_the_model_loads(
    store, default_weights, fast_params, shift_clip, monkeypatch
):
    """While the model loads, a replay says so (not 'No answer from the camera'); messages
    and the stored session name the file, never its folder on the server."""
    gate = threading.Event()
    pool = live.DETECTORS

    class SlowPool:  # the model takes as long as the test wants to load
        def acquire(self, *args, **kwargs):
            gate.wait(60)
            return pool.acquire(*args, **kwargs)

    monkeypatch.setattr(live, "DETECTORS", SlowPool())
    proc = FrameProcessor(_config(default_weights, fast_params, str(shift_clip)))
    runner = SourceRunner(str(shift_clip), proc, connect_warn_s=0.2).start()
    seen: list = []
    try:
        _watch(
            runner,
            seen,
            lambda: runner.status()[0] is SourceStatus.LOADING,
            30,
            "the loading status",
        )
        time.sleep(0.5)  # longer than connect_warn_s: a camera would be 'not answering' now
        status, message = runner.status()
        assert status is SourceStatus.LOADING
        assert "loading the model" in message and "shift.mp4" in message
        assert "No answer" not in message
        assert proc.snapshot().status == "loading"
        gate.set()
        _watch(runner, seen, lambda: proc.snapshot().frames > 0, 120, "a processed frame")
    finally:
        gate.set()
        runner.stop()
    assert runner.status()[0] is SourceStatus.STOPPED and not runner.alive
    folder = str(shift_clip.parent)
    assert all(folder not in text for _, text in seen)
    assert all(folder not in text for _, text in [runner.status(), (0, proc.snapshot().message)])
    (row,) = sessions(store)
    assert row.kind == "file" and row.source == "shift.mp4" and row.status == "finished"


def test_camera_that_drops_is_reconnected(
    store, default_weights, fast_params, bare_frames, monkeypatch
):
    """A camera (address from env:NAME, with a password) sends a few frames and drops; the
    first reopen fails, the next works: RECONNECTING, then RUNNING again, frames keep
    arriving, all in one session stored as 'env:NAME'."""
    monkeypatch.setenv("GW_TEST_CAM", PASSWORD_URL)
    at_open: list[SourceStatus] = []
    camera = FakeCamera(
        [
            FakeCapture(bare_frames, fps=10, loops=1),
            None,
            FakeCapture(bare_frames, fps=10, loops=None),
        ],
        on_open=lambda n: at_open.append(runner.status()[0]),
    )
    proc = FrameProcessor(_config(default_weights, fast_params, "env:GW_TEST_CAM", kind="stream"))
    runner = SourceRunner("env:GW_TEST_CAM", proc, opener=camera)
    runner.start()
    seen: list = []
    try:
        _watch(runner, seen, lambda: len(camera.urls) >= 3, 120, "the third connection")
        _watch(
            runner, seen, lambda: runner.status()[0] is SourceStatus.RUNNING, 30, "running again"
        )
        frames_back = proc.snapshot().frames
        _watch(
            runner,
            seen,
            lambda: proc.snapshot().frames >= frames_back + 3,
            60,
            "frames after the reconnect",
        )
    finally:
        runner.stop()
    statuses = [s for s, _ in seen]
    first_drop = statuses.index(SourceStatus.RECONNECTING)
    assert SourceStatus.RUNNING in statuses[first_drop:]
    assert at_open[1:] == [SourceStatus.RECONNECTING, SourceStatus.RECONNECTING]
    assert camera.urls == [PASSWORD_URL] * 3  # resolved from the environment
    assert runner.status()[0] is SourceStatus.STOPPED
    for _, text in seen:
        assert "p@ss" not in text and "w0rd" not in text
    (row,) = sessions(store)  # one session across the drop
    assert row.kind == "stream" and row.source == "env:GW_TEST_CAM"
    assert row.status == "finished" and row.ended_at
    assert session_params(store, row.id)["backend"] == "pytorch"


def test_idle_stream_ends_its_session(store, default_weights, fast_params, bare_images):
    """A browser tab closed mid-stream sends no 'ended': the watchdog ends the session,
    closing its open episode."""
    proc = FrameProcessor(
        _config(
            default_weights,
            fast_params,
            "browser camera",
            kind="live",
            idle_timeout_s=2.0,
            episodes=EpisodeConfig(min_duration_s=0.0),
        )
    )
    assert proc.start()
    proc.process(read_image(bare_images[0]))  # one frame (an episode opens), then nothing
    assert len(proc.episodes(store)) == 1
    wait_for(lambda: proc.snapshot().status == "interrupted", 20, "the idle watchdog")
    snap = proc.snapshot()
    assert not proc.active and "No frames for" in snap.message
    (episode,) = proc.episodes(store)
    assert episode.state == "closed"
    assert session_row(store, snap.session_id).status == "interrupted"


@pytest.mark.slow
def test_stop_ends_the_session_and_clears_the_alert_banner(
    store, default_weights, fast_params, bare_frames
):
    """Stop ends the session (episodes closed) and the page's alert banner clears; the
    stored source has the camera's password masked."""
    camera = FakeCamera([FakeCapture(bare_frames, fps=10, loops=None)])
    proc = FrameProcessor(
        _config(
            default_weights,
            fast_params,
            PASSWORD_URL,
            kind="stream",
            station="saw",
            episodes=EpisodeConfig(min_duration_s=0.3),
        )
    )
    runner = SourceRunner(PASSWORD_URL, proc, opener=camera).start()
    try:
        wait_for(lambda: proc.snapshot().alerts, 120, "an alert")
        assert proc.snapshot().alerts[0].station == "saw"
    finally:
        runner.stop()
    assert not runner.alive and runner.status()[0] is SourceStatus.STOPPED
    assert "Stopped watching" in runner.status()[1]
    assert proc.alerter.recent() == [] and proc.snapshot().alerts == ()
    assert not proc.active and proc.snapshot().status == "stopped"
    (row,) = sessions(store)
    assert row.status == "finished" and row.ended_at
    assert row.source == "rtsp://user:***@cam:554/x"
    assert camera.urls == [PASSWORD_URL]
    episodes = proc.episodes(store)
    assert episodes and all(e.state == "closed" for e in episodes)


@pytest.mark.slow
def test_file_replay_stores_episodes_coverage_and_evidence(
    store, default_weights, fast_params, shift_clip
):
    """Two sustained bare hands in a replay: two closed episodes with evidence, the
    processor's episode list, and coverage of the 6.4 s watched."""
    save_rule(store, StationRule("saw", zones=(Zone("blade", ((0, 0), (1, 0), (1, 1))),)))
    proc = FrameProcessor(_config(default_weights, fast_params, str(shift_clip), station="saw"))
    runner = SourceRunner(str(shift_clip), proc, realtime=False).start()
    assert runner.join(300)
    assert runner.status()[0] is SourceStatus.ENDED
    snap = proc.snapshot()
    assert snap.frames == 32 and snap.dropped == 0 and snap.status == "stopped"
    assert 0 < snap.compliance < 1 and snap.episodes == 2
    episodes = proc.episodes(store)
    assert len(episodes) == 2, episodes
    for e in episodes:
        assert e.state == "closed" and e.station == "saw" and e.rule_version == 1
        assert e.class_name == "hand" and 0.5 < e.duration_s <= 1.6
        assert e.session_id == snap.session_id and e.source == "shift.mp4"
        assert Path(e.evidence_path).is_file() and Path(e.crop_path).is_file()
    row = session_row(store, snap.session_id)
    assert row.kind == "file" and row.status == "finished" and row.source == "shift.mp4"
    assert session_params(store, row.id)["rule_version"] == 1
    watched, compliant, violating = coverage_totals(store, "saw")
    assert 6.0 <= watched <= 6.4 and compliant > 1 and violating > 1


@pytest.mark.slow
def test_real_time_replay_drops_stale_frames(store, default_weights, fast_params, shift_clip):
    proc = FrameProcessor(_config(default_weights, fast_params, str(shift_clip)))
    original = proc.stream
    took: list[float] = []

    def slow(frames):  # replayed at 5 fps, each frame takes 0.4 s+
        start = time.monotonic()
        for result in original(frames):
            time.sleep(0.4)
            took.append(time.monotonic() - start)
            yield result
            start = time.monotonic()

    proc.stream = slow
    runner = SourceRunner(str(shift_clip), proc, realtime=True).start()
    assert runner.join(120)
    snap = proc.snapshot()
    assert snap.dropped > 5 and snap.frames + snap.dropped == 32
    # lag does not build up: a frame waits at most for the one being processed
    assert snap.latency_ms <= 2 * max(took) * 1000 + 200


@pytest.mark.slow
def test_two_processors_on_different_stations_at_once(
    store, default_weights, fast_params, shift_clip
):
    runners = [
        SourceRunner(
            str(shift_clip),
            FrameProcessor(_config(default_weights, fast_params, str(shift_clip), station=s)),
            realtime=False,
        ).start()
        for s in ("saw", "lathe")
    ]
    assert all(r.join(300) for r in runners)
    stored = sessions(store)
    assert sorted(r.station for r in stored) == ["lathe", "saw"]
    per_station = {r.processor.cfg.station: len(r.processor.episodes(store)) for r in runners}
    assert per_station == {"saw": 2, "lathe": 2}
    assert all(r.processor.snapshot().frames == 32 for r in runners)
