"""Accounts, roles and what each role may do; sign-in with lockout; the audit trail.

Roles, each including the ones before it:

- *viewer*: Home, History and reports;
- *operator*: Live, Batch, reviewing episodes;
- *engineer*: Training, data sets, Stations, uploading models;
- *admin*: users, retention, promoting and rolling back models, settings, the audit log.

Passwords are hashed with Argon2id (argon2-cffi). Repeated failures lock an account for a
while. Single sign-on through Streamlit's OIDC (``st.login``) maps a claim of the identity
provider to a role (:func:`role_from_claims`). With no account at all, a local demo on the
loopback address needs no sign-in (everyone acts as the local admin); the app refuses to
serve on any other address until an admin account exists (:func:`serve_refusal`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.errors import AccessDenied, GloveWatchError
from core.storage import Store
from core.storage.accounts import AuditRecord, UserRecord

MAX_FAILURES = 5
LOCK_MINUTES = 15
MIN_PASSWORD = 10
LOCAL_USER = "local"  # who acts when no account exists (loopback demo)

_hasher = PasswordHasher()
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")


class Role(IntEnum):
    """Account roles; a higher role can do everything a lower one can."""

    VIEWER = 1
    OPERATOR = 2
    ENGINEER = 3
    ADMIN = 4

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise AccountError(
                f"Unknown role '{text}'; roles are {', '.join(r.name.lower() for r in cls)}."
            ) from None

    @property
    def label(self) -> str:
        return self.name.lower()


class Permission(StrEnum):
    VIEW_HISTORY = "view history and reports"
    RUN_LIVE = "run live monitoring"
    RUN_BATCH = "run batch detection"
    REVIEW = "review episodes"
    TRAIN = "train models"
    MANAGE_DATASETS = "import data sets"
    EDIT_STATIONS = "edit stations"
    UPLOAD_MODELS = "upload models"
    LABEL = "label site frames"
    MANAGE_USERS = "manage users"
    RUN_RETENTION = "run retention"
    PROMOTE_MODELS = "promote and roll back models"
    VIEW_AUDIT = "view the audit log"


NEEDS: dict[Permission, Role] = {
    Permission.VIEW_HISTORY: Role.VIEWER,
    Permission.RUN_LIVE: Role.OPERATOR,
    Permission.RUN_BATCH: Role.OPERATOR,
    Permission.REVIEW: Role.OPERATOR,
    Permission.TRAIN: Role.ENGINEER,
    Permission.MANAGE_DATASETS: Role.ENGINEER,
    Permission.EDIT_STATIONS: Role.ENGINEER,
    Permission.UPLOAD_MODELS: Role.ENGINEER,
    Permission.LABEL: Role.ENGINEER,
    Permission.MANAGE_USERS: Role.ADMIN,
    Permission.RUN_RETENTION: Role.ADMIN,
    Permission.PROMOTE_MODELS: Role.ADMIN,
    Permission.VIEW_AUDIT: Role.ADMIN,
}


class AccountError(GloveWatchError, ValueError):
    """A user change that cannot be made, or a sign-in that failed (one sentence)."""


@dataclass(frozen=True)
class Account:
    """Who is acting: a signed-in user, a single-sign-on identity or the local demo user."""

    name: str
    role: Role
    source: str = "local"  # local (password) | sso | demo

    def can(self, permission: Permission) -> bool:
        return self.role >= NEEDS[permission]

    def require(self, permission: Permission) -> None:
        """Raise :class:`AccessDenied` unless this account may do ``permission``."""
        if not self.can(permission):
            raise AccessDenied(
                f"{self.name} ({self.role.label}) may not {permission.value}; "
                f"that needs the {NEEDS[permission].label} role."
            )


DEMO_ACCOUNT = Account(LOCAL_USER, Role.ADMIN, "demo")


def _check_name(name: str) -> str:
    name = name.strip()
    if not _NAME.match(name):
        raise AccountError("A user name is 2-64 letters, digits or _ . @ -.")
    return name


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"A password needs at least {MIN_PASSWORD} characters.")


def add_user(
    store: Store, name: str, role: Role | str, password: str | None, by: str = "-"
) -> UserRecord:
    """Create a local account (``password`` None: single sign-on only).

    While no active admin exists (the first account of a store), the new account is an admin
    whatever ``role`` says: otherwise nobody could manage users afterwards.
    """
    name = _check_name(name)
    role = role if isinstance(role, Role) else Role.parse(role)
    if store.users.get(name) is not None:
        raise AccountError(f"There is already a user '{name}'.")
    if password is not None:
        _check_password(password)
    first = store.users.count_active(Role.ADMIN.label) == 0
    if first:
        role = Role.ADMIN
    rec = store.users.add(name, _hasher.hash(password) if password else None, role.label)
    store.audit.add(
        by, "user.add", name, {"role": role.label, **({"first": True} if first else {})}
    )
    return rec


def _user(store: Store, name: str) -> UserRecord:
    rec = store.users.get(name.strip())
    if rec is None:
        raise AccountError(f"There is no user '{name}'.")
    return rec


def set_role(store: Store, name: str, role: Role | str, by: str = "-") -> None:
    rec = _user(store, name)
    role = role if isinstance(role, Role) else Role.parse(role)
    if rec.role == Role.ADMIN.label and role != Role.ADMIN and _last_admin(store, rec):
        raise AccountError(f"{name} is the last active admin; make another admin first.")
    store.users.update(rec.name, role=role.label)
    store.users.end_web_sessions(_stamp(_now()), user_name=rec.name)
    store.audit.add(by, "user.set_role", rec.name, {"from": rec.role, "to": role.label})


def set_disabled(store: Store, name: str, disabled: bool, by: str = "-") -> None:
    rec = _user(store, name)
    if disabled and rec.role == Role.ADMIN.label and _last_admin(store, rec):
        raise AccountError(f"{name} is the last active admin; make another admin first.")
    store.users.update(rec.name, disabled=int(disabled), failed_logins=0, locked_until=None)
    if disabled:
        store.users.end_web_sessions(_stamp(_now()), user_name=rec.name)
    store.audit.add(by, "user.disable" if disabled else "user.enable", rec.name)


def set_password(store: Store, name: str, password: str, by: str = "-") -> None:
    rec = _user(store, name)
    _check_password(password)
    store.users.update(
        rec.name, password_hash=_hasher.hash(password), failed_logins=0, locked_until=None
    )
    store.users.end_web_sessions(_stamp(_now()), user_name=rec.name)  # a stolen one too
    store.audit.add(by, "user.password", rec.name)


def _last_admin(store: Store, rec: UserRecord) -> bool:
    return not rec.disabled and store.users.count_active(Role.ADMIN.label) <= 1


def list_users(store: Store) -> list[UserRecord]:
    return store.users.all()


def _now() -> datetime:
    return datetime.now()


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _lock(store: Store, name: str, at: datetime, until: str) -> None:
    if store.users.lock(name, _stamp(at), until, MAX_FAILURES):  # once, however many raced
        store.audit.add(name, "user.locked", name, {"failures": MAX_FAILURES})


def sign_in(store: Store, name: str, password: str) -> Account:
    """Check a password; the account, or :class:`AccountError` with a reason that does not
    tell a stranger whether the user exists.

    The attempt is counted in the store before the (slow) password check, so parallel guesses
    each use up one of the :data:`MAX_FAILURES` tries; a locked account refuses the right
    password too.
    """
    refused = AccountError("Wrong user name or password.")
    rec = store.users.get(name.strip())
    if rec is None or rec.password_hash is None:
        _hasher.hash(password)  # same work either way: no timing hint that the name is wrong
        raise refused
    if rec.disabled:
        raise AccountError("This account is disabled; ask an admin.")
    at = _now()
    lock_until = _stamp(at + timedelta(minutes=LOCK_MINUTES))
    claimed = store.users.claim_attempt(rec.name, _stamp(at))
    if claimed is None or claimed.password_hash is None:  # disabled or changed meanwhile
        raise refused
    over = claimed.failed_logins > MAX_FAILURES  # the tries were used by attempts still running
    if over:
        _lock(store, rec.name, at, lock_until)
    if over or (claimed.locked_until and claimed.locked_until > _stamp(at)):
        until = (claimed.locked_until if not over else None) or lock_until
        raise AccountError(
            f"Too many failed sign-ins: this account is locked until {until[11:16]}."
        )
    try:
        _hasher.verify(claimed.password_hash, password)
    except (VerificationError, InvalidHashError):
        if claimed.failed_logins >= MAX_FAILURES:
            _lock(store, rec.name, at, lock_until)
        raise refused from None
    if _hasher.check_needs_rehash(claimed.password_hash):
        store.users.update(rec.name, password_hash=_hasher.hash(password))
    store.users.update(rec.name, failed_logins=0, locked_until=None, last_login_at=_stamp(_now()))
    store.audit.add(rec.name, "user.sign_in", rec.name)
    return Account(rec.name, Role.parse(claimed.role), "local")


def accounts_exist(store: Store) -> bool:
    return store.users.count_active() > 0


def role_from_claims(claims: dict[str, Any], claim: str, mapping: dict[str, str]) -> Role | None:
    """The role of a single-sign-on identity: the highest role any value of ``claim`` maps
    to (``mapping`` from claim values to role names), or None (no access)."""
    value = claims.get(claim)
    values = value if isinstance(value, list) else [value] if value is not None else []
    roles = [Role.parse(mapping[str(v)]) for v in values if str(v) in mapping]
    return max(roles) if roles else None


def parse_role_map(text: str) -> dict[str, str]:
    """``"gw-admins=admin,gw-eng=engineer"`` as a mapping (roles checked)."""
    out = {}
    for part in text.split(","):
        if not part.strip():
            continue
        value, sep, role = part.partition("=")
        if not sep:
            raise AccountError(f"'{part}' in the role map is not CLAIM_VALUE=ROLE.")
        out[value.strip()] = Role.parse(role).label
    return out


def is_loopback(address: str) -> bool:
    """Whether a server address only listens on this machine."""
    if address in ("", "localhost"):
        return address == "localhost"
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def serve_refusal(store: Store, address: str) -> str | None:
    """Why the app must not serve on ``address`` (None when it may)."""
    if is_loopback(address):
        return None
    if store.users.count_active(Role.ADMIN.label) == 0:
        return (
            f"GloveWatch is served on '{address or 'all addresses'}', beyond this machine, "
            "but has no admin account: anyone on the network could use it. Create one with "
            "`python -m core users add NAME --role admin`, or serve on 127.0.0.1."
        )
    return None


def audit_log(
    store: Store, account: Account, limit: int = 500, action: str | None = None
) -> list[AuditRecord]:
    """The audit trail (admins only)."""
    account.require(Permission.VIEW_AUDIT)
    return store.audit.recent(limit, action)
