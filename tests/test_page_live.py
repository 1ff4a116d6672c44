"""Live page under AppTest: the browser camera path (webrtc faked, frames real), file replay,
and a bad camera URL."""

from __future__ import annotations

import time

import av
import cv2
import pytest
from streamlit.testing.v1 import AppTest

from core import store as st
from core.bench import write_clip
from core.media import read_image
from tests.conftest import ROOT
from tests.helpers import open_page

HOME = ROOT / "Home.py"


class FakeWebrtc:
    """Stands in for the browser's camera (unreachable under AppTest); keeps the callbacks."""

    def __init__(self):
        self.kwargs: dict = {}

    def __call__(self, **kwargs):
        self.kwargs = kwargs
        return None


def _live_page(monkeypatch, fake: FakeWebrtc | None = None) -> AppTest:
    import streamlit_webrtc

    # the page opens on the browser-camera source
    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", fake or FakeWebrtc())
    at = open_page("pages/1_Live.py", timeout=300)
    at.selectbox(key="live-backend").set_value("pytorch")
    at.select_slider(key="live-imgsz").set_value(320)
    at.slider(key="live-min").set_value(0.5)
    at.run()
    assert not at.exception
    return at


def test_browser_camera_frames_become_one_episode(gw_home, monkeypatch, bare_images):
    monkeypatch.setenv("GLOVEWATCH_ICE_SERVERS", '[{"urls": ["stun:stun.example:3478"]}]')
    fake = FakeWebrtc()
    at = _live_page(monkeypatch, fake)
    ice = [{"urls": ["stun:stun.example:3478"]}]
    assert fake.kwargs["rtc_configuration"] == {"iceServers": ice}
    assert fake.kwargs["media_stream_constraints"] == {"video": True, "audio": False}
    callback = fake.kwargs["video_frame_callback"]
    image = cv2.resize(read_image(bare_images[4]), (640, 480))
    frame = av.VideoFrame.from_ndarray(image, format="bgr24")
    proc = at.session_state["live-proc"]
    start = time.monotonic()
    while proc.snapshot().episodes == 0 and time.monotonic() - start < 60:
        out = callback(frame)
        assert out.to_ndarray(format="bgr24").shape == image.shape
    fake.kwargs["on_video_ended"]()  # the browser stopped the stream
    at.run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Episodes"] == "1 (0 open)" and metrics["Bare hands"] != "0"
    assert any("CRITICAL" in e.value or "WARNING" in e.value for e in at.error)
    conn = st.connect()
    ev = conn.execute("SELECT * FROM events").fetchone()
    assert ev["state"] == "closed" and ev["class_name"] == "hand"
    assert ev["evidence_path"] and ev["thresholds_json"].startswith('{"conf"')
    sess = conn.execute("SELECT kind, status, imgsz FROM sessions").fetchone()
    assert tuple(sess) == ("live", "finished", 320)


def test_video_file_replay_through_the_same_pipeline(gw_home, monkeypatch, tmp_path,
                                                     bare_images, gloved_images):
    clip = write_clip([bare_images[4], gloved_images[0]], tmp_path / "shift.mp4", fps=5,
                      seconds_each=1.5)
    at = _live_page(monkeypatch)
    at.radio(key="live-source").set_value("Video file replay").run()
    assert at.button(key="live-start").disabled
    at.file_uploader(key="live-file").set_value(("shift.mp4", clip.read_bytes(), "video/mp4"))
    at.run()
    at.button(key="live-start").click().run()
    assert not at.exception
    runner = at.session_state["live-runner"]
    assert runner.join(120)
    at.run()
    assert any("ended" in i.value for i in at.info)
    conn = st.connect()
    sess = conn.execute("SELECT kind, source, status FROM sessions").fetchone()
    assert tuple(sess) == ("file", "shift.mp4", "finished")
    assert conn.execute("SELECT SUM(watched_s) FROM coverage_hourly").fetchone()[0] > 1


@pytest.mark.parametrize("url, expect", [
    ("camera-7", "starts with rtsp://"),
    # refused at once; the password never shows
    ("rtsp://user:secret@127.0.0.1:9/stream",
     "Camera rtsp://user:***@127.0.0.1:9/stream cannot be reached"),
])
def test_bad_camera_url_gets_a_clear_message(gw_home, monkeypatch, url, expect):
    at = _live_page(monkeypatch)
    at.radio(key="live-source").set_value("Camera URL").run()
    at.text_input(key="live-url").set_value(url).run()
    at.button(key="live-start").click().run()
    assert not at.exception
    runner = at.session_state.get("live-runner") if "live-runner" in at.session_state else None
    if runner is not None:
        deadline = time.monotonic() + 10
        while runner.status()[0] == "connecting" and time.monotonic() < deadline:
            time.sleep(0.2)
        at.run()
        runner.stop()
    messages = [e.value for e in at.error] + [w.value for w in at.warning]
    assert any(expect in m for m in messages), messages
    assert not any("secret" in m for m in messages)
