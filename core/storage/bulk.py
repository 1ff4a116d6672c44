"""Bulk loading of many rows in one transaction (demo data, benchmarks, store copies)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from sqlalchemy import Connection, exc, func, insert, literal, select

from core.storage import schema as t
from core.storage.coverage import rebuild_daily
from core.storage.database import Database, advance_sequences, analyze


def _chunks(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


class BulkRepo:
    def __init__(self, db: Database):
        self.db = db

    def is_empty(self) -> bool:
        """True when the store holds no sessions, episodes or coverage."""
        with self.db.read() as c:
            return not any(
                c.execute(select(literal(1)).select_from(tbl).limit(1)).first()
                for tbl in (t.sessions, t.events, t.coverage_hourly)
            )

    def max_id(self, table: str) -> int:
        tbl = t.metadata.tables[table]
        with self.db.read() as c:
            return int(c.execute(select(func.coalesce(func.max(tbl.c.id), 0))).scalar_one())

    def load(
        self, tables: Sequence[tuple[str, Sequence[str], Iterable[Sequence[Any]]]]
    ) -> dict[str, int]:
        """Insert ``(table, columns, rows)`` for each table, all in one transaction.

        Rows may be a generator (streamed, never all in memory); rows may carry explicit ids
        (the id sequences move past them, so later inserts get new ids). Hourly coverage rows
        are summed into the daily roll-up. Returns rows per table.
        """
        counts: dict[str, int] = {}
        with self.db.write() as c:
            for table, columns, rows in tables:
                counts[table] = load_rows(c, table, columns, rows)
            advance_sequences(c, counts)
            loaded = list(counts)
            if "coverage_hourly" in counts and "coverage_daily" not in counts:
                rebuild_daily(c)
                loaded.append("coverage_daily")
            analyze(c, loaded)
        return counts


def load_rows(
    c: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Insert rows (tuples in ``columns`` order) into ``table`` on an open write connection, by
    the fastest path of its backend; returns how many. Id sequences are left to the caller
    (:func:`~core.storage.database.advance_sequences`)."""
    tbl = t.metadata.tables[table]
    for name in columns:  # the names go into SQL text: only the schema's own
        if name not in tbl.c:
            raise ValueError(f"{table} has no column {name!r}")
    cols = ", ".join(f'"{name}"' for name in columns)
    n = 0
    if c.dialect.name == "sqlite":
        # the driver's executemany streams an iterator at full speed
        sql = f'INSERT INTO "{tbl.name}" ({cols}) VALUES ({", ".join("?" * len(columns))})'
        for chunk in _chunks(rows, 50_000):
            c.exec_driver_sql(sql, [tuple(r) for r in chunk])
            n += len(chunk)
    elif c.dialect.name == "postgresql":
        # COPY in the write transaction: an order of magnitude faster than INSERTs
        import psycopg

        raw: Any = c.connection.driver_connection
        sql = f'COPY "{tbl.name}" ({cols}) FROM STDIN'
        try:
            with raw.cursor() as cur, cur.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
                    n += 1
        except psycopg.errors.IntegrityError as err:  # the driver's own: as SQLAlchemy's
            raise exc.IntegrityError(sql, None, err) from err
        except psycopg.errors.DataError as err:
            raise exc.DataError(sql, None, err) from err
    else:
        stmt = insert(tbl)
        for chunk in _chunks(rows, 5_000):
            c.execute(stmt, [dict(zip(columns, r)) for r in chunk])
            n += len(chunk)
    return n
