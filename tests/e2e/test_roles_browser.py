"""Real browser: with a viewer and an admin account in the store, the app asks for a sign-in; the
viewer sees Home and History, and Training and Stations refuse them, naming the role needed."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import goto, nav, settle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "correct-horse-7"


@pytest.fixture
def two_accounts(batch_home, store):
    from core.accounts import add_user

    add_user(store, "ada", "admin", PASSWORD, by="test")  # the first account is an admin
    add_user(store, "vera", "viewer", PASSWORD, by="test")
    return batch_home


def test_viewer_signs_in_and_is_refused_beyond_their_role(
    two_accounts, app_server, browser_page, shots
):
    from playwright.sync_api import expect

    page = browser_page
    goto(page, app_server, "", "Sign in to GloveWatch")
    shots(page, "sign-in")
    page.get_by_label("User name", exact=True).fill("vera")
    page.get_by_label("Password", exact=True).fill("not-her-password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_text("Wrong user name or password.")).to_be_visible(timeout=30_000)
    settle(page)
    shots(page, "sign-in-wrong-password")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_text("Today", exact=True).wait_for(timeout=60_000)
    settle(page)
    expect(page.get_by_text("Signed in as vera (viewer)")).to_be_visible()
    main = page.locator("[data-testid='stMain']")
    expect(main.get_by_role("link", name="History and reports", exact=False)).to_be_visible()
    expect(main.get_by_role("link", name="Training", exact=False)).to_have_count(0)
    shots(page, "home-viewer")

    nav(page, "History", "History")
    page.get_by_text("Reviewing episodes needs the operator role.").wait_for(timeout=60_000)
    settle(page)
    expect(page.get_by_role("button", name="Save review")).to_have_count(0)
    shots(page, "history-viewer")

    sidebar = page.locator("[data-testid='stSidebar']")
    for name, role in (("Training", "engineer"), ("Stations", "engineer")):
        expect(sidebar.get_by_role("link", name=name)).to_have_count(0)  # not offered
        page.goto(f"{app_server.url}/{name}")  # typed by hand: the sign-in holds, the page refuses
        refusal = page.get_by_text(f"that needs the {role} role", exact=False)
        expect(refusal).to_be_visible(timeout=60_000)
        settle(page)
        assert page.locator("[data-testid='stAlert']").count() == 1
        expect(main.locator("h1")).to_have_count(0)  # nothing of the page itself
        expect(
            main.locator(
                "[data-testid='stFileUploader'], [data-testid='stTextInput'], "
                "[data-testid='stButton']"
            )
        ).to_have_count(0)
        shots(page, f"{name.lower()}-refused")

    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("Sign in to GloveWatch", exact=True).wait_for(timeout=60_000)
    settle(page)
    shots(page, "signed-out")
    audit = {r.action for r in app_server.store().audit.recent(50)}
    assert "user.sign_in" in audit
