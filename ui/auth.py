"""Sign-in for the pages: local accounts, optional single sign-on, the loopback demo.

Every page calls :func:`current_account` (through ``page_setup``) before it draws anything, so
a page a role may not use is refused on the server, whatever the browser asks for.
"""

from __future__ import annotations

import logging
from datetime import datetime

import streamlit as st

from core import accounts
from core.accounts import Account, Role, SignedIn
from core.config import Settings
from core.errors import GloveWatchError
from core.storage import Store
from ui.text import md

log = logging.getLogger("glovewatch.ui.auth")

_KEY = "gw-signed-in"


def _sso_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets.toml at all
        return False


def _sso_account(s: Settings) -> Account | None:
    """The signed-in single-sign-on identity with its mapped role, if any."""
    user = getattr(st, "user", None)
    if user is None or not getattr(user, "is_logged_in", False):
        return None
    claims = user.to_dict()
    try:
        role = accounts.role_from_claims(
            claims, s.oidc_role_claim, accounts.parse_role_map(s.oidc_role_map)
        )
    except GloveWatchError as exc:
        st.error(f"Single sign-on is misconfigured: {exc}")
        return None
    if role is None:
        st.error("Your single sign-on account has no GloveWatch role; ask an admin.")
        return None
    return Account(str(claims.get("email") or claims.get("name") or "sso user"), role, "sso")


def _login_form(store: Store) -> None:
    st.title("Sign in to GloveWatch")
    with st.form("gw-login"):
        name = st.text_input("User name", key="gw-login-name")
        password = st.text_input("Password", type="password", key="gw-login-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            account = accounts.sign_in(store, name, password)
        except GloveWatchError as exc:
            log.warning("sign-in refused for %r: %s", name[:64], exc)
            st.error(str(exc))
        else:
            now = datetime.now()
            st.session_state[_KEY] = SignedIn(account, now, now)
            st.rerun()
    if _sso_configured() and st.button("Sign in with single sign-on", key="gw-sso"):
        st.login()


def current_account(store: Store, s: Settings) -> Account | None:
    """Who is using this browser session; None after drawing the sign-in form."""
    if not accounts.accounts_exist(store):
        return accounts.DEMO_ACCOUNT  # a local demo: nobody to sign in as
    sso = _sso_account(s) if _sso_configured() else None
    if sso is not None:
        return sso
    held: SignedIn | None = st.session_state.get(_KEY)
    if held is not None:
        if not held.expired(
            hours=s.session_hours, idle_minutes=s.idle_minutes
        ) and accounts.still_valid(store, held):
            st.session_state[_KEY] = held.touched()
            return held.account
        st.session_state.pop(_KEY, None)
        st.info("Your session has ended; please sign in again.")
    _login_form(store)
    return None


def sign_out_button(account: Account) -> None:
    """The sidebar line naming the user, with a sign-out button."""
    if account.source == "demo":
        st.sidebar.caption("Local demo: no accounts exist, so nobody needs to sign in.")
        return
    st.sidebar.caption(f"Signed in as {md(account.name)} ({account.role.label})")
    if st.sidebar.button("Sign out", key="gw-sign-out"):
        st.session_state.pop(_KEY, None)
        if account.source == "sso":
            st.logout()
        st.rerun()


__all__ = ["Role", "current_account", "sign_out_button"]
