"""Connections to the store: one SQLAlchemy engine per store, one connection per use.

:class:`Database` wraps an engine. Every read or write checks a connection out of the
engine's pool for just that block, so threads and Streamlit sessions never share one
connection (SQLite connections are not safe to share, and a write transaction on a shared
connection would hold the lock for everyone). The embedded default is a SQLite file in WAL
mode; ``GLOVEWATCH_DB_URL`` selects another backend: PostgreSQL through psycopg 3
(``postgresql://`` URLs are read as ``postgresql+psycopg://``). Write blocks on SQLite start
with ``BEGIN IMMEDIATE`` so that two writers queue on the lock instead of failing half-way;
read blocks on PostgreSQL run in one ``REPEATABLE READ`` snapshot, as they do on SQLite.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Integer, create_engine, event, exc, func, select, text
from sqlalchemy.engine import make_url

from core.errors import StoreError
from core.storage import migrations, schema

log = logging.getLogger(__name__)


def now() -> str:
    """Current local time as stored (``YYYY-MM-DD HH:MM:SS``)."""
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def new_id(result: Any) -> int:
    """The primary key an ``INSERT`` just created."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


# Session settings of every PostgreSQL connection (unless the URL gives ``?options=``):
# History's groupings sort and hash a year of roll-ups in memory instead of on disk, and
# skip JIT compilation, which costs more than it saves on queries of well under a second.
PG_SESSION_OPTIONS = "-c work_mem=64MB -c jit=off"


def normalize_url(url: str) -> str:
    """The SQLAlchemy URL GloveWatch connects with: PostgreSQL URLs without a driver
    (``postgresql://``, ``postgres://``) use psycopg 3; every other URL is kept as given."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def lock(conn: Connection, name: str) -> None:
    """Take a named lock until the end of the write transaction, so that processes doing the
    same check-then-write take turns (PostgreSQL advisory lock; SQLite's write transaction
    already holds the whole store)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": f"glovewatch:{name}"}
        )


def advance_sequences(conn: Connection, tables: Iterable[str]) -> None:
    """After rows were written with explicit ids, move each table's id sequence past the
    largest id (PostgreSQL; SQLite picks the next id from the table itself)."""
    if conn.dialect.name != "postgresql":
        return
    for name in tables:
        table = schema.metadata.tables[name]
        if "id" not in table.c or not isinstance(table.c.id.type, Integer):
            continue
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                f"COALESCE((SELECT max(id) FROM {name}), 0) + 1, false)"
            )
        )


def analyze(conn: Connection, tables: Iterable[str]) -> None:
    """Refresh the planner's statistics of tables that were just bulk-loaded (PostgreSQL;
    otherwise autovacuum gets to them only later, and History's first queries plan blind)."""
    if conn.dialect.name != "postgresql":
        return
    for name in tables:
        conn.exec_driver_sql(f'ANALYZE "{schema.metadata.tables[name].name}"')


def _store_error(err: BaseException, where: str) -> StoreError:
    """One clear sentence for what the database driver said."""
    text = str(getattr(err, "orig", err) or err).lower()
    if "not a database" in text or "file is encrypted" in text:
        return StoreError(
            f"{where} is not a GloveWatch store (not an SQLite database). Move it "
            "away or set GLOVEWATCH_HOME to another folder; nothing was changed."
        )
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return StoreError(
            f"{where} cannot be written (read-only file or folder). Set "
            "GLOVEWATCH_HOME to a folder you can write to."
        )
    if "disk is full" in text or "database or disk is full" in text:
        return StoreError(
            f"The disk holding {where} is full: free some space. Nothing recorded so far was lost."
        )
    if "locked" in text:
        return StoreError(f"{where} stayed locked by another process for too long; try again.")
    if "connection refused" in text or "could not connect" in text or "timeout expired" in text:
        return StoreError(
            f"The database server of {where} cannot be reached: is it running, "
            "and is GLOVEWATCH_DB_URL right? "
            f"({str(err).splitlines()[0]})"
        )
    if "password authentication failed" in text or "no pg_hba.conf entry" in text:
        return StoreError(
            f"The database server refused the credentials of {where}: check the "
            "user and password in GLOVEWATCH_DB_URL."
        )
    if "does not exist" in text and "database" in text:
        return StoreError(
            f"The database of {where} does not exist: create it first (see docs/postgresql.md)."
        )
    return StoreError(f"The store {where} cannot be used: {str(err).splitlines()[0]}")


