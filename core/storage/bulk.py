"""Bulk loading of many rows in one transaction (demo data, benchmarks, store copies)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from sqlalchemy import func, insert, select

from core.storage import schema as t
from core.storage.database import Database


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
            return not any(c.execute(select(func.count()).select_from(tbl)).scalar_one()
                           for tbl in (t.sessions, t.events, t.coverage_hourly))

    def max_id(self, table: str) -> int:
        tbl = t.metadata.tables[table]
        with self.db.read() as c:
            return int(c.execute(select(func.coalesce(func.max(tbl.c.id), 0))).scalar_one())

    def load(self, tables: Sequence[tuple[str, Sequence[str], Iterable[Sequence[Any]]]]
             ) -> dict[str, int]:
        """Insert ``(table, columns, rows)`` for each table, all in one transaction.

        Rows may be a generator (streamed, never all in memory). Returns rows per table.
        """
        counts: dict[str, int] = {}
        with self.db.write() as c:
            for table, columns, rows in tables:
                n = 0
                if self.db.dialect == "sqlite":
                    # the driver's executemany streams an iterator at full speed
                    sql = (f"INSERT INTO {t.metadata.tables[table].name} ({', '.join(columns)})"
                           f" VALUES ({', '.join('?' * len(columns))})")
                    for chunk in _chunks(rows, 50_000):
                        c.exec_driver_sql(sql, [tuple(r) for r in chunk])
                        n += len(chunk)
                else:
                    stmt = insert(t.metadata.tables[table])
                    for chunk in _chunks(rows, 5_000):
                        c.execute(stmt, [dict(zip(columns, r)) for r in chunk])
                        n += len(chunk)
                counts[table] = n
        return counts
