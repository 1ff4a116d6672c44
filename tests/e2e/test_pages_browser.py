"""Real browser: an admin signs in to an app with a week of history, a finished training run and
a station with collected frames, and opens every page through the sidebar. No page shows an
exception, and each is screenshotted for review."""

from __future__ import annotations

import pytest

from core.events.rules import StationRule
from core.events.stations import save_rule
from tests.e2e.conftest import choose, goto, nav, settle
from tests.pages.support import PASSWORD, finished_run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PAGES = [  # (sidebar name, heading)
    ("Live", "Live monitoring"),
    ("Batch", "Batch detection"),
    ("History", "History"),
    ("Training", "Training"),
    ("Stations", "Stations and rules"),
    ("Label", "Label: the plant's own frames"),
    ("Admin", "Admin"),
    ("Cameras", "Cameras"),
]


@pytest.fixture
def full_home(history_home, store, bare_images, gloved_images):
    from core.accounts import add_user
    from core.training import site

    add_user(store, "ada", "admin", PASSWORD, by="test")
    save_rule(store, StationRule("Saw 01"), "ada")
    finished_run(store)
    site.collect_images(
        store, "Saw 01", [(p.name, p) for p in [bare_images[0], gloved_images[0]]], by="ada"
    )
    return history_home


def test_every_page_opens_for_an_admin(full_home, app_server, browser_page, shots):
    page = browser_page
    goto(page, app_server, "", "Sign in to GloveWatch")
    page.get_by_label("User name", exact=True).fill("ada")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_text("Today", exact=True).wait_for(timeout=60_000)
    settle(page)
    shots(page, "home")
    for name, heading in PAGES:
        nav(page, name, heading)
        if name == "Label":
            choose(page, "Station", "Saw 01")
            page.locator(".gw-svg").first.wait_for(timeout=60_000)  # the box editor drew
        assert not page.locator("[data-testid='stException']").count(), name
        shots(page, name.lower())
