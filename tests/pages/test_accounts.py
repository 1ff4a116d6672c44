"""Accounts and roles on the pages (AppTest over a real store): the local demo without accounts,
sign-in once accounts exist, what each role may open and do, lockout, sign-out, and the refusal
to serve beyond this machine without an admin."""

from __future__ import annotations

from typing import Any

import pytest
from streamlit import config as st_config

from tests.helpers import open_page
from tests.pages.support import (
    INPUT_WIDGETS,
    PASSWORD,
    episode_picker,
    finished_run,
    metrics,
    plain,
    sign_in,
    texts,
    values,
)
from ui.text import md

PAGES = {
    "live": "pages/1_Live.py",
    "batch": "pages/2_Batch.py",
    "history": "pages/3_History.py",
    "training": "pages/4_Training.py",
    "stations": "pages/5_Stations.py",
    "label": "pages/6_Label.py",
    "admin": "pages/7_Admin.py",
    "cameras": "pages/8_Cameras.py",
}
TITLES = {
    "live": "Live monitoring",
    "batch": "Batch detection",
    "history": "History",
    "training": "Training",
    "stations": "Stations and rules",
    "label": "Label: the plant's own frames",
    "admin": "Admin",
    "cameras": "Cameras",
}

# What a page may show besides its refusal: nothing but the sidebar's sign-out.
CONTENT = (
    "title",
    "subheader",
    "markdown",
    *INPUT_WIDGETS,
    "download_button",
    "metric",
    "dataframe",
    "tab",
    "expander",
    "image",
    "plotly_chart",
    "info",
    "warning",
    "success",
    "page_link",
)


@pytest.fixture
def synth_home(store, gw_home):
    """Two days of synthetic history (episodes to look at and review; no model run)."""
    from core.analytics.synth import generate

    generate(store, stations=2, days=2, seconds_rows=500, seed=3)
    return gw_home


def content(at: Any) -> dict[str, int]:
    """Elements a page drew in its main area (other than its error)."""
    return {kind: len(at.main.get(kind)) for kind in CONTENT if at.main.get(kind)}


def button_keys(at: Any) -> list[str]:
    return [b.key for b in at.button]


def signed_in(name: str, page: str | None = None) -> Any:
    at = sign_in(open_page(), name)
    assert not at.exception, at.exception
    if page:
        at.switch_page(PAGES[page]).run()
        assert not at.exception, at.exception
    return at


def test_without_accounts_every_page_opens_without_sign_in(gw_home, fake_webrtc):
    at = open_page()
    assert not at.get("text_input"), "no sign-in form in the local demo"
    assert any("Local demo" in c for c in values(at.sidebar.caption))
    for name, path in PAGES.items():
        at.switch_page(path).run()
        assert not at.exception, (name, at.exception)
        assert TITLES[name] in values(at.title), name
        assert not any("role" in e for e in values(at.error)), name


def test_once_an_account_exists_a_session_must_sign_in(store, gw_home):
    from core.accounts import add_user

    add_user(store, "vera", "viewer", PASSWORD)
    at = open_page()
    assert "Sign in to GloveWatch" in values(at.title)
    assert not at.metric and not at.get("page_link")  # nothing of the overview
    at.switch_page(PAGES["history"]).run()
    assert "Sign in to GloveWatch" in values(at.title) and "History" not in values(at.title)


@pytest.mark.parametrize(
    "page, role",
    [
        ("training", "engineer"),
        ("stations", "engineer"),
        ("live", "operator"),
        ("batch", "operator"),
        ("label", "engineer"),
        ("admin", "admin"),
    ],
)
def test_viewer_is_refused_with_the_needed_role_and_nothing_else(accounts, fake_webrtc, page, role):
    at = signed_in("vera", page)
    errors = values(at.error)
    assert len(errors) == 1 and f"needs the {role} role" in errors[0], errors
    assert "vera (viewer)" in plain(errors[0])
    assert content(at) == {}, content(at)
    assert button_keys(at) == ["gw-sign-out"]
    assert not fake_webrtc.kwargs  # the camera was never offered


