"""Single sign-on that fails in words: every misconfiguration of Streamlit's OIDC section (or
of the role map, or a missing Authlib) is one sentence on the sign-in page and in the log,
never an exception."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from core.accounts import add_user
from core.accounts.sso import SsoSetup, authlib_version, check_sso
from tests.helpers import ROOT
from tests.pages.support import PASSWORD, values

GOOD = {
    "redirect_uri": "https://gw.plant.example/oauth2callback",
    "cookie_secret": "a long random cookie secret",
    "client_id": "glovewatch",
    "client_secret": "s3cret",
    "server_metadata_url": "https://idp.plant.example/.well-known/openid-configuration",
}
ROLE_MAP = "gw-admins=admin,gw-staff=viewer"


def _without(*keys: str) -> dict:
    return {k: v for k, v in GOOD.items() if k not in keys}


def test_authlib_is_installed_as_the_requirements_pin_it():
    assert authlib_version() == "1.9.10"


def test_a_complete_configuration_offers_its_providers():
    assert check_sso(GOOD, ROLE_MAP) == SsoSetup((None,), None)
    named = {
        "redirect_uri": GOOD["redirect_uri"],
        "cookie_secret": "x" * 32,
        "okta": _without("redirect_uri", "cookie_secret"),
        "entra": _without("redirect_uri", "cookie_secret"),
    }
    assert check_sso(named, ROLE_MAP) == SsoSetup(("okta", "entra"), None)
    assert check_sso(None, "") == SsoSetup() and not check_sso({}, "").usable


@pytest.mark.parametrize(
    "auth, role_map, authlib, words",
    [
        (GOOD, ROLE_MAP, "", "Authlib package is not installed"),
        (GOOD, ROLE_MAP, "1.2.0", "Authlib package is too old (1.2.0)"),
        (_without("server_metadata_url"), ROLE_MAP, None, "lacks server_metadata_url"),
        (_without("client_id", "client_secret"), ROLE_MAP, None, "lacks client_id, client_secret"),
        (_without("redirect_uri"), ROLE_MAP, None, "lacks redirect_uri"),
        (_without("cookie_secret"), ROLE_MAP, None, "lacks cookie_secret"),
        ({**GOOD, "redirect_uri": "https://gw.example/"}, ROLE_MAP, None, "/oauth2callback"),
        ({**GOOD, "server_metadata_url": "idp.example"}, ROLE_MAP, None, "not a web address"),
        ({**GOOD, "client_id": "  "}, ROLE_MAP, None, "lacks client_id"),
        (
            {**_without("client_id"), "my_idp": {"client_id": "x"}},
            ROLE_MAP,
            None,
            "'my_idp' may not hold '_'",
        ),
        (
            {"redirect_uri": GOOD["redirect_uri"], "cookie_secret": "x", "okta": {}},
            ROLE_MAP,
            None,
            "[auth.okta]",
        ),
        (GOOD, "", None, "GLOVEWATCH_OIDC_ROLE_MAP is empty"),
        (GOOD, "gw-admins", None, "not CLAIM_VALUE=ROLE"),
        (GOOD, "gw-admins=boss", None, "Unknown role 'boss'"),
    ],
)
def test_every_misconfiguration_is_one_sentence(auth, role_map, authlib, words):
    setup = check_sso(auth, role_map, authlib)
    assert setup.problem and words in setup.problem and not setup.usable
    assert setup.problem.endswith(".") and "\n" not in setup.problem


def open_page(secrets: dict) -> Any:
    """The app under AppTest with ``secrets`` as its secrets.toml."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=120)
    at.secrets.update(secrets)
    return at.run()


@pytest.fixture
def admin(store):
    add_user(store, "ada", "admin", PASSWORD)
    return store


@pytest.mark.parametrize(
    "auth, words",
    [
        (_without("server_metadata_url"), "lacks server_metadata_url"),
        (_without("client_secret", "cookie_secret"), "lacks cookie_secret"),
        ({"redirect_uri": "x"}, "lacks cookie_secret"),
    ],
)
def test_the_sign_in_page_says_what_is_wrong(admin, gw_home, monkeypatch, caplog, auth, words):
    monkeypatch.setenv("GLOVEWATCH_OIDC_ROLE_MAP", ROLE_MAP)
    at = open_page(secrets={"auth": auth})
    assert not at.exception, at.exception
    assert "Sign in to GloveWatch" in values(at.title)
    [warning] = values(at.warning)
    assert words in warning and warning.startswith("Single sign-on is off")
    assert not [b for b in at.button if "single sign-on" in str(b.label)]  # nothing to press
    assert any(words in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    # the local sign-in still works beside it
    at.text_input(key="gw-login-name").set_value("ada")
    at.text_input(key="gw-login-password").set_value(PASSWORD)
    at.button(key="FormSubmitter:gw-login-Sign in").click().run()
    assert not at.exception and "Signed in as ada (admin)" in " ".join(values(at.sidebar.caption))


def test_a_missing_authlib_is_said_on_the_page(admin, gw_home, monkeypatch, caplog):
    import core.accounts.sso as sso

    # Uninstalling a package inside the test process is out of reach: its look-up says so.
    monkeypatch.setattr(sso, "authlib_version", lambda: None)
    monkeypatch.setenv("GLOVEWATCH_OIDC_ROLE_MAP", ROLE_MAP)
    at = open_page(secrets={"auth": GOOD})
    assert not at.exception
    assert any("Authlib package is not installed" in w for w in values(at.warning))
    assert any("Authlib" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


def test_a_good_configuration_offers_the_button(admin, gw_home, monkeypatch):
    monkeypatch.setenv("GLOVEWATCH_OIDC_ROLE_MAP", ROLE_MAP)
    at = open_page(secrets={"auth": GOOD})
    assert not at.exception and not at.warning
    [button] = [b for b in at.button if b.label == "Sign in with single sign-on"]
    button.click().run()  # AppTest cannot follow the redirect; nothing may raise
    assert not at.exception
