"""Real browser: a sign-in survives a reload and a new tab, through a cookie that holds only a
random token (nothing secret in any URL); the sidebar lists only the pages of the role; sign-out
in one tab signs every tab out."""

from __future__ import annotations

import hashlib

import pytest

from tests.e2e.conftest import app_server, browser_page, goto, settle, shots  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "correct-horse-7"


@pytest.fixture
def two_accounts(store):
    from core.accounts import add_user

    add_user(store, "ada", "admin", PASSWORD, by="test")
    add_user(store, "vera", "viewer", PASSWORD, by="test")
    return store


def _signed_in(page, who: str) -> None:
    page.get_by_text(f"Signed in as {who}", exact=False).first.wait_for(timeout=90_000)
    settle(page)


def test_reload_and_new_tab_keep_the_sign_in_and_sign_out_ends_both(
    two_accounts,
    app_server,  # noqa: F811
    browser_page,  # noqa: F811
    shots,  # noqa: F811
):
    from playwright.sync_api import expect

    page = browser_page
    goto(page, app_server, "", "Sign in to GloveWatch")
    page.get_by_label("User name", exact=True).fill("vera")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    _signed_in(page, "vera (viewer)")
    sidebar = page.locator("[data-testid='stSidebar']")
    expect(sidebar.get_by_role("link", name="History")).to_have_count(1)
    for hidden in ("Live", "Batch", "Training", "Stations", "Label", "Admin"):
        expect(sidebar.get_by_role("link", name=hidden)).to_have_count(0)
    shots(page, "viewer-sidebar")

    [cookie] = [c for c in page.context.cookies() if c["name"] == "gw_session"]
    assert cookie["sameSite"] == "Strict" and len(cookie["value"]) >= 43
    assert cookie["expires"] > 0  # kept for the configured hours, beyond this tab
    held = two_accounts.users.web_session(hashlib.sha256(cookie["value"].encode()).hexdigest())
    assert held is not None and held.user_name == "vera" and held.ended_at is None

    page.reload(wait_until="domcontentloaded")
    _signed_in(page, "vera (viewer)")
    expect(page.get_by_text("Sign in to GloveWatch", exact=True)).to_have_count(0)
    assert cookie["value"] not in page.url
    shots(page, "after-reload")

    # another tab: the fixture's page owns its context, so a second context with the same
    # cookie jar stands in for it
    tab = page.context.browser.new_context(viewport=page.viewport_size)
    tab.add_cookies(page.context.cookies())
    other = tab.new_page()
    other.goto(f"{app_server.url}/History", wait_until="domcontentloaded")
    _signed_in(other, "vera (viewer)")
    other.get_by_text("History", exact=True).first.wait_for(timeout=60_000)
    assert cookie["value"] not in other.url

    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("Sign in to GloveWatch", exact=True).wait_for(timeout=60_000)
    settle(page)
    assert two_accounts.users.web_session(held.token_hash).ended_at is not None
    other.reload(wait_until="domcontentloaded")
    other.get_by_text("Sign in to GloveWatch", exact=True).wait_for(timeout=60_000)
    settle(other)
    shots(other, "other-tab-signed-out")
    page.reload(wait_until="domcontentloaded")
    page.get_by_text("Sign in to GloveWatch", exact=True).wait_for(timeout=60_000)
