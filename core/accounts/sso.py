"""Single sign-on that fails in words: the ``[auth]`` section of Streamlit's secrets and the
role map checked before anyone presses the button (Streamlit's ``st.login`` raises instead).
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.accounts import AccountError, parse_role_map

# What Streamlit's st.login needs (its [auth] section of .streamlit/secrets.toml).
OIDC_SHARED_KEYS = ("redirect_uri", "cookie_secret")
OIDC_PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
AUTHLIB_MIN = (1, 3, 2)
_SECRETS = ".streamlit/secrets.toml"


@dataclass(frozen=True)
class SsoSetup:
    """Single sign-on as configured: the providers to offer (``None`` is Streamlit's default
    provider) or, when it cannot work, why (one sentence for the page and the log)."""

    providers: tuple[str | None, ...] = ()
    problem: str | None = None

    @property
    def usable(self) -> bool:
        return bool(self.providers) and self.problem is None


def authlib_version() -> str | None:
    """The installed Authlib version (None: not installed)."""
    try:
        return importlib.metadata.version("authlib")
    except importlib.metadata.PackageNotFoundError:
        return None


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def _provider_problem(name: str | None, section: Mapping[str, Any]) -> str | None:
    where = f"[auth.{name}]" if name else "[auth]"
    missing = [k for k in OIDC_PROVIDER_KEYS if not str(section.get(k) or "").strip()]
    if missing:
        return (
            f"Single sign-on is off: {where} in {_SECRETS} lacks {', '.join(missing)} "
            "(the identity provider's client id and secret, and its "
            ".well-known/openid-configuration address)."
        )
    if not str(section["server_metadata_url"]).startswith(("https://", "http://")):
        return (
            f"Single sign-on is off: server_metadata_url in {where} is not a web address "
            "(it is the identity provider's .well-known/openid-configuration URL)."
        )
    return None


def _shared_problem(auth: Mapping[str, Any]) -> str | None:
    missing = [k for k in OIDC_SHARED_KEYS if not str(auth.get(k) or "").strip()]
    if missing:
        return f"Single sign-on is off: [auth] in {_SECRETS} lacks {', '.join(missing)}."
    if not str(auth["redirect_uri"]).rstrip("/").endswith("/oauth2callback"):
        return (
            "Single sign-on is off: redirect_uri in [auth] must end in /oauth2callback "
            "(e.g. https://glovewatch.plant.example/oauth2callback)."
        )
    return None


def check_sso(
    auth: Mapping[str, Any] | None, role_map: str, authlib: str | None = None
) -> SsoSetup:
    """Whether single sign-on can work with this ``[auth]`` section and role map, checked
    before anyone presses the button: every misconfiguration is a sentence, never an
    exception from Streamlit. ``authlib``: the installed version (default: looked up)."""
    if not auth:
        return SsoSetup()
    authlib = authlib if authlib is not None else authlib_version()
    if not authlib or _version_tuple(authlib) < AUTHLIB_MIN:
        return SsoSetup(
            problem="Single sign-on is configured but the Authlib package "
            + (f"is too old ({authlib})" if authlib else "is not installed")
            + "; run `pip install -r requirements.txt`."
        )
    named = {k: v for k, v in auth.items() if isinstance(v, Mapping)}
    providers: tuple[str | None, ...] = tuple(named) if named else (None,)
    problem = _shared_problem(auth)
    for name in providers:
        if problem:
            break
        if name is not None and "_" in name:
            problem = f"Single sign-on is off: the provider name '{name}' may not hold '_'."
        else:
            problem = _provider_problem(name, named[name] if name else auth)
    if problem is None:
        try:
            if not parse_role_map(role_map):
                problem = (
                    "Single sign-on is off: GLOVEWATCH_OIDC_ROLE_MAP is empty, so nobody "
                    "signing in through it would get a role (e.g. gw-admins=admin)."
                )
        except AccountError as exc:
            problem = f"Single sign-on is off: GLOVEWATCH_OIDC_ROLE_MAP is wrong: {exc}"
    return SsoSetup(providers, problem)
