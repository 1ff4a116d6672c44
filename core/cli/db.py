"""Commands for the store itself: ``db migrate``, ``db copy``, ``db info``.

The store is the SQLite file in the data folder unless ``GLOVEWATCH_DB_URL`` names another
database (``postgresql://user:password@host/dbname``). ``db migrate`` brings it to the current
schema; ``db copy --to URL`` copies every row of one store into an empty other one (for
example the SQLite store into a new PostgreSQL database) and checks every table's row count.
"""

from __future__ import annotations

import argparse
import sys

from core.cli.common import Subparsers, add_json, emit, say
from core.errors import EXIT_INPUT, EXIT_OK
from core.storage import Store, open_store
from core.storage.migrations import SCHEMA_VERSION


def _open(url: str | None) -> Store:
    """The configured store, or the one at ``url`` (a URL or a SQLite file path)."""
    return open_store(url) if url else open_store()


def _backend(st: Store) -> str:
    return st.db.dialect


def cmd_migrate(args: argparse.Namespace) -> int:
    """Open the store (which migrates it) and say which version it was and is."""
    st = _open(args.url)
    found, version = st.db.migrated_from, st.db.schema_version()
    change = (
        "created"
        if found == 0
        else "already current"
        if found == version
        else f"upgraded from version {found}"
    )
    if args.json:
        emit(
            {
                "backend": _backend(st),
                "store": st.db.where,
                "version": version,
                "found": found,
                "current": SCHEMA_VERSION,
            }
        )
    else:
        say(f"{st.db.where} ({_backend(st)}): schema version {version} ({change})")
    return EXIT_OK


def cmd_copy(args: argparse.Namespace) -> int:
    """Copy every table of the source store into an empty target store, then compare."""
    from core.storage.transfer import copy_store

    src = _open(args.source)
    dst = _open(args.to)

    def progress(table: str, rows: int) -> None:
        if not args.json:
            print(f"  {table}: {rows} rows", file=sys.__stderr__, flush=True)

    rep = copy_store(src.db, dst.db, force=args.force, chunk=args.chunk, progress=progress)
    if args.json:
        emit(
            {
                "from": rep.source,
                "to": rep.target,
                "seconds": rep.seconds,
                "rows": rep.rows,
                "replaced": rep.replaced,
                "ok": rep.ok,
                "tables": {
                    tc.table: {"source": tc.source, "target": tc.target} for tc in rep.tables
                },
            }
        )
    else:
        say(
            f"copied {rep.source} -> {rep.target} in {rep.seconds:.1f} s"
            + (f" (replaced {rep.replaced} rows)" if rep.replaced else "")
        )
        say(f"{'table':<20} {'source':>10} {'target':>10}")
        for tc in rep.tables:
            say(f"{tc.table:<20} {tc.source:>10} {tc.target:>10}{'' if tc.ok else '  MISMATCH'}")
        say(
            f"all {len(rep.tables)} tables match ({rep.rows} rows)"
            if rep.ok
            else "row counts differ"
        )
    return EXIT_OK if rep.ok else EXIT_INPUT


def cmd_info(args: argparse.Namespace) -> int:
    """Backend, schema version and row counts of the store."""
    from core.storage.transfer import table_counts

    st = _open(args.url)
    counts = table_counts(st.db)
    version = st.db.schema_version()
    if args.json:
        emit(
            {
                "backend": _backend(st),
                "store": st.db.where,
                "version": version,
                "current": SCHEMA_VERSION,
                "rows": counts,
            }
        )
    else:
        say(f"{st.db.where}")
        say(f"backend {_backend(st)}, schema version {version} (this GloveWatch: {SCHEMA_VERSION})")
        for name, n in counts.items():
            say(f"  {name:<20} {n:>10}")
    return EXIT_OK


def register(sub: Subparsers) -> None:
    """Add the ``db`` command and its subcommands."""
    db = sub.add_parser("db", help="the store: migrate, copy to another database, info")
    dsub = db.add_subparsers(dest="db_command", required=True)
    url_help = "a database URL or SQLite file (default: GLOVEWATCH_DB_URL, else the data folder's)"

    mg = dsub.add_parser("migrate", help="bring the store to the current schema version")
    mg.add_argument("--url", help=url_help)
    add_json(mg)
    mg.set_defaults(func=cmd_migrate)

    cp = dsub.add_parser("copy", help="copy every row of a store into an empty other store")
    cp.add_argument(
        "--to",
        required=True,
        metavar="URL",
        help="target, e.g. postgresql://user:password@host/glovewatch",
    )
    cp.add_argument("--from", dest="source", metavar="URL", help="source; " + url_help)
    cp.add_argument(
        "--force", action="store_true", help="replace the rows of a target that is not empty"
    )
    cp.add_argument("--chunk", type=int, default=10_000, help="rows read at a time")
    add_json(cp)
    cp.set_defaults(func=cmd_copy)

    inf = dsub.add_parser("info", help="backend, schema version and row counts")
    inf.add_argument("--url", help=url_help)
    add_json(inf)
    inf.set_defaults(func=cmd_info)
