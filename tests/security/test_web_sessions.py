"""Sign-ins that outlive a reload: the token in the cookie stands for the account while it is
within its hours, not idle, and the account unchanged; sign-out and account changes end it
everywhere; the store holds only its hash."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import pytest
from argon2 import PasswordHasher

from core import accounts
from core.accounts import Account, Role, add_user, set_disabled, set_password, set_role
from core.accounts import sessions as web

PASSWORD = "correct horse battery"
T0 = datetime(2026, 1, 5, 8, 0, 0)


@pytest.fixture(autouse=True)
def quick_hashing(monkeypatch):
    monkeypatch.setattr(
        accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def two(store):
    add_user(store, "ana", Role.ADMIN, PASSWORD)
    add_user(store, "bob", Role.OPERATOR, PASSWORD, by="ana")
    return store


def test_a_token_brings_the_account_back_and_only_its_hash_is_stored(two):
    bob = Account("bob", Role.OPERATOR)
    token = web.start(two, bob, T0)
    assert len(token) >= 43 and web.resume(two, token, 8, 60, T0 + timedelta(minutes=5)) == bob
    held = two.users.web_session(hashlib.sha256(token.encode()).hexdigest())
    assert held is not None and held.user_name == "bob" and token not in str(held)
    assert web.resume(two, token + "x", 8, 60, T0) is None
    assert web.resume(two, "", 8, 60, T0) is None and web.resume(two, "x" * 5000, 8, 60, T0) is None
    assert web.start(two, bob, T0) != token  # a new token per sign-in


def test_a_token_ends_after_its_hours_or_when_idle(two):
    bob = Account("bob", Role.OPERATOR)
    busy = web.start(two, bob, T0)
    for minute in range(0, 8 * 60 - 10, 20):  # used all day
        assert web.resume(two, busy, 8, 60, T0 + timedelta(minutes=minute)) == bob
    assert web.resume(two, busy, 8, 60, T0 + timedelta(hours=8, minutes=1)) is None
    assert web.resume(two, busy, 8, 60, T0 + timedelta(minutes=10)) is None  # ended for good
    idle = web.start(two, bob, T0)
    assert web.resume(two, idle, 8, 30, T0 + timedelta(minutes=31)) is None


def test_sign_out_ends_the_token_for_every_tab(two):
    token = web.start(two, Account("bob", Role.OPERATOR), T0)
    web.end(two, token, T0 + timedelta(minutes=1))
    assert web.resume(two, token, 8, 60, T0 + timedelta(minutes=2)) is None


@pytest.mark.parametrize(
    "change",
    [
        lambda s: set_role(s, "bob", "viewer", by="ana"),
        lambda s: set_disabled(s, "bob", True, by="ana"),
        lambda s: set_password(s, "bob", "another long passphrase", by="ana"),
    ],
)
def test_account_changes_end_every_sign_in_of_the_user(two, change):
    now = datetime.now()
    bob = [web.start(two, Account("bob", Role.OPERATOR), now) for _ in range(2)]
    ana = web.start(two, Account("ana", Role.ADMIN), now)
    change(two)
    # ended by the change itself, not only refused at resume (which checks role and disabled)
    assert two.users.end_web_sessions(now.strftime("%Y-%m-%d %H:%M:%S"), user_name="bob") == 0
    assert [web.resume(two, t, 8, 60) for t in bob] == [None, None]
    assert web.resume(two, ana, 8, 60) == Account("ana", Role.ADMIN)


def test_a_role_changed_behind_the_store_ends_the_token(two):
    token = web.start(two, Account("bob", Role.OPERATOR), T0)
    two.users.update("bob", role="admin")  # not through set_role: still refused
    assert web.resume(two, token, 8, 60, T0) is None


def test_tokens_work_on_postgresql(pg_url):
    from core.storage import open_store

    store = open_store(pg_url)
    add_user(store, "ana", Role.ADMIN, PASSWORD)
    token = web.start(store, Account("ana", Role.ADMIN), T0)
    assert web.resume(store, token, 8, 60, T0 + timedelta(minutes=1)) == Account("ana", Role.ADMIN)
    web.end(store, token)
    assert web.resume(store, token, 8, 60, T0 + timedelta(minutes=2)) is None