class Database:
    """One store, reachable from any thread."""

    def __init__(self, url: str):
        url = normalize_url(url)
        self.url = url
        self.migrated_from = 0  # the schema version found on opening (0: a new store)
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self.where = (
            Path(parsed.database).name
            if self.dialect == "sqlite" and parsed.database
            else parsed.render_as_string(hide_password=True)
        )
        if self.dialect == "sqlite":
            # A URI ("file:...?uri=true") names an existing file; only a plain path is created.
            if parsed.database and not parsed.query.get("uri"):
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(
                url,
                connect_args={"timeout": 30, "check_same_thread": False},
                pool_size=8,
                max_overflow=16,
                pool_pre_ping=False,
            )
            event.listen(self.engine, "connect", _sqlite_connect)
            event.listen(self.engine, "begin", _sqlite_begin)
        else:
            connect_args: dict[str, Any] = {}
            if self.dialect == "postgresql":
                connect_args["connect_timeout"] = 10
                if "options" not in parsed.query:  # the URL's own session settings win
                    connect_args["options"] = PG_SESSION_OPTIONS
            self.engine = create_engine(
                url, pool_pre_ping=True, pool_size=8, max_overflow=16, connect_args=connect_args
            )
        self._migrate()

    def _migrate(self) -> None:
        try:
            if self.dialect == "sqlite":
                raw = self.engine.raw_connection()
                try:
                    driver = raw.driver_connection
                    self.migrated_from = migrations.sqlite_version(driver)  # type: ignore[arg-type]
                    migrations.migrate_sqlite(driver)  # type: ignore[arg-type]
                finally:
                    raw.close()
            else:
                self.migrated_from, _ = migrations.migrate_other(self.engine, self.where)
        except StoreError:
            raise
        except (exc.SQLAlchemyError, sqlite3.Error, OSError) as err:
            raise _store_error(err, self.where) from err

    def schema_version(self) -> int:
        """The schema version the store records (``PRAGMA user_version`` on SQLite, the
        ``schema_version`` table elsewhere)."""
        with self.read() as conn:
            if self.dialect == "sqlite":
                return int(conn.exec_driver_sql("PRAGMA user_version").scalar_one())
            return int(
                conn.execute(select(func.max(migrations.schema_version.c.version))).scalar_one()
            )

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading (a consistent snapshot for the block)."""
        try:
            with self.engine.connect() as conn:
                if self.dialect == "postgresql":
                    conn = conn.execution_options(
                        isolation_level="REPEATABLE READ", postgresql_readonly=True
                    )
                yield conn
        except exc.OperationalError as err:
            raise _store_error(err, self.where) from err

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed at the end of the block, rolled back on error."""
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(gw_write=True)
                with conn.begin():
                    yield conn
        except exc.OperationalError as err:
            raise _store_error(err, self.where) from err

    def dispose(self) -> None:
        """Close every pooled connection (tests, and before deleting a store file)."""
        self.engine.dispose()


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite's own transaction handling is switched off: we emit BEGIN ourselves.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql(
        "BEGIN IMMEDIATE" if conn.get_execution_options().get("gw_write") else "BEGIN"
    )


_OPEN: dict[str, Database] = {}
_OPEN_LOCK = threading.Lock()


def open_database(url: str) -> Database:
    """The process's :class:`Database` for ``url`` (created and migrated on first use)."""
    url = normalize_url(url)
    with _OPEN_LOCK:
        db = _OPEN.get(url)
        if db is None:
            db = _OPEN[url] = Database(url)
        return db


def forget(url: str) -> None:
    """Drop the cached database of ``url`` (after its file was replaced or deleted)."""
    url = normalize_url(url)
    with _OPEN_LOCK:
        db = _OPEN.pop(url, None)
    if db is not None:
        db.dispose()
