"""Real browser: open History over a store with episodes, open one, mark it dismissed, and see
the table, the picker and the figures change without reloading the page; Home and History show
the same figures; the demo switch shows the demo year's charts at once."""

from __future__ import annotations

import pytest

from core.analytics import history as h
from tests.e2e.conftest import goto, metric, settle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _review_of(page, eid: int) -> str:
    """The review column of episode ``eid`` in the episode table (read from the grid's own
    accessible cells: thumbnail, id, started, station, duration, why, severity, review)."""
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.scroll_into_view_if_needed()
    grid.locator("td").first.wait_for(state="attached", timeout=30_000)
    rows = grid.evaluate(
        "g => Array.from(g.querySelectorAll('tr')).map("
        "r => Array.from(r.querySelectorAll('td')).map(c => c.textContent.trim()))"
    )
    [row] = [r for r in rows if len(r) > 7 and r[1] == str(eid)]
    return row[7]


def test_dismiss_an_episode_and_see_the_table_change(history_home, app_server, browser_page, shots):
    from playwright.sync_api import expect

    page = browser_page
    goto(page, app_server, "History", "History")
    page.get_by_text("Open episode", exact=True).wait_for(timeout=60_000)
    settle(page)
    shots(page, "history")
    picker = page.locator("[data-testid='stSelectbox']", has_text="Open episode")
    label = picker.locator("input").input_value()
    eid = int(label.split()[0].lstrip("#"))
    assert label.endswith("unreviewed)"), label
    assert _review_of(page, eid) == "unreviewed"
    before = int(metric(page, "Episodes").replace(",", ""))

    form = page.locator("[data-testid='stForm']")
    form.get_by_text("dismissed", exact=True).click()
    form.get_by_label("Comment").fill("a glove in the reflection")
    form.get_by_role("button", name="Save review").click()
    expect(page.get_by_text(f"Episode #{eid} marked dismissed", exact=False)).to_be_visible(
        timeout=60_000
    )
    settle(page)
    assert _review_of(page, eid) == "dismissed"
    shown = picker.locator("input").input_value()  # what the picker shows, not only its list
    assert shown.startswith(f"#{eid} ") and shown.endswith("dismissed)"), shown
    assert int(metric(page, "Episodes").replace(",", "")) == before - 1
    shots(page, "history-dismissed")

    ep = app_server.store().events.get(eid)
    assert (ep.review, ep.review_comment) == ("dismissed", "a glove in the reflection")


def test_home_and_history_agree_and_the_demo_shows_at_once(
    history_home, monkeypatch, app_server, browser_page, shots
):
    from playwright.sync_api import expect

    from core.analytics import demo

    # a small demo year, built here before the app opens it (the app would build a full one)
    monkeypatch.setattr(demo, "DEMO_STATIONS", 4)
    monkeypatch.setattr(demo, "DEMO_DAYS", 60)
    monkeypatch.setattr(demo, "DEMO_SECONDS_ROWS", 5_000)
    monkeypatch.setattr(demo, "DEMO_EVIDENCE", 30)
    demo.demo_store()
    page = browser_page
    goto(page, app_server, "", "Today")
    shots(page, "home")
    store = app_server.store()
    expected = {f.label: f.text for f in h.headline(h.kpis(store, h.today_filter()))}
    for label in ("Compliance", "Episodes", "Images checked", "Time monitored"):
        assert metric(page, label) == expected[label], label  # core's one definition
    assert expected["Images checked"] == "5"

    goto(page, app_server, "History", "History")
    page.get_by_text("Open episode", exact=True).wait_for(timeout=60_000)
    settle(page)
    shots(page, "history")
    f = h.default_filter(store)
    in_history = {x.label: x.text for x in h.headline(h.kpis(store, f))}
    for label in ("Compliance", "Episodes", "Images checked", "Time monitored"):
        assert metric(page, label) == in_history[label], label

    page.get_by_text("Demo data (a synthetic year, 20 stations)").click()
    expect(page.get_by_text("Showing demo data", exact=False)).to_be_visible(timeout=60_000)
    settle(page)
    assert not page.get_by_text("No data from", exact=False).count()
    assert page.locator("[data-testid='stPlotlyChart']").count() >= 1  # at once, no retyping
    shots(page, "history-demo")
    expect(page.get_by_text("evidence frame", exact=False).first).to_be_visible(timeout=30_000)
