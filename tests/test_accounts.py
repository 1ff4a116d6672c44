"""Accounts: adding users, sign-in with lockout, roles and permissions, single sign-on roles,
when the app may serve beyond this machine, and the audit trail of every change."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from argon2 import PasswordHasher

from core import accounts
from core.accounts import (
    DEMO_ACCOUNT,
    MAX_FAILURES,
    NEEDS,
    Account,
    AccountError,
    Permission,
    Role,
    accounts_exist,
    add_user,
    audit_log,
    is_loopback,
    parse_role_map,
    role_from_claims,
    serve_refusal,
    set_disabled,
    set_password,
    set_role,
    sign_in,
)
from core.errors import EXIT_FORBIDDEN, AccessDenied, exit_code

PASSWORD = "correct horse battery"
PRODUCTION_HASHER = accounts._hasher


@pytest.fixture(autouse=True)
def quick_hashing(monkeypatch):
    """Argon2id with small work factors: these tests are about account rules, not about the
    cost of a hash (the production parameters are used in test_old_hashes_are_upgraded)."""
    monkeypatch.setattr(
        accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def ana(store):
    """An admin account."""
    add_user(store, "ana", Role.ADMIN, PASSWORD, by="setup")
    return store


def test_add_user_checks_name_password_and_duplicates(ana):
    store = ana
    rec = add_user(store, " ana.b@plant ", "engineer", PASSWORD, by="root")
    assert rec.name == "ana.b@plant" and rec.role == "engineer" and not rec.disabled
    assert rec.password_hash and PASSWORD not in rec.password_hash  # hashed, never stored
    assert rec.password_hash.startswith("$argon2id$")
    for bad in ("a", "x" * 65, "has space", "semi;colon", ""):
        with pytest.raises(AccountError, match="2-64"):
            add_user(store, bad, Role.VIEWER, PASSWORD)
    with pytest.raises(AccountError, match="at least 10"):
        add_user(store, "bob", Role.VIEWER, "short")
    with pytest.raises(AccountError, match="already a user"):
        add_user(store, "ana.b@plant", Role.VIEWER, PASSWORD)
    with pytest.raises(AccountError, match="Unknown role 'boss'"):
        add_user(store, "bob", "boss", PASSWORD)
    assert [u.name for u in store.users.all()] == ["ana", "ana.b@plant"]  # nothing half-added
    sso = add_user(store, "sso-only", Role.VIEWER, None)
    assert sso.password_hash is None
    with pytest.raises(AccountError, match="Wrong user name or password"):
        sign_in(store, "sso-only", "")


def test_sign_in_and_a_refusal_that_does_not_tell_who_exists(ana):
    acc = sign_in(ana, " ana ", PASSWORD)
    assert acc == Account("ana", Role.ADMIN, "local")
    assert ana.users.get("ana").last_login_at is not None
    with pytest.raises(AccountError) as wrong_password:
        sign_in(ana, "ana", "wrong password!")
    with pytest.raises(AccountError) as no_such_user:
        sign_in(ana, "nobody", "wrong password!")
    assert str(wrong_password.value) == str(no_such_user.value) == "Wrong user name or password."
    assert "ana" not in str(wrong_password.value)


def test_lockout_after_five_failures_even_for_the_right_password(ana):
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(AccountError, match="Wrong"):
            sign_in(ana, "ana", "not the password")
    assert ana.users.get("ana").failed_logins == MAX_FAILURES - 1
    with pytest.raises(AccountError, match="Wrong"):  # the 5th failure locks
        sign_in(ana, "ana", "not the password")
    locked_until = ana.users.get("ana").locked_until
    assert locked_until and locked_until > datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    with pytest.raises(AccountError, match="locked until"):
        sign_in(ana, "ana", PASSWORD)
    assert [a.target for a in ana.audit.recent(action="user.locked")] == ["ana"]
    # once the lock has passed, the right password works again
    past = (datetime.now() - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")
    ana.users.update("ana", locked_until=past)
    assert sign_in(ana, "ana", PASSWORD).role is Role.ADMIN
    rec = ana.users.get("ana")
    assert rec.failed_logins == 0 and rec.locked_until is None


def test_a_success_resets_the_failure_count(ana):
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(AccountError):
            sign_in(ana, "ana", "not the password")
    sign_in(ana, "ana", PASSWORD)
    for _ in range(MAX_FAILURES - 1):  # four more: still not locked
        with pytest.raises(AccountError, match="Wrong"):
            sign_in(ana, "ana", "not the password")
    assert sign_in(ana, "ana", PASSWORD).name == "ana"


def test_disabled_user_is_refused_and_can_be_enabled(ana):
    add_user(ana, "bob", Role.OPERATOR, PASSWORD)
    set_disabled(ana, "bob", True, by="ana")
    with pytest.raises(AccountError, match="disabled"):
        sign_in(ana, "bob", PASSWORD)
    set_disabled(ana, "bob", False, by="ana")
    assert sign_in(ana, "bob", PASSWORD).role is Role.OPERATOR


def test_the_last_admin_cannot_be_demoted_or_disabled(ana):
    with pytest.raises(AccountError, match="last active admin"):
        set_role(ana, "ana", Role.ENGINEER)
    with pytest.raises(AccountError, match="last active admin"):
        set_disabled(ana, "ana", True)
    assert ana.users.get("ana").role == "admin" and not ana.users.get("ana").disabled
    add_user(ana, "cy", Role.ADMIN, PASSWORD)
    set_role(ana, "ana", "viewer", by="cy")  # another admin exists now
    assert ana.users.get("ana").role == "viewer"
    with pytest.raises(AccountError, match="last active admin"):
        set_disabled(ana, "cy", True)
    with pytest.raises(AccountError, match="no user 'zed'"):
        set_role(ana, "zed", Role.VIEWER)


def test_password_change(ana):
    with pytest.raises(AccountError, match="at least 10"):
        set_password(ana, "ana", "short")
    set_password(ana, "ana", "a new long passphrase", by="ana")
    with pytest.raises(AccountError, match="Wrong"):
        sign_in(ana, "ana", PASSWORD)
    assert sign_in(ana, "ana", "a new long passphrase").name == "ana"


def test_roles_from_single_sign_on_claims():
    mapping = parse_role_map("gw-admins=admin, gw-eng=engineer,gw-staff=viewer,")
    assert mapping == {"gw-admins": "admin", "gw-eng": "engineer", "gw-staff": "viewer"}
    assert (
        role_from_claims({"groups": ["gw-staff", "gw-eng"]}, "groups", mapping) is Role.ENGINEER
    )  # the highest role wins
    assert role_from_claims({"groups": "gw-admins"}, "groups", mapping) is Role.ADMIN
    assert role_from_claims({"groups": ["other"]}, "groups", mapping) is None
    assert role_from_claims({"roles": ["gw-admins"]}, "groups", mapping) is None
    assert role_from_claims({}, "groups", mapping) is None
    assert role_from_claims({"groups": []}, "groups", mapping) is None


def test_parse_role_map_errors():
    with pytest.raises(AccountError, match="not CLAIM_VALUE=ROLE"):
        parse_role_map("gw-admins")
    with pytest.raises(AccountError, match="Unknown role 'owner'"):
        parse_role_map("gw-admins=owner")
    assert parse_role_map("") == {}


def test_serving_beyond_this_machine_needs_an_admin(store):
    for address in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert is_loopback(address) and serve_refusal(store, address) is None
    for address in ("0.0.0.0", "", "192.168.1.20", "::", "plant-server"):
        assert not is_loopback(address)
        reason = serve_refusal(store, address)
        assert reason is not None and "admin" in reason and "users add" in reason
    assert "all addresses" in serve_refusal(store, "")
    store.users.add("op", None, Role.OPERATOR.label)  # a store from before admins came first
    assert serve_refusal(store, "0.0.0.0") is not None  # an operator is not enough
    add_user(store, "ana", Role.ADMIN, PASSWORD)
    assert serve_refusal(store, "0.0.0.0") is None and serve_refusal(store, "") is None
    assert accounts_exist(store)


def test_the_first_account_is_always_an_admin(store):
    first = add_user(store, "vic", Role.VIEWER, PASSWORD, by="cli")
    assert first.role == "admin"
    assert store.audit.recent(action="user.add")[0].details == {"role": "admin", "first": True}
    assert add_user(store, "val", Role.VIEWER, PASSWORD, by="vic").role == "viewer"
    # a store whose only admin was disabled by hand: the next account is an admin again
    store.users.update("vic", disabled=1)
    assert add_user(store, "wes", "operator", None, by="cli").role == "admin"


def test_require_names_the_role_that_is_needed():
    viewer = Account("vic", Role.VIEWER)
    viewer.require(Permission.VIEW_HISTORY)
    with pytest.raises(AccessDenied) as denied:
        viewer.require(Permission.TRAIN)
    assert "engineer" in str(denied.value) and "vic (viewer)" in str(denied.value)
    assert exit_code(denied.value) == EXIT_FORBIDDEN
    op = Account("olga", Role.OPERATOR)
    assert op.can(Permission.REVIEW) and not op.can(Permission.EDIT_STATIONS)
    with pytest.raises(AccessDenied, match="admin role"):
        Account("eng", Role.ENGINEER).require(Permission.MANAGE_USERS)
    for permission, needed in NEEDS.items():  # each role can do what the ones below can
        assert Account("a", needed).can(permission)
        assert Account("a", Role.ADMIN).can(permission)
        if needed > Role.VIEWER:
            assert not Account("a", Role(needed - 1)).can(permission)
    assert DEMO_ACCOUNT.role is Role.ADMIN and DEMO_ACCOUNT.source == "demo"


def test_every_change_is_in_the_audit_log(store):
    add_user(store, "ana", Role.ADMIN, PASSWORD, by="setup")
    add_user(store, "bob", "operator", PASSWORD, by="ana")
    set_role(store, "bob", Role.ENGINEER, by="ana")
    set_disabled(store, "bob", True, by="ana")
    set_disabled(store, "bob", False, by="ana")
    set_password(store, "bob", "another long password", by="bob")
    log = list(reversed(store.audit.recent()))
    assert [(a.actor, a.action, a.target) for a in log] == [
        ("setup", "user.add", "ana"),
        ("ana", "user.add", "bob"),
        ("ana", "user.set_role", "bob"),
        ("ana", "user.disable", "bob"),
        ("ana", "user.enable", "bob"),
        ("bob", "user.password", "bob"),
    ]
    assert log[1].details == {"role": "operator"}
    assert log[2].details == {"from": "operator", "to": "engineer"}
    assert all("password" not in str(a.details) for a in log)
    sign_in(store, "bob", "another long password")
    assert store.audit.recent(1)[0].action == "user.sign_in"


def test_only_admins_read_the_audit_log(ana):
    entries = audit_log(ana, Account("ana", Role.ADMIN))
    assert entries and entries[0].action == "user.add"
    assert [a.action for a in audit_log(ana, Account("ana", Role.ADMIN), action="user.add")] == [
        "user.add"
    ]
    with pytest.raises(AccessDenied, match="admin"):
        audit_log(ana, Account("eng", Role.ENGINEER))


def test_old_hashes_are_upgraded_at_the_next_sign_in(store, monkeypatch):
    add_user(store, "ana", Role.ADMIN, PASSWORD)  # hashed with weaker parameters
    weak = store.users.get("ana").password_hash
    monkeypatch.setattr(accounts, "_hasher", PRODUCTION_HASHER)
    assert sign_in(store, "ana", PASSWORD).name == "ana"
    strong = store.users.get("ana").password_hash
    assert strong != weak and not PRODUCTION_HASHER.check_needs_rehash(strong)
    assert PRODUCTION_HASHER.verify(strong, PASSWORD)


def test_role_names():
    assert Role.parse(" Engineer ") is Role.ENGINEER and Role.ADMIN.label == "admin"
    with pytest.raises(AccountError):
        Role.parse("root")


def _guess_in_parallel(store, guesses: list[str]) -> list[str]:
    """Sign in as ana with every guess at once (one thread each); the outcome of each."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    start = Barrier(len(guesses))

    def attempt(password: str) -> str:
        start.wait()
        try:
            return sign_in(store, "ana", password).name
        except AccountError as exc:
            return str(exc)

    with ThreadPoolExecutor(len(guesses)) as pool:
        return list(pool.map(attempt, guesses))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_parallel_wrong_passwords_lock_after_five_with_real_argon2(backend, monkeypatch, request):
    """20 wrong passwords at once (the production Argon2 parameters, so each check is slow and
    the attempts overlap): only five are checked, the account locks, and the right password is
    refused afterwards."""
    from core.storage import open_store

    monkeypatch.setattr(accounts, "_hasher", PRODUCTION_HASHER)
    store = open_store(request.getfixturevalue("pg_url")) if backend == "postgresql" else None
    store = store or request.getfixturevalue("store")
    add_user(store, "ana", Role.ADMIN, PASSWORD, by="setup")
    outcomes = _guess_in_parallel(store, [f"wrong guess {i:02d}" for i in range(20)])
    wrong = [o for o in outcomes if o.startswith("Wrong")]
    locked = [o for o in outcomes if "locked until" in o]
    assert len(wrong) <= MAX_FAILURES and len(wrong) + len(locked) == 20
    rec = store.users.get("ana")
    assert rec.locked_until and rec.locked_until > datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    with pytest.raises(AccountError, match="locked until"):
        sign_in(store, "ana", PASSWORD)
    assert len(store.audit.recent(action="user.locked")) == 1
    assert store.audit.recent(action="user.sign_in") == []
