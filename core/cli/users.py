"""Commands for accounts and the audit log: users add/list/set-role/disable/enable/passwd,
audit. Whoever runs these has the server's shell, so they act as an administrator."""

from __future__ import annotations

import argparse
import getpass
import sys

from core.cli.common import Subparsers, add_json, emit, say, store
from core.config import settings
from core.errors import EXIT_OK


def _actor() -> str:
    return settings().user or getpass.getuser()


def _password(args: argparse.Namespace) -> str | None:
    if args.no_password:
        return None
    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        from core.accounts import AccountError

        raise AccountError("The two passwords differ.")
    return first


def cmd_users(args: argparse.Namespace) -> int:
    from core import accounts

    st = store()
    if args.action == "list":
        users = accounts.list_users(st)
        if args.json:
            emit(
                [
                    {
                        "name": u.name,
                        "role": u.role,
                        "disabled": u.disabled,
                        "password": u.password_hash is not None,
                        "locked_until": u.locked_until,
                        "created_at": u.created_at,
                        "last_login_at": u.last_login_at,
                    }
                    for u in users
                ]
            )
        for u in users if not args.json else ():
            say(
                f"{u.name:<24} {u.role:<9} {'disabled' if u.disabled else 'active':<9}"
                f" last sign-in {u.last_login_at or 'never'}"
            )
        return EXIT_OK
    if not args.name:
        raise accounts.AccountError(f"Give the user name: python -m core users {args.action} NAME")
    if args.action == "add":
        wanted = args.role or "viewer"
        rec = accounts.add_user(st, args.name, wanted, _password(args), by=_actor())
        if rec.role != wanted:
            say(f"user {rec.name} is an admin: the first account of a store always is")
    elif args.action == "set-role":
        if not args.role:
            raise accounts.AccountError("Give the new role with --role.")
        accounts.set_role(st, args.name, args.role, by=_actor())
    elif args.action in ("disable", "enable"):
        accounts.set_disabled(st, args.name, args.action == "disable", by=_actor())
    elif args.action == "passwd":
        password = _password(args)
        if password is None:
            raise accounts.AccountError("--no-password cannot set a password.")
        accounts.set_password(st, args.name, password, by=_actor())
    say(f"user {args.name}: {args.action} done")
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from core.accounts import DEMO_ACCOUNT, audit_log

    rows = audit_log(store(), DEMO_ACCOUNT, args.limit, args.action)
    if args.json:
        emit(
            [
                {
                    "at": r.at,
                    "actor": r.actor,
                    "action": r.action,
                    "target": r.target,
                    "details": r.details,
                }
                for r in rows
            ]
        )
    for r in rows if not args.json else ():
        say(f"{r.at}  {r.actor:<16} {r.action:<18} {r.target or ''}  {r.details or ''}")
    return EXIT_OK


def register(sub: Subparsers) -> None:
    u = sub.add_parser("users", help="local accounts and roles")
    u.add_argument("action", choices=("add", "list", "set-role", "disable", "enable", "passwd"))
    u.add_argument("name", nargs="?")
    u.add_argument("--role", choices=("viewer", "operator", "engineer", "admin"))
    u.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin",
    )
    u.add_argument(
        "--no-password",
        action="store_true",
        help="no password: the user signs in through single sign-on only",
    )
    add_json(u)
    u.set_defaults(func=cmd_users)

    a = sub.add_parser("audit", help="the audit log: who changed what, when")
    a.add_argument("--limit", type=int, default=100)
    a.add_argument("--action", help="only this action, e.g. model.promote")
    add_json(a)
    a.set_defaults(func=cmd_audit)
