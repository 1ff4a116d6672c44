"""Sign-ins that outlive a page reload: a random token in a browser cookie, held in the store.

The browser keeps only a random token (256 bits); the store keeps its SHA-256, the account,
and when it was issued and last seen. A reload or a new tab sends the cookie, and
:func:`resume` gives the account back while the sign-in is within its hours, not idle for too
long, the account still enabled and of the same role. Sign-out ends the token in the store, so
every tab that shares the cookie is signed out at its next step; disabling a user, a new
password or a new role end all of that user's sign-ins. Nothing secret is ever in a URL.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from core.accounts import Account, Role
from core.storage import Store

COOKIE = "gw_session"
TOKEN_BYTES = 32
# A sign-in's last-seen time is written at most this often (not on every click).
TOUCH_SECONDS = 30


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def start(store: Store, account: Account, now: datetime | None = None) -> str:
    """A new token for ``account`` (a local user); only its hash is stored."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    store.users.add_web_session(
        _hash(token), account.name, account.role.label, _stamp(now or datetime.now())
    )
    return token


def resume(
    store: Store, token: str, hours: float, idle_minutes: float, now: datetime | None = None
) -> Account | None:
    """The account a token still stands for (None: unknown, ended, expired, idle, or the
    account disabled or given another role since; such a token is ended)."""
    if not token or len(token) > 256:
        return None
    now = now or datetime.now()
    held = store.users.web_session(_hash(token))
    if held is None or held.ended_at is not None:
        return None
    rec = store.users.get(held.user_name)
    too_old = held.created_at < _stamp(now - timedelta(hours=hours))
    idle = held.last_seen_at < _stamp(now - timedelta(minutes=idle_minutes))
    if too_old or idle or rec is None or rec.disabled or rec.role != held.role:
        store.users.end_web_sessions(_stamp(now), token_hash=held.token_hash)
        return None
    if held.last_seen_at < _stamp(now - timedelta(seconds=TOUCH_SECONDS)):
        store.users.touch_web_session(held.token_hash, _stamp(now))
    return Account(rec.name, Role.parse(rec.role), "local")


def end(store: Store, token: str, now: datetime | None = None) -> None:
    """Sign out: the token stops working in every tab that holds it."""
    if token:
        store.users.end_web_sessions(_stamp(now or datetime.now()), token_hash=_hash(token))