def test_viewer_opens_home_and_history_but_cannot_review(accounts, synth_home):
    at = signed_in("vera")
    assert "🧤 GloveWatch" in values(at.title) and "Episodes" in metrics(at)
    links = [p.proto.page for p in at.main.get("page_link")]
    assert "History" in links and not {
        "Live",
        "Batch",
        "Training",
        "Stations",
        "Label",
        "Admin",
    } & set(links), links  # what a viewer may open
    at.switch_page(PAGES["history"]).run()
    assert not at.exception and not at.error
    assert "History" in values(at.title) and "Episodes" in metrics(at)
    assert "Reviewing episodes needs the operator role." in values(at.caption)
    assert "FormSubmitter:review-Save review" not in button_keys(at)
    assert not any(b.label == "Run retention now" for b in at.button)
    at.switch_page(PAGES["cameras"]).run()
    assert "Cameras" in values(at.title) and not at.error


def test_operator_runs_live_and_batch_and_saves_a_review(accounts, synth_home, store, fake_webrtc):
    at = signed_in("otto", "live")
    assert "Live monitoring" in values(at.title) and not at.error
    assert fake_webrtc.kwargs  # the camera is offered
    at.switch_page(PAGES["batch"]).run()
    assert "Batch detection" in values(at.title) and not at.error
    assert at.button(key="batch-run") is not None
    at.switch_page(PAGES["history"]).run()
    eid = episode_picker(at).value
    at.radio[-1].set_value("confirmed")
    at.button(key="FormSubmitter:review-Save review").click().run()
    assert not at.exception and not at.error
    assert any(f"#{eid} marked confirmed" in s for s in values(at.success))
    ep = store.events.get(eid)
    assert (ep.review, ep.reviewed_by) == ("confirmed", "otto")
    assert not any(b.label == "Run retention now" for b in at.button)  # an admin's action
    at.switch_page(PAGES["training"]).run()
    assert len(at.error) == 1 and "needs the engineer role" in at.error[0].value


def test_engineer_trains_and_edits_stations_but_cannot_promote(accounts, store):
    finished_run(store)
    at = signed_in("erin", "training")
    assert "Training" in values(at.title) and not at.error
    assert "Promoting a model needs the admin role." in values(at.caption)
    assert "promote" not in button_keys(at) and "rollback" not in button_keys(at)
    at.switch_page(PAGES["stations"]).run()
    assert "Stations and rules" in values(at.title) and not at.error
    at.switch_page(PAGES["label"]).run()
    assert TITLES["label"] in values(at.title) and not at.error
    at.switch_page(PAGES["admin"]).run()
    assert len(at.error) == 1 and "needs the admin role" in at.error[0].value


def test_admin_promotes_runs_retention_and_sees_users_and_audit(accounts, synth_home, store):
    run = finished_run(store)
    at = signed_in("ada", "training")
    at.button(key="promote").click().run()
    assert not at.exception and not at.error
    assert any(f"Run {run.id} is now the active model" in s for s in values(at.success))
    assert store.registry.active().run_id == run.id

    at.switch_page(PAGES["history"]).run()
    at.checkbox(key="retention_sure").check().run()
    next(b for b in at.button if b.label == "Run retention now").click().run()
    assert not at.exception
    assert any("Removed" in s or "removed" in s for s in values(at.success)), values(at.success)

    at.switch_page(PAGES["admin"]).run()
    assert not at.exception and not at.error
    users, audit = (d.value for d in at.dataframe)
    assert dict(zip(users["user"], users["role"])) == accounts
    assert {"user.add", "user.sign_in", "model.promote", "retention.run"} <= set(audit["action"])
    assert set(audit["who"]) >= {"ada", "test"}


def test_wrong_password_shows_one_error_and_five_failures_lock_the_account(accounts, store):
    at = open_page()
    sign_in(at, "vera", "not-the-password")
    assert values(at.error) == ["Wrong user name or password."]
    assert "Sign in to GloveWatch" in values(at.title)
    for _ in range(4):
        sign_in(at, "vera", "not-the-password")
    assert store.users.get("vera").locked_until
    sign_in(at, "vera")  # the right password no longer helps
    errors = values(at.error)
    assert len(errors) == 1 and "locked until" in errors[0], errors
    assert "Sign in to GloveWatch" in values(at.title) and not at.metric
    assert "user.locked" in {r.action for r in store.audit.recent(50)}


