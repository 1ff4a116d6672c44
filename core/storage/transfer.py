"""Whole-store operations: row counts of every table, and copying one store into another
(``python -m core db copy``: a SQLite store moved to PostgreSQL, or back).

A copy reads the source in one snapshot and writes the target in one transaction, table by
table in foreign-key order, streaming rows in chunks (never a whole table in memory). Ids are
kept, the target's id sequences are moved past them, and the row count of every table is
compared before the commit: a copy is complete or it is not there at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, delete, exc, func, select

from core.errors import StoreError
from core.storage import schema as t
from core.storage.bulk import load_rows
from core.storage.database import Database, advance_sequences, analyze


@dataclass(frozen=True)
class TableCopy:
    """Rows of one table in the source and, after the copy, in the target."""

    table: str
    source: int
    target: int

    @property
    def ok(self) -> bool:
        return self.source == self.target


@dataclass(frozen=True)
class CopyReport:
    """What :func:`copy_store` did."""

    source: str  # where, password hidden
    target: str
    tables: tuple[TableCopy, ...]
    replaced: int  # rows the target held before (deleted with --force)
    seconds: float

    @property
    def rows(self) -> int:
        return sum(tc.target for tc in self.tables)

    @property
    def ok(self) -> bool:
        return all(tc.ok for tc in self.tables)


def _counts(conn: Connection) -> dict[str, int]:
    return {
        tbl.name: int(conn.execute(select(func.count()).select_from(tbl)).scalar_one())
        for tbl in t.metadata.sorted_tables
    }


def table_counts(db: Database) -> dict[str, int]:
    """Rows of every table of the schema, in foreign-key order."""
    with db.read() as conn:
        return _counts(conn)


def _stream(conn: Connection, table: Table, chunk: int) -> Iterator[tuple[Any, ...]]:
    q = select(*table.c)
    if table.primary_key.columns:
        q = q.order_by(*table.primary_key.columns)
    result = conn.execution_options(yield_per=chunk).execute(q)
    for part in result.partitions():
        yield from (tuple(row) for row in part)


def _rows_to_replace(source: Database, target: Database, force: bool) -> int:
    """How many rows of ``target`` a copy replaces; refused when it is the source, or holds
    rows and ``force`` is not given."""
    if source.url == target.url:
        raise StoreError(f"{source.where} is both the source and the target of the copy.")
    held = table_counts(target)
    replaced = sum(held.values())
    if replaced and not force:
        busy = ", ".join(f"{name} {n}" for name, n in held.items() if n)
        raise StoreError(
            f"{target.where} is not empty ({busy} rows). Copy into an empty store, or give "
            "--force to replace its rows; nothing was changed."
        )
    return replaced


def _verified(src: Connection, dst: Connection) -> tuple[TableCopy, ...]:
    """The row counts of every table on both sides; raises when any differs (leaving the
    target's transaction with an error rolls it back)."""
    before, after = _counts(src), _counts(dst)
    report = tuple(TableCopy(name, before[name], after[name]) for name in before)
    wrong = [tc for tc in report if not tc.ok]
    if wrong:
        raise StoreError(
            "The copy does not match the source ("
            + ", ".join(f"{tc.table}: {tc.source} rows, copied {tc.target}" for tc in wrong)
            + "); nothing was written."
        )
    return report


def copy_store(
    source: Database,
    target: Database,
    force: bool = False,
    chunk: int = 10_000,
    progress: Callable[[str, int], None] | None = None,
) -> CopyReport:
    """Copy every row of ``source`` into ``target`` (both at the current schema version).

    The target must be empty; with ``force`` its rows are deleted first, in the same
    transaction. ``progress(table, rows)`` is called after each table. Raises
    :class:`StoreError` when the target holds rows (without ``force``), is the source, or
    refuses a row; the target is then left as it was.
    """
    replaced = _rows_to_replace(source, target, force)
    started = time.perf_counter()
    tables = t.metadata.sorted_tables
    current = ""
    try:
        with source.read() as src, target.write() as dst:
            if replaced:
                for tbl in reversed(tables):
                    dst.execute(delete(tbl))
            for tbl in tables:
                current = tbl.name
                n = load_rows(dst, tbl.name, [c.name for c in tbl.c], _stream(src, tbl, chunk))
                if progress:
                    progress(tbl.name, n)
            current = ""
            advance_sequences(dst, [tbl.name for tbl in tables])
            analyze(dst, [tbl.name for tbl in tables])
            report = _verified(src, dst)
    except exc.IntegrityError as err:
        what = f" in table {current}" if current else ""
        raise StoreError(
            f"{target.where} refused a row{what}: "
            f"{str(err.orig).splitlines()[0]}; nothing was written."
        ) from err
    except exc.DataError as err:
        what = f" in table {current}" if current else ""
        raise StoreError(
            f"A value{what} does not fit {target.where}: "
            f"{str(err.orig).splitlines()[0]}; nothing was written."
        ) from err
    return CopyReport(
        source.where, target.where, report, replaced, round(time.perf_counter() - started, 2)
    )
