"""Real browser: upload a photo on the Batch page, run the shipped model, see the verdict, the
table and the metrics, and find the session in the store: a trial run, counted nowhere, that
the page deletes again; the uploader is empty for the next run."""

from __future__ import annotations

import pytest

from core.analytics import history as h
from core.config import TRIAL_STATION
from tests.e2e.conftest import choose, goto, metric, settle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_upload_image_and_see_results(app_server, browser_page, shots, bare_images):
    from playwright.sync_api import expect

    page = browser_page
    goto(page, app_server, "Batch", "Batch detection")
    shots(page, "batch-empty")
    page.get_by_text("Advanced", exact=True).click()
    choose(page, "Inference backend", "pytorch")
    page.locator("input[type=file]").last.set_input_files(str(bare_images[0]))
    run = page.get_by_role("button", name="Run detection")
    expect(run).to_be_enabled(timeout=60_000)
    run.click()
    expect(page.get_by_text("Detections", exact=True)).to_be_visible(timeout=120_000)
    settle(page)
    expect(page.locator("[data-testid='stDataFrame']")).to_be_visible()
    assert metric(page, "With a violation") == "1" and metric(page, "Failed") == "0"
    expect(page.get_by_text(f"⛔ {bare_images[0].name}: violation", exact=False)).to_be_visible()
    expect(
        page.get_by_role("button", name="Download Excel (summary, verdicts, detections)")
    ).to_be_visible()
    shots(page, "batch-results")

    uploader = page.locator("[data-testid='stFileUploader']")
    assert not uploader.get_by_text(bare_images[0].name).count()  # empty for the next run

    store = app_server.store()
    session = store.sessions.get(1)
    assert (session.kind, session.status, session.station) == ("batch", "finished", TRIAL_STATION)
    episodes = store.events.for_session(1)
    assert episodes and episodes[0].source == bare_images[0].name
    assert h.kpis(store, h.today_filter()).total.frames == 0  # a trial counts nowhere

    page.get_by_text("Trial results", exact=True).click()
    page.get_by_role("button", name="Delete trial results").click()
    expect(page.get_by_text("Deleted 1 trial run:", exact=False)).to_be_visible(timeout=60_000)
    settle(page)
    assert store.sessions.get(1) is None
    shots(page, "batch-trials-deleted")
