"""Real browser, real webcam path: headless Chromium's fake camera plays a .y4m clip made
from the test images into the Live page; episodes must land in the store and counters on
the page."""

from __future__ import annotations

import re
import sqlite3
import time

import pytest

from core.bench import write_y4m
from tests.e2e.conftest import launch_chromium

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _events(db) -> list[tuple]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute("SELECT state, class_name, evidence_path FROM events").fetchall()
        except sqlite3.OperationalError:  # not created yet
            return []


def test_browser_camera_start_gives_episodes_and_counters(app_server, tmp_path, bare_images,
                                                          gloved_images):
    from playwright.sync_api import expect, sync_playwright

    # bare hand 3 s, gloved 2 s; Chromium loops the file
    clip = write_y4m([bare_images[4], gloved_images[0]], tmp_path / "cam.y4m", fps=10,
                     seconds_each=2.5, size=(640, 480))
    db = app_server.home / "glovewatch.sqlite"
    with sync_playwright() as p:
        browser = launch_chromium(p, ["--use-fake-ui-for-media-stream",
                                      "--use-fake-device-for-media-stream",
                                      f"--use-file-for-fake-video-capture={clip}"])
        context = browser.new_context(permissions=["camera"])
        page = context.new_page()
        page.goto(f"{app_server.url}/Live", wait_until="domcontentloaded")
        page.get_by_text("Live monitoring", exact=True).first.wait_for(timeout=90_000)
        frame = page.frame_locator("iframe[title*='streamlit_webrtc']")
        start = frame.get_by_role("button", name=re.compile("start", re.I))
        expect(start).to_be_visible(timeout=90_000)
        start.click()
        deadline = time.time() + 180
        while time.time() < deadline and not any(e[0] == "closed" for e in _events(db)):
            time.sleep(2)
        episodes = page.locator("[data-testid='stMetric']", has_text="Episodes")
        expect(episodes).not_to_contain_text("0 (", timeout=30_000)
        fps = page.locator("[data-testid='stMetric']", has_text="FPS")
        expect(fps).to_be_visible()
        page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
        frame.get_by_role("button", name=re.compile("stop", re.I)).click()
        browser.close()
    events = _events(db)
    assert events, "no episode reached the store"
    assert any(e[0] == "closed" and e[1] == "hand" and e[2] for e in events), events
    with sqlite3.connect(db) as conn:
        kind, imgsz = conn.execute("SELECT kind, imgsz FROM sessions").fetchone()
    assert (kind, imgsz) == ("live", 640)
