"""Coverage: per-second rows of watched time and judged hand-time, plus hourly and daily
roll-ups.

The roll-ups are what History reads (daily for figures by day, week or station, hourly for
hours of the day and shifts); raw seconds are kept until retention folds them in. Every write
to the hourly roll-up adds the same figures to the daily one, in the same transaction, so the
daily roll-up is always the hourly one summed per day. "Compliant" and "violating" are judged
by the station's rule at the time of recording.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Table, case, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from core.storage import schema as t
from core.storage.database import Database


@dataclass
class CoverageRow:
    """What one wall-clock second of watching held at one station."""

    ts: str  # 'YYYY-MM-DD HH:MM:SS'
    watched_s: float = 0.0
    hand_s: float = 0.0  # time with at least one hand in view
    hands: int = 0  # most hands seen at once in this second
    compliant_s: float = 0.0  # compliant hand-seconds
    violating_s: float = 0.0  # violating hand-seconds


@dataclass(frozen=True)
class HourRow:
    """An hourly roll-up row (demo data and retention write these directly)."""

    station: str
    hour: str  # 'YYYY-MM-DD HH:00:00'
    watched_s: float
    hand_s: float
    compliant_s: float
    violating_s: float


_SUMS = ("watched_s", "hand_s", "compliant_s", "violating_s")


def _upsert(
    conn: Connection, table: Table, key: str, rows: dict[tuple[str, str], list[float]]
) -> None:
    """Add figures into a roll-up keyed by (station, ``key``), summing into existing rows."""
    ins = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
    stmt = ins.on_conflict_do_update(
        index_elements=["station", key], set_={n: table.c[n] + ins.excluded[n] for n in _SUMS}
    )
    conn.execute(
        stmt, [{"station": st, key: k, **dict(zip(_SUMS, v))} for (st, k), v in rows.items()]
    )


def upsert_hours(conn: Connection, dialect: str, rows: Sequence[HourRow]) -> None:
    """Add hourly figures into the hourly and daily roll-ups (summing into existing rows)."""
    if not rows:
        return
    # one row per key: PostgreSQL refuses to update a row twice in one statement
    hours: dict[tuple[str, str], list[float]] = {}
    days: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        values = (r.watched_s, r.hand_s, r.compliant_s, r.violating_s)
        for acc in (
            hours.setdefault((r.station, r.hour), [0.0] * 4),
            days.setdefault((r.station, r.hour[:10] + " 00:00:00"), [0.0] * 4),
        ):
            for i, v in enumerate(values):
                acc[i] += v
    _upsert(conn, t.coverage_hourly, "hour", hours)
    _upsert(conn, t.coverage_daily, "day", days)


def rollup_missing(conn: Connection, dialect: str, before: str) -> int:
    """Hourly rows for hours before ``before`` that have raw seconds but no roll-up yet (one
    raw row is one watched second), added to the daily roll-up too. Hours the recorder already
    rolled up are kept as they are. Returns the number of hours added."""
    s, h = t.coverage_seconds, t.coverage_hourly
    hour = func.substr(s.c.ts, 1, 13).concat(":00:00")
    grouped = (
        select(
            s.c.station,
            hour.label("hour"),
            func.count().label("watched_s"),
            func.sum(case((s.c.hands > 0, 1), else_=0)).label("hand_s"),
            func.sum(s.c.compliant_s).label("compliant_s"),
            func.sum(s.c.violating_s).label("violating_s"),
        )
        .where(s.c.ts < before)
        .group_by(s.c.station, hour)
    )
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(h)
    stmt = (
        ins.from_select(["station", "hour", *_SUMS], grouped)
        .on_conflict_do_nothing(index_elements=["station", "hour"])
        .returning(h.c.station, h.c.hour, *(h.c[n] for n in _SUMS))
    )
    added = conn.execute(stmt).all()  # only the hours that were missing
    days: dict[tuple[str, str], list[float]] = {}
    for station, hour_text, *values in added:
        acc = days.setdefault((station, hour_text[:10] + " 00:00:00"), [0.0] * 4)
        for i, v in enumerate(values):
            acc[i] += float(v or 0)
    if days:
        _upsert(conn, t.coverage_daily, "day", days)
    return len(added)


def rebuild_daily(conn: Connection) -> None:
    """Recompute the daily roll-up from the hourly one (after hourly rows were bulk-loaded)."""
    h, d = t.coverage_hourly, t.coverage_daily
    day = func.substr(h.c.hour, 1, 10).concat(" 00:00:00")
    conn.execute(delete(d))
    conn.execute(
        insert(d).from_select(
            ["station", "day", *_SUMS],
            select(h.c.station, day, *(func.sum(h.c[n]) for n in _SUMS)).group_by(h.c.station, day),
        )
    )


def write_seconds(
    conn: Connection,
    dialect: str,
    station: str,
    session_id: int | None,
    rows: Sequence[CoverageRow],
) -> None:
    """Append per-second rows and add them into the hourly roll-up, inside ``conn``'s
    transaction (the ingester commits them with the message id that makes them once-only)."""
    hourly: dict[str, list[float]] = {}
    for r in rows:
        acc = hourly.setdefault(r.ts[:13] + ":00:00", [0.0, 0.0, 0.0, 0.0])
        for i, v in enumerate((r.watched_s, r.hand_s, r.compliant_s, r.violating_s)):
            acc[i] += v
    conn.execute(
        insert(t.coverage_seconds),
        [
            {
                "station": station,
                "session_id": session_id,
                "ts": r.ts,
                "hands": r.hands,
                "compliant_s": r.compliant_s,
                "violating_s": r.violating_s,
            }
            for r in rows
        ],
    )
    upsert_hours(conn, dialect, [HourRow(station, hour, *v) for hour, v in hourly.items()])


class CoverageRepo:
    """Writes coverage (the denominator of every compliance rate)."""

    def __init__(self, db: Database):
        self.db = db

    def write(self, station: str, session_id: int | None, rows: Sequence[CoverageRow]) -> None:
        """Append per-second rows and add them into the hourly roll-up, in one transaction."""
        if not rows:
            return
        with self.db.write() as c:
            write_seconds(c, self.db.dialect, station, session_id, rows)

    def insert_seconds(self, station_rows: Sequence[tuple[str, CoverageRow]]) -> int:
        """Raw per-second rows without roll-up (demo data that writes its own hours)."""
        if station_rows:
            with self.db.write() as c:
                c.execute(
                    insert(t.coverage_seconds),
                    [
                        {
                            "station": st,
                            "session_id": None,
                            "ts": r.ts,
                            "hands": r.hands,
                            "compliant_s": r.compliant_s,
                            "violating_s": r.violating_s,
                        }
                        for st, r in station_rows
                    ],
                )
        return len(station_rows)

    def insert_hours(self, rows: Sequence[HourRow]) -> int:
        if rows:
            with self.db.write() as c:
                upsert_hours(c, self.db.dialect, rows)
        return len(rows)
