"""Local accounts and the audit log of every change (who did what, when)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, insert, or_, select, update

from core.storage import schema as t
from core.storage.database import Database, now


@dataclass(frozen=True)
class UserRecord:
    id: int
    name: str
    password_hash: str | None
    role: str
    disabled: bool
    failed_logins: int
    locked_until: str | None
    created_at: str
    last_login_at: str | None


@dataclass(frozen=True)
class WebSessionRecord:
    """A browser sign-in: the hash of its token, whose it is, and its times."""

    token_hash: str
    user_name: str
    role: str
    created_at: str
    last_seen_at: str
    ended_at: str | None


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: str
    actor: str
    action: str
    target: str | None
    details: dict[str, Any]


def _user(row: Any) -> UserRecord:
    return UserRecord(
        row.id,
        row.name,
        row.password_hash,
        row.role,
        bool(row.disabled),
        int(row.failed_logins),
        row.locked_until,
        row.created_at,
        row.last_login_at,
    )


class UserRepo:
    def __init__(self, db: Database):
        self.db = db

    def add(self, name: str, password_hash: str | None, role: str) -> UserRecord:
        with self.db.write() as c:
            c.execute(
                insert(t.users).values(
                    name=name, password_hash=password_hash, role=role, created_at=now()
                )
            )
        found = self.get(name)
        assert found is not None
        return found

    def get(self, name: str) -> UserRecord | None:
        with self.db.read() as c:
            row = c.execute(select(t.users).where(t.users.c.name == name)).first()
        return _user(row) if row else None

    def all(self) -> list[UserRecord]:
        with self.db.read() as c:
            return [_user(r) for r in c.execute(select(t.users).order_by(t.users.c.name))]

    def update(self, name: str, **values: Any) -> bool:
        with self.db.write() as c:
            return bool(
                c.execute(update(t.users).where(t.users.c.name == name).values(**values)).rowcount
            )

    def claim_attempt(self, name: str, at: str) -> UserRecord | None:
        """Count a sign-in attempt before its password is checked, in one statement, so that
        parallel attempts each get their own number whatever their timing. A lock that has
        passed by ``at`` starts the count again at 1; while a lock holds nothing changes.
        Returns the row as it is after the update (None: no active account with a password of
        that name)."""
        u = t.users
        locked = and_(u.c.locked_until.is_not(None), u.c.locked_until > at)
        expired = and_(u.c.locked_until.is_not(None), u.c.locked_until <= at)
        n = case((expired, 1), else_=u.c.failed_logins + 1)
        q = (
            update(u)
            .where(u.c.name == name, u.c.disabled == 0, u.c.password_hash.is_not(None))
            .values(
                failed_logins=case((locked, u.c.failed_logins), else_=n),
                locked_until=case((expired, None), else_=u.c.locked_until),
            )
            .returning(*u.c)
        )
        with self.db.write() as c:
            row = c.execute(q).first()
        return _user(row) if row else None

    def lock(self, name: str, at: str, until: str, max_failures: int) -> bool:
        """Lock the account until ``until`` if its count reached ``max_failures`` and no lock
        holds at ``at``; whether this call locked it (one of many parallel callers does)."""
        u = t.users
        q = (
            update(u)
            .where(
                u.c.name == name,
                u.c.failed_logins >= max_failures,
                or_(u.c.locked_until.is_(None), u.c.locked_until <= at),
            )
            .values(locked_until=until)
        )
        with self.db.write() as c:
            return bool(c.execute(q).rowcount)

    def add_web_session(self, token_hash: str, user_name: str, role: str, at: str) -> None:
        with self.db.write() as c:
            c.execute(
                insert(t.web_sessions).values(
                    token_hash=token_hash,
                    user_name=user_name,
                    role=role,
                    created_at=at,
                    last_seen_at=at,
                )
            )

    def web_session(self, token_hash: str) -> WebSessionRecord | None:
        w = t.web_sessions
        with self.db.read() as c:
            row = c.execute(select(w).where(w.c.token_hash == token_hash)).first()
        if row is None:
            return None
        return WebSessionRecord(
            row.token_hash, row.user_name, row.role, row.created_at, row.last_seen_at, row.ended_at
        )

    def touch_web_session(self, token_hash: str, at: str) -> None:
        w = t.web_sessions
        with self.db.write() as c:
            c.execute(update(w).where(w.c.token_hash == token_hash).values(last_seen_at=at))

    def end_web_sessions(
        self, at: str, token_hash: str | None = None, user_name: str | None = None
    ) -> int:
        """End one sign-in (by token hash) or all of a user's; how many were still open."""
        w = t.web_sessions
        which = w.c.token_hash == token_hash if token_hash else w.c.user_name == user_name
        with self.db.write() as c:
            q = update(w).where(which, w.c.ended_at.is_(None)).values(ended_at=at)
            return int(c.execute(q).rowcount)

    def count_active(self, role: str | None = None) -> int:
        u = t.users
        q = select(func.count()).select_from(u).where(u.c.disabled == 0)
        if role:
            q = q.where(u.c.role == role)
        with self.db.read() as c:
            return int(c.execute(q).scalar_one())


class AuditRepo:
    def __init__(self, db: Database):
        self.db = db

    def add(
        self,
        actor: str,
        action: str,
        target: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        with self.db.write() as c:
            c.execute(
                insert(t.audit_log).values(
                    at=now(),
                    actor=actor,
                    action=action,
                    target=target,
                    details_json=json.dumps(details or {}),
                )
            )

    def recent(self, limit: int = 200, action: str | None = None) -> list[AuditRecord]:
        a = t.audit_log
        q = select(a).order_by(a.c.id.desc()).limit(limit)
        if action:
            q = q.where(a.c.action == action)
        with self.db.read() as c:
            return [
                AuditRecord(r.id, r.at, r.actor, r.action, r.target, json.loads(r.details_json))
                for r in c.execute(q)
            ]
