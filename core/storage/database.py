"""Connections to the store: one SQLAlchemy engine per store, one connection per use.

:class:`Database` wraps an engine. Every read or write checks a connection out of the
engine's pool for just that block, so threads and Streamlit sessions never share one
connection (SQLite connections are not safe to share, and a write transaction on a shared
connection would hold the lock for everyone). The embedded default is a SQLite file in WAL
mode; ``GLOVEWATCH_DB_URL`` selects another backend. Write blocks on SQLite start with
``BEGIN IMMEDIATE`` so that two writers queue on the lock instead of failing half-way.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc
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


def _store_error(err: BaseException, where: str) -> StoreError:
    """One clear sentence for what the database driver said."""
    text = str(getattr(err, "orig", err) or err).lower()
    if "not a database" in text or "file is encrypted" in text:
        return StoreError(f"{where} is not a GloveWatch store (not an SQLite database). Move it "
                          "away or set GLOVEWATCH_HOME to another folder; nothing was changed.")
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return StoreError(f"{where} cannot be written (read-only file or folder). Set "
                          "GLOVEWATCH_HOME to a folder you can write to.")
    if "disk is full" in text or "database or disk is full" in text:
        return StoreError(f"The disk holding {where} is full: free some space. Nothing "
                          "recorded so far was lost.")
    if "locked" in text:
        return StoreError(f"{where} stayed locked by another process for too long; try again.")
    return StoreError(f"The store {where} cannot be used: {str(err).splitlines()[0]}")


class Database:
    """One store, reachable from any thread."""

    def __init__(self, url: str):
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self.where = (Path(parsed.database).name if self.dialect == "sqlite" and parsed.database
                      else parsed.render_as_string(hide_password=True))
        if self.dialect == "sqlite":
            if parsed.database:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(
                url, connect_args={"timeout": 30, "check_same_thread": False},
                pool_size=8, max_overflow=16, pool_pre_ping=False)
            event.listen(self.engine, "connect", _sqlite_connect)
            event.listen(self.engine, "begin", _sqlite_begin)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        self._migrate()

    def _migrate(self) -> None:
        try:
            if self.dialect == "sqlite":
                raw = self.engine.raw_connection()
                try:
                    migrations.migrate_sqlite(raw.driver_connection)  # type: ignore[arg-type]
                finally:
                    raw.close()
            else:
                schema.metadata.create_all(self.engine)
        except StoreError:
            raise
        except (exc.SQLAlchemyError, sqlite3.Error, OSError) as err:
            raise _store_error(err, self.where) from err

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading (a consistent snapshot for the block)."""
        try:
            with self.engine.connect() as conn:
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
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("gw_write")
                         else "BEGIN")


_OPEN: dict[str, Database] = {}
_OPEN_LOCK = threading.Lock()


def open_database(url: str) -> Database:
    """The process's :class:`Database` for ``url`` (created and migrated on first use)."""
    with _OPEN_LOCK:
        db = _OPEN.get(url)
        if db is None:
            db = _OPEN[url] = Database(url)
        return db


def forget(url: str) -> None:
    """Drop the cached database of ``url`` (after its file was replaced or deleted)."""
    with _OPEN_LOCK:
        db = _OPEN.pop(url, None)
    if db is not None:
        db.dispose()
