"""Coverage: per-second rows of watched time and judged hand-time, plus an hourly roll-up.

The hourly roll-up is what History reads; raw seconds are kept until retention folds them in.
"Compliant" and "violating" are judged by the station's rule at the time of recording.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, case, func, insert, select
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


def upsert_hours(conn: Connection, dialect: str, rows: Sequence[HourRow]) -> None:
    """Add hourly figures into the roll-up (summing into existing hours)."""
    if not rows:
        return
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(t.coverage_hourly)
    ex = ins.excluded
    h = t.coverage_hourly.c
    stmt = ins.on_conflict_do_update(
        index_elements=["station", "hour"],
        set_={"watched_s": h.watched_s + ex.watched_s, "hand_s": h.hand_s + ex.hand_s,
              "compliant_s": h.compliant_s + ex.compliant_s,
              "violating_s": h.violating_s + ex.violating_s})
    conn.execute(stmt, [vars(r) for r in rows])


def rollup_missing(conn: Connection, dialect: str, before: str) -> int:
    """Hourly rows for hours before ``before`` that have raw seconds but no roll-up yet (one
    raw row is one watched second). Hours the recorder already rolled up are kept as they are.
    Returns the number of hours added."""
    s, h = t.coverage_seconds, t.coverage_hourly
    hour = func.substr(s.c.ts, 1, 13).concat(":00:00")
    grouped = (select(s.c.station, hour.label("hour"), func.count().label("watched_s"),
                      func.sum(case((s.c.hands > 0, 1), else_=0)).label("hand_s"),
                      func.sum(s.c.compliant_s).label("compliant_s"),
                      func.sum(s.c.violating_s).label("violating_s"))
               .where(s.c.ts < before).group_by(s.c.station, hour))
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(h)
    stmt = ins.from_select(["station", "hour", "watched_s", "hand_s", "compliant_s",
                            "violating_s"], grouped).on_conflict_do_nothing(
        index_elements=["station", "hour"])
    return int(conn.execute(stmt).rowcount or 0)


class CoverageRepo:
    """Writes coverage (the denominator of every compliance rate)."""

    def __init__(self, db: Database):
        self.db = db

    def write(self, station: str, session_id: int | None, rows: Sequence[CoverageRow]) -> None:
        """Append per-second rows and add them into the hourly roll-up, in one transaction."""
        if not rows:
            return
        hourly: dict[str, list[float]] = {}
        for r in rows:
            acc = hourly.setdefault(r.ts[:13] + ":00:00", [0.0, 0.0, 0.0, 0.0])
            for i, v in enumerate((r.watched_s, r.hand_s, r.compliant_s, r.violating_s)):
                acc[i] += v
        with self.db.write() as c:
            c.execute(insert(t.coverage_seconds), [
                {"station": station, "session_id": session_id, "ts": r.ts, "hands": r.hands,
                 "compliant_s": r.compliant_s, "violating_s": r.violating_s} for r in rows])
            upsert_hours(c, self.db.dialect, [HourRow(station, hour, *v)
                                              for hour, v in hourly.items()])

    def insert_seconds(self, station_rows: Sequence[tuple[str, CoverageRow]]) -> int:
        """Raw per-second rows without roll-up (demo data that writes its own hours)."""
        if station_rows:
            with self.db.write() as c:
                c.execute(insert(t.coverage_seconds), [
                    {"station": st, "session_id": None, "ts": r.ts, "hands": r.hands,
                     "compliant_s": r.compliant_s, "violating_s": r.violating_s}
                    for st, r in station_rows])
        return len(station_rows)

    def insert_hours(self, rows: Sequence[HourRow]) -> int:
        if rows:
            with self.db.write() as c:
                upsert_hours(c, self.db.dialect, rows)
        return len(rows)
