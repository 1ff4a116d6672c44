import pytest

from core import store as st
from tests.e2e.conftest import launch_chromium

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_upload_image_and_see_results(app_server, bare_images, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page()
        page.goto(f"{app_server.url}/Batch", wait_until="domcontentloaded")
        page.get_by_text("Batch detection", exact=True).first.wait_for(timeout=60_000)
        page.locator("input[type=file]").last.set_input_files(str(bare_images[0]))
        run = page.get_by_role("button", name="Run detection")
        expect(run).to_be_enabled(timeout=60_000)
        run.click()
        expect(page.get_by_text("Detections", exact=True)).to_be_visible(timeout=120_000)
        expect(page.locator("[data-testid='stDataFrame']")).to_be_visible()
        metric = page.locator("[data-testid='stMetric']", has_text="Violations")
        expect(metric).to_contain_text("1")
        page.screenshot(path="/tmp/batch.png", full_page=True)
        browser.close()
    monkeypatch.setenv("GLOVEWATCH_HOME", str(app_server.home))
    conn = st.connect()
    row = conn.execute("SELECT source, verdict FROM results").fetchone()
    assert (row["source"], row["verdict"]) == (bare_images[0].name, "violation")
