"""Real browser on the Live page: headless Chromium's fake camera plays a .y4m clip (a bare
hand, then a gloved one) into the browser-camera source; and a video file replayed with Start
and Stop. Episodes must reach the store and the counters on the page."""

from __future__ import annotations

import re
import time
from datetime import date

import pytest

from core.pipeline.clips import write_y4m
from core.storage.filters import HistoryFilter
from tests.e2e.conftest import VIEWPORT, choose, goto, launch_chromium, metric, settle
from tests.helpers import make_video

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADVANCED = "Advanced: model, thresholds, backend, episode timing, alerts"


def _episodes(app) -> list:
    today = date.today()
    return app.store().events.matching(HistoryFilter(today, today))


def _light_settings(page) -> None:
    """PyTorch (no OpenVINO export on the first start) at image size 320: the quick start
    itself needs none of this, but a shared test machine may be slow."""
    page.get_by_text(ADVANCED, exact=True).click()
    choose(page, "Inference backend", "pytorch")
    size = page.locator("[data-testid='stSlider']", has_text="Image size").first
    size.get_by_role("slider").focus()
    page.keyboard.press("Home")  # the smallest size
    settle(page)
    assert size.get_by_role("slider").get_attribute("aria-valuetext") == "320"
    page.get_by_text(ADVANCED, exact=True).click()  # closed again
    settle(page)


def test_browser_camera_gives_episodes_and_counters(
    app_server, tmp_path, shots, bare_images, gloved_images
):
    from playwright.sync_api import expect, sync_playwright

    # a bare hand 2.5 s, then a gloved one 2.5 s; Chromium loops the file
    clip = write_y4m(
        [bare_images[4], gloved_images[0]],
        tmp_path / "cam.y4m",
        fps=10,
        seconds_each=2.5,
        size=(640, 480),
    )
    with sync_playwright() as p:
        browser = launch_chromium(
            p,
            [
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={clip}",
            ],
        )
        context = browser.new_context(permissions=["camera"], viewport=VIEWPORT)
        page = context.new_page()
        goto(page, app_server, "Live", "Live monitoring")
        _light_settings(page)
        shots(page, "live-camera-ready")
        frame = page.frame_locator("iframe[title*='streamlit_webrtc']")
        start = frame.get_by_role("button", name=re.compile("start", re.I))
        expect(start).to_be_visible(timeout=60_000)
        start.click()
        deadline = time.time() + 90
        while time.time() < deadline and not any(
            e.state == "closed" for e in _episodes(app_server)
        ):
            time.sleep(1)
        episodes = page.locator("[data-testid='stMetric']", has_text="Episodes")
        expect(episodes).not_to_contain_text("0 (", timeout=20_000)
        shots(page, "live-camera-running")
        assert float(metric(page, "FPS")) > 0
        frame.get_by_role("button", name=re.compile("stop", re.I)).click()
        page.wait_for_timeout(2000)
        shots(page, "live-camera-stopped")
        browser.close()
    closed = [e for e in _episodes(app_server) if e.state == "closed"]
    assert closed, "no episode reached the store"
    assert any(e.class_name == "hand" and e.evidence_path for e in closed)
    session = app_server.store().sessions.get(closed[0].session_id)
    assert (session.kind, session.source) == ("live", "browser camera")


def test_file_replay_start_frames_counters_stop(
    app_server, browser_page, shots, tmp_path, bare_images
):
    from playwright.sync_api import expect

    clip = make_video(tmp_path / "saw-shift.mp4", [bare_images[4]], repeat=300, fps=5)  # 60 s
    page = browser_page
    goto(page, app_server, "Live", "Live monitoring")
    page.get_by_text("Video file replay", exact=True).click()
    settle(page)
    _light_settings(page)
    start = page.get_by_role("button", name="Start", exact=True)
    stop = page.get_by_role("button", name="Stop", exact=True)
    expect(start).to_be_disabled()
    page.locator("input[type=file]").last.set_input_files(str(clip))
    expect(start).to_be_enabled(timeout=60_000)
    expect(stop).to_be_disabled()
    settle(page)
    start.click()
    expect(stop).to_be_enabled(timeout=30_000)  # while it runs
    expect(start).to_be_disabled()
    main = page.locator("[data-testid='stMain']")
    expect(main.locator("[data-testid='stImage']").first).to_be_visible(timeout=60_000)
    expect(page.locator("[data-testid='stMetric']", has_text="Episodes")).not_to_contain_text(
        "0 (", timeout=60_000
    )
    assert float(metric(page, "FPS")) > 0
    shots(page, "live-replay-running")
    stop.click()
    expect(start).to_be_enabled(timeout=30_000)
    expect(stop).to_be_disabled()
    settle(page)
    shots(page, "live-replay-stopped")
    expect(page.get_by_text("stopped: Stopped watching saw-shift.mp4.")).to_be_visible()
    expect(page.get_by_text("Stopped watching saw-shift.mp4.")).to_have_count(1)  # said once
    assert metric(page, "FPS") == "–"  # no stale rate once stopped
    heading = page.get_by_text(re.compile(r"^Episodes of this session \(\d+\)$"))
    expect(heading).to_have_count(1)  # once, with the session's episodes below
    expect(main.locator("[data-testid='stImage']")).to_have_count(len(_episodes(app_server)))
    eps = _episodes(app_server)
    assert eps and all(e.state == "closed" for e in eps)
    session = app_server.store().sessions.get(eps[0].session_id)
    assert (session.kind, session.source, session.status) == ("file", "saw-shift.mp4", "finished")