@pytest.mark.parametrize(
    "name, pages",
    [
        ("vera", ["Overview", "History", "Cameras"]),
        ("otto", ["Overview", "Live", "Batch", "History", "Cameras"]),
        (
            "ada",
            [
                "Overview",
                "Live",
                "Batch",
                "History",
                "Cameras",
                "Training",
                "Stations",
                "Label",
                "Admin",
            ],
        ),
    ],
)
def test_the_sidebar_lists_only_the_pages_of_the_role(accounts, name, pages):
    at = signed_in(name)
    assert [p.label for p in at.sidebar.get("page_link")] == pages
    at.button(key="gw-sign-out").click().run()
    assert not at.sidebar.get("page_link")  # nothing before a sign-in


def test_sign_out_returns_to_the_form(accounts):
    at = signed_in("otto")
    assert any("Signed in as otto (operator)" in c for c in values(at.sidebar.caption))
    at.button(key="gw-sign-out").click().run()
    assert not at.exception
    assert "Sign in to GloveWatch" in values(at.title) and not at.metric
    at.switch_page(PAGES["batch"]).run()
    assert "Sign in to GloveWatch" in values(at.title) and not at.get("file_uploader")


def test_a_user_name_is_shown_as_typed(store, gw_home):
    """Names of accounts (and of single-sign-on identities) are never read as Markdown."""
    from core.accounts import add_user

    add_user(store, "ada", "admin", PASSWORD)  # the first account is an admin
    add_user(store, "_ana_", "viewer", PASSWORD)
    at = signed_in("_ana_", "training")
    assert any(
        c.startswith(f"Signed in as {md('_ana_')} (viewer)") for c in values(at.sidebar.caption)
    ), values(at.sidebar.caption)
    [error] = values(at.error)
    assert error.startswith(md("_ana_ (viewer) may not train models"))


@pytest.fixture
def served_on_all_addresses():
    """The server's address option set to 0.0.0.0 (as `streamlit run --server.address`)."""
    before = st_config.get_option("server.address")
    st_config.set_option("server.address", "0.0.0.0")
    yield
    st_config.set_option("server.address", before)


def test_serving_beyond_loopback_without_an_admin_is_refused(
    store, gw_home, served_on_all_addresses
):
    at = open_page()
    errors = values(at.error)
    assert len(errors) == 1 and "no admin account" in errors[0] and "0.0.0.0" in errors[0]
    assert not at.metric and not at.get("text_input")  # neither the app nor a sign-in form
    from core.accounts import add_user

    store.users.add("vera", None, "viewer")  # a store from before admins came first
    at.run()
    assert len(at.error) == 1 and "no admin account" in at.error[0].value  # a viewer is not
    add_user(store, "ada", "viewer", PASSWORD)  # made an admin: no admin existed
    at.run()
    assert not at.error and "Sign in to GloveWatch" in values(at.title)


def test_sign_in_error_never_echoes_the_typed_name(accounts):
    """The sign-in error never echoes the typed name (no user text rendered)."""
    at = open_page()
    sign_in(at, "![x](http://evil.example/x.png)", "whatever-password")
    assert values(at.error) == ["Wrong user name or password."]
    assert not any("evil.example" in t for t in texts(at))


def test_the_first_account_made_on_the_admin_page_is_an_admin(store, gw_home):
    at = open_page(PAGES["admin"])  # the loopback demo: no accounts yet
    assert at.selectbox[0].value == "admin"  # offered as the admin it will be
    at.text_input[0].set_value("vic")
    at.selectbox[0].set_value("viewer")
    at.text_input[1].set_value(PASSWORD)
    at.button(key="FormSubmitter:add-user-Add user").click().run()
    assert not at.exception
    assert store.users.get("vic").role == "admin"
    at = open_page()
    assert "Sign in to GloveWatch" in values(at.title)  # an account exists: sign in now
    sign_in(at, "vic")
    assert any("Signed in as vic (admin)" in c for c in values(at.sidebar.caption))
