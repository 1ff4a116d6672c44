"""Sign-in for the pages: local accounts, optional single sign-on, the loopback demo.

Every page calls :func:`current_account` (through ``page_setup``) before it draws anything, so
a page a role may not use is refused on the server, whatever the browser asks for.

A local sign-in survives reloads and new tabs: the browser keeps a random token in the
``gw_session`` cookie (see :mod:`core.accounts.sessions`; only its hash is in the store).
Streamlit sends the cookie with each new connection (``st.context.cookies``) but offers a
page no way to set an HTTP-only one, so the cookie is written by a line of script
(``SameSite=Strict``, ``Secure`` over HTTPS); it carries no name or role, only the token the
store can end at any time (sign-out, disabling, a new password or role).
"""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st

from core import accounts
from core.accounts import Account, Role
from core.accounts import sessions as web
from core.accounts.sso import SsoSetup, check_sso
from core.config import Settings
from core.errors import GloveWatchError
from core.storage import Store
from ui.text import md

log = logging.getLogger("glovewatch.ui.auth")

_KEY = "gw-signed-in"  # the Account signed in in this browser session
_TOKEN = "gw-token"  # noqa: S105  (a session-state key: the cookie token is kept under it)
_COOKIE = "gw-cookie"  # a cookie change still to send to the browser: (token, max age)
_OUT = "gw-signed-out"  # this session signed out: its old cookie is no news
_LOGGED = "gw-sso-logged"  # the SSO problem this session has logged already


def _sso_setup(s: Settings) -> SsoSetup:
    """Single sign-on as ``.streamlit/secrets.toml`` configures it, checked in words."""
    try:
        if not st.secrets.load_if_toml_exists():
            return SsoSetup()
        auth: Any = st.secrets.get("auth")
        section = auth.to_dict() if hasattr(auth, "to_dict") else auth
    except Exception as exc:  # a secrets file Streamlit cannot read
        section, setup = None, SsoSetup((None,), f"Single sign-on is off: {exc}")
    else:
        setup = check_sso(section, s.oidc_role_map)
    if setup.problem and st.session_state.get(_LOGGED) != setup.problem:
        st.session_state[_LOGGED] = setup.problem
        log.error("%s", setup.problem)
    return setup


def _sso_account(s: Settings) -> Account | None:
    """The signed-in single-sign-on identity with its mapped role, if any."""
    try:
        user = st.user
        if not user.is_logged_in:
            return None
        claims = user.to_dict()
    except Exception as exc:  # Streamlit's own sign-in state unreadable
        log.error("single sign-on identity unreadable: %s", exc)
        return None
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


def _sso_buttons(setup: SsoSetup) -> None:
    if setup.problem:
        st.warning(setup.problem)
        return
    for provider in setup.providers:
        label = f"Sign in with {provider}" if provider else "Sign in with single sign-on"
        if st.button(label, key=f"gw-sso-{provider or 'default'}"):
            try:
                st.login(provider)
            except Exception as exc:  # Streamlit refuses the configuration after all
                log.error("single sign-on refused: %s", exc)
                st.error(f"Single sign-on did not start: {exc}")


def _login_form(store: Store, s: Settings, setup: SsoSetup) -> None:
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
            token = web.start(store, account)
            st.session_state[_KEY] = account
            st.session_state[_TOKEN] = token
            st.session_state[_COOKIE] = (token, int(s.session_hours * 3600))
            st.session_state.pop(_OUT, None)
            st.rerun()
    if setup.providers or setup.problem:
        _sso_buttons(setup)


def _send_cookie() -> None:
    """Write (or clear) the sign-in cookie in the browser, once."""
    change = st.session_state.pop(_COOKIE, None)
    if change is None:
        return
    token, max_age = change
    # the token is URL-safe base64: nothing in it can end the string or the cookie
    st.html(
        "<script>document.cookie = "
        f"'{web.COOKIE}={token}; Max-Age={max_age}; Path=/; SameSite=Strict' + "
        "(location.protocol === 'https:' ? '; Secure' : '');</script>",
        unsafe_allow_javascript=True,
        width="content",
    )


def _cookie_token() -> str:
    try:
        return str(st.context.cookies.get(web.COOKIE) or "")
    except Exception:  # no browser connection (scripts, tests)
        return ""


def _held(store: Store, s: Settings) -> Account | None:
    """The local sign-in of this browser: held by this session, or brought back from the
    cookie after a reload or in a new tab; None once the store has ended it."""
    token = st.session_state.get(_TOKEN) or ("" if st.session_state.get(_OUT) else _cookie_token())
    if not token:
        return None
    account = web.resume(store, token, s.session_hours, s.idle_minutes)
    if account is None:
        ended = _KEY in st.session_state or not st.session_state.get(_OUT)
        for key in (_KEY, _TOKEN):
            st.session_state.pop(key, None)
        st.session_state[_OUT] = True
        st.session_state[_COOKIE] = ("", 0)
        if ended:
            st.info("Your session has ended; please sign in again.")
        return None
    if _KEY not in st.session_state:
        st.session_state[_KEY] = account
        st.session_state[_TOKEN] = token
    return account


def current_account(store: Store, s: Settings) -> Account | None:
    """Who is using this browser session; None after drawing the sign-in form."""
    if not accounts.accounts_exist(store):
        return accounts.DEMO_ACCOUNT  # a local demo: nobody to sign in as
    setup = _sso_setup(s)
    account = _sso_account(s) if setup.usable else None
    account = account or _held(store, s)
    if account is None:
        _login_form(store, s, setup)
    _send_cookie()
    return account


def sign_out_button(store: Store, account: Account) -> None:
    """The sidebar line naming the user, with a sign-out button (it ends the sign-in in every
    tab of this browser)."""
    if account.source == "demo":
        st.sidebar.caption("Local demo: no accounts exist, so nobody needs to sign in.")
        return
    st.sidebar.caption(f"Signed in as {md(account.name)} ({account.role.label})")
    if st.sidebar.button("Sign out", key="gw-sign-out"):
        web.end(store, st.session_state.pop(_TOKEN, "") or _cookie_token())
        st.session_state.pop(_KEY, None)
        st.session_state[_OUT] = True
        st.session_state[_COOKIE] = ("", 0)
        log.info("%s signed out", account.name)
        if account.source == "sso":
            st.logout()
        st.rerun()


__all__ = ["Role", "current_account", "sign_out_button"]
