"""The Live page under AppTest: the short way to start, the browser camera path (the camera is
faked, the frames and the model are real), file replay with Start/Stop, a bad camera URL."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import av
import cv2
import pytest

from core.analytics import history as h
from core.media import read_image
from core.storage.filters import HistoryFilter
from tests.helpers import make_video, open_page
from tests.pages.support import INPUT_WIDGETS, metrics, plain, values

WIDGETS = (*INPUT_WIDGETS, "button")


def _keys(block: Any) -> set[str]:
    return {w.key for kind in WIDGETS for w in block.get(kind)}


def _live_page(backend: str = "pytorch") -> Any:
    at = open_page("pages/1_Live.py", timeout=300)
    at.selectbox(key="live-backend").set_value(backend)
    at.select_slider(key="live-imgsz").set_value(320)
    at.slider(key="live-min").set_value(0.5)
    at.run()
    assert not at.exception, at.exception
    return at


def _banner(at: Any) -> list[str]:
    """The alert banner (an error with the siren icon)."""
    return [e.value for e in at.error if e.icon == "🚨"]


def _start_stop(at: Any) -> tuple[bool, bool]:
    """Whether Start and Stop are enabled."""
    return not at.button(key="live-start").disabled, not at.button(key="live-stop").disabled


def test_quick_start_needs_only_source_and_start(gw_home, fake_webrtc):
    at = open_page("pages/1_Live.py")
    advanced = [e for e in at.expander if e.label.startswith("Advanced")]
    assert len(advanced) == 1, [e.label for e in at.expander]
    inside = _keys(advanced[0])
    assert {
        "live-backend",
        "live-min",
        "live-grace",
        "live-cooldown",
        "live-conf",
        "live-imgsz",
        "live-blur",
    } <= inside
    assert at.selectbox(key="live-backend").value == "openvino"
    outside = _keys(at.main) - inside
    assert outside == {"live-source", "live-station"}, outside  # the camera has its own Start
    assert fake_webrtc.kwargs["media_stream_constraints"] == {"video": True, "audio": False}
    at.radio(key="live-source").set_value("Video file replay").run()
    outside = _keys(at.main) - _keys(advanced[0])
    assert outside == {"live-source", "live-station", "live-file", "live-start", "live-stop"}
    assert _start_stop(at) == (False, False)  # nothing to start yet
    assert any("press **Start**" in i for i in values(at.info))


@pytest.mark.slow
def test_browser_camera_frames_become_one_episode(
    gw_home, store, monkeypatch, fake_webrtc, bare_images
):
    monkeypatch.setenv("GLOVEWATCH_ICE_SERVERS", '[{"urls": ["stun:stun.example:3478"]}]')
    at = _live_page()
    kwargs = fake_webrtc.kwargs
    assert kwargs["rtc_configuration"] == {"iceServers": [{"urls": ["stun:stun.example:3478"]}]}
    assert kwargs["media_stream_constraints"] == {"video": True, "audio": False}
    callback = kwargs["video_frame_callback"]
    image = cv2.resize(read_image(bare_images[4]), (640, 480))
    frame = av.VideoFrame.from_ndarray(image, format="bgr24")
    proc = at.session_state["live-proc"]
    start = time.monotonic()
    while proc.snapshot().episodes == 0 and time.monotonic() - start < 90:
        out = callback(frame)
        assert out.to_ndarray(format="bgr24").shape == image.shape
    assert proc.snapshot().alerts, "an episode raises an alert"
    kwargs["on_video_ended"]()  # the browser stopped the stream
    at.run()
    assert not at.exception
    m = metrics(at)
    assert m["Episodes"] == "1 (0 open)" and m["Violating hands"] != "0"
    assert not _banner(at)  # the stream has ended: no alert banner
    [ep] = proc.episodes(store)
    assert ep.state == "closed" and ep.class_name == "hand" and ep.evidence_path
    session = store.sessions.get(ep.session_id)
    assert (session.kind, session.status, session.source) == ("live", "finished", "browser camera")
    assert any(s.startswith("Episodes of this session") for s in values(at.subheader))


@pytest.mark.slow
def test_file_replay_start_stop_banner_and_episodes(
    gw_home, store, fake_webrtc, tmp_path, bare_images
):
    clip = make_video(tmp_path / "bare-hand.mp4", [bare_images[4]], repeat=150, fps=5)
    at = _live_page()
    at.radio(key="live-source").set_value("Video file replay").run()
    at.file_uploader(key="live-file").set_value(
        ("bare-hand.mp4", clip.read_bytes(), "video/mp4")
    ).run()
    assert _start_stop(at) == (True, False)
    at.button(key="live-start").click().run()
    assert not at.exception
    assert _start_stop(at) == (False, True)  # in the same render as the click
    runner = at.session_state["live-runner"]
    deadline = time.monotonic() + 90
    while not runner.processor.snapshot().alerts and time.monotonic() < deadline:
        assert runner.alive, runner.status()
        time.sleep(0.5)
    at.run()
    assert _banner(at), [e.value for e in at.error]
    assert _start_stop(at) == (False, True)
    assert at.get("image"), "the newest frame is shown while it runs"

    at.button(key="live-stop").click().run()
    assert not at.exception
    assert not runner.alive
    assert _start_stop(at) == (True, False)
    assert not _banner(at)
    # the file as uploaded, not as kept on the server
    assert any("Stopped watching bare-hand.mp4." in plain(i) for i in values(at.info))
    eps = runner.processor.episodes(store)
    assert eps and all(e.state == "closed" for e in eps)
    assert f"Episodes of this session ({len(eps)})" in values(at.subheader)
    thumbs = at.get("image")
    assert len(thumbs) == len(eps)  # one thumbnail per episode, no frame after Stop
    assert any(c.value.startswith(f"#{eps[-1].id} ") for c in at.caption)
    session = store.sessions.get(eps[0].session_id)
    assert (session.kind, session.source, session.status) == ("file", "bare-hand.mp4", "finished")
    total = h.kpis(store, HistoryFilter(date.today(), date.today())).total
    assert total.watched_s > 0  # monitored time reached the history


@pytest.mark.parametrize(
    "url, expect",
    [
        ("camera-7", "starts with rtsp://"),
        # refused at once; the password never shows
        pytest.param(
            "rtsp://user:secret@127.0.0.1:9/stream",
            "Camera rtsp://user:***@127.0.0.1:9/stream cannot be reached",
            marks=pytest.mark.slow,
        ),  # three tries with back-off
    ],
)
def test_bad_camera_url_gets_a_clear_message(gw_home, fake_webrtc, url, expect):
    at = _live_page()
    at.radio(key="live-source").set_value("Camera URL").run()
    at.text_input(key="live-url").set_value(url).run()
    at.button(key="live-start").click().run()
    assert not at.exception
    # (the test session state has no .get)
    runner = at.session_state["live-runner"] if "live-runner" in at.session_state else None  # noqa: SIM401
    if runner is not None:
        deadline = time.monotonic() + 20
        while runner.alive and time.monotonic() < deadline:
            time.sleep(0.2)
        at.run()
        runner.stop()
    messages = [plain(m) for m in values(at.error) + values(at.warning)]
    assert any(expect in m for m in messages), messages
    assert not any("secret" in m for m in messages)
