"""History's aggregations: coverage, detection counts and episodes grouped by a key.

Every figure is computed in the database over indexed roll-ups, never by loading rows into
Python: hand-time from ``coverage_daily`` (figures by day, week or station) or
``coverage_hourly`` (hours of the day, shifts); judged detections from ``results`` (joined to the
session's station) plus ``results_hourly`` (what retention rolled up before deleting raw rows);
episodes from ``events``. Queries are SQLAlchemy Core with ``substr`` and ``CASE`` only, so
they run unchanged on every backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Float,
    Table,
    and_,
    case,
    cast,
    func,
    literal_column,
    not_,
    select,
    union_all,
)

from core.config import Shift
from core.storage import schema as t
from core.storage.database import Database
from core.storage.filters import (
    HistoryFilter,
    episode_conditions,
    period_conditions,
    shift_of_clock,
    whole_hour_shifts,
)
from core.storage.sanity import (
    outside_window,
    readable_amounts,
    readable_episode,
    sane_name,
    sane_time,
)

KeyFn = Callable[[Any, Any], list[ColumnElement[Any]]]


def key_none(ts: Any, station: Any) -> list[ColumnElement[Any]]:
    return []


def key_day(ts: Any, station: Any) -> list[ColumnElement[Any]]:
    return [func.substr(ts, 1, 10)]


def key_hour(ts: Any, station: Any) -> list[ColumnElement[Any]]:
    return [func.substr(ts, 12, 2)]


def key_day_hour(ts: Any, station: Any) -> list[ColumnElement[Any]]:
    return [func.substr(ts, 1, 13)]


def key_station(ts: Any, station: Any) -> list[ColumnElement[Any]]:
    return [station]


def key_station_shift(ts: Any, station: Any) -> list[ColumnElement[Any]]:
    # station and time of day; the groups then get their shift from the filter's plant
    # shifts (_steps)
    return [station, func.substr(ts, 12, 5)]


def key_station_day(ts: Any, station: Any) -> list[ColumnElement[Any]]:
    return [station, func.substr(ts, 1, 10)]


ThenFn = Callable[[list[Any]], list[ColumnElement[Any]]]


def _steps(key: KeyFn, shifts: tuple[Shift, ...]) -> tuple[KeyFn, ThenFn | None]:
    """How ``key`` is grouped: in one step, or (station and shift) in two: first by a key each
    row yields cheaply (station and time of day, as precise as the shifts need), then, on the
    few thousand groups, by shift. Naming the shift of every row is what costs."""
    if key is not key_station_shift:
        return key, None
    whole = whole_hour_shifts(shifts)

    def clock(ts: Any, station: Any) -> list[ColumnElement[Any]]:
        return [station, func.substr(ts, 12, 2 if whole else 5)]

    def shift(keys: list[Any]) -> list[ColumnElement[Any]]:
        return [keys[0], shift_of_clock(keys[1].concat(":00") if whole else keys[1], shifts)]

    return clock, shift


# Keys that need nothing finer than the day (see HistoryRepo.grouped)
DAY_KEYS: frozenset[KeyFn] = frozenset({key_none, key_day, key_station, key_station_day})


def result_dismissed(r: Table, e: Table) -> ColumnElement[bool]:
    """Whether a batch result row (``r``: results) belongs to a dismissed episode (``e``:
    events): its hands are then left out of the figures and of their roll-up."""
    return (
        select(e.c.id)
        .where(
            e.c.session_id == r.c.session_id,
            e.c.review == "dismissed",
            e.c.source.is_not_distinct_from(r.c.source),
            func.coalesce(e.c.frame, 0) == r.c.frame,
        )
        .exists()
    )


@dataclass(frozen=True)
class Figures:
    """Raw sums of one group; :mod:`core.analytics.history` turns them into rates."""

    key: tuple[str, ...] = ()
    watched_s: float = 0.0
    compliant_s: float = 0.0  # hand-seconds compliant with the station rule
    violating_s: float = 0.0
    frames: int = 0
    compliant_n: int = 0  # judged hand detections (batch photos, frames)
    violating_n: int = 0
    episodes: int = 0  # dismissed ones left out
    critical: int = 0
    dismissed: int = 0
    unreviewed: int = 0
    dismissed_s: float = 0.0


@dataclass(frozen=True)
class DataSpan:
    """First and last day with any data, and row counts of the main tables."""

    first: date | None
    last: date | None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.first is None


@dataclass(frozen=True)
class Provenance:
    """Models and rule versions behind the figures of a period."""

    models: tuple[str, ...]
    rule_versions: tuple[str, ...]


# Figures' sums, in the order of its fields
FIELDS = (
    "watched_s",
    "compliant_s",
    "violating_s",
    "frames",
    "compliant_n",
    "violating_n",
    "episodes",
    "critical",
    "dismissed",
    "unreviewed",
    "dismissed_s",
)
# The fields that count things (the others are seconds).
COUNT_FIELDS = frozenset(f.name for f in fields(Figures) if f.type == "int")


def _sum_if(cond: ColumnElement[bool], value: Any = 1) -> Any:
    return func.sum(case((cond, value), else_=0))


def _edge_day(conn: Any, col: Any, last: bool) -> date | None:
    """The first (or last) readable day of a time column, stepping over unreadable values."""
    bound = None
    for _ in range(20):  # more malformed edges than this: give up on the table's span
        q = select(col).where(sane_time(col))
        if bound is not None:
            q = q.where(col < bound if last else col > bound)
        value = conn.execute(q.order_by(col.desc() if last else col).limit(1)).scalar()
        if value is None:
            return None
        try:
            return date.fromisoformat(str(value)[:10])
        except ValueError:
            bound = value
    return None


def _coverage_checks(c: Table, time_col: Any) -> list[ColumnElement[bool]]:
    return [
        sane_time(time_col),
        sane_name(c.c.station),
        *readable_amounts(c.c.watched_s, c.c.compliant_s, c.c.violating_s),
    ]


# One source of figures: (time column, station column, sums by field, FROM, extra conditions;
# None: the episode conditions of the filter).
Source = tuple[Any, Any, dict[str, Any], Any, list[Any] | None]


def _coverage_source(f: HistoryFilter, key: KeyFn) -> Source:
    # Figures by day or coarser read the daily roll-up (24 times fewer rows); hours of the
    # day and shifts need the hourly one.
    daily = key in DAY_KEYS and not f.shifts
    c = t.coverage_daily if daily else t.coverage_hourly
    c_time = c.c.day if daily else c.c.hour
    sums = {n: func.sum(c.c[n]) for n in ("watched_s", "compliant_s", "violating_s")}
    return c_time, c.c.station, sums, c, _coverage_checks(c, c_time)


def _sources(f: HistoryFilter, key: KeyFn) -> list[Source]:
    """Coverage, rolled-up and raw detection results, and episodes, each with its sums."""
    rh, r, s, e = t.results_hourly, t.results, t.sessions, t.events
    counts = ("frames", "compliant_n", "violating_n")
    return [
        _coverage_source(f, key),
        (
            rh.c.hour,
            rh.c.station,
            {n: func.sum(rh.c[n]) for n in counts},
            rh,
            [sane_time(rh.c.hour), sane_name(rh.c.station), *readable_amounts(*rh.c[counts])],
        ),
        (
            r.c.ts,
            s.c.station,
            {
                "frames": func.count(),
                "compliant_n": func.sum(r.c.compliant),
                "violating_n": func.sum(r.c.violating),
            },
            r.join(s, s.c.id == r.c.session_id),
            [r.c.error.is_(None), not_(result_dismissed(r, e)), sane_time(r.c.ts)],
        ),
        (
            e.c.started_at,
            e.c.station,
            {
                "episodes": _sum_if(e.c.review != "dismissed"),
                "critical": _sum_if((e.c.review != "dismissed") & (e.c.severity == "critical")),
                "dismissed": _sum_if(e.c.review == "dismissed"),
                "unreviewed": _sum_if(e.c.review == "unreviewed"),
                "dismissed_s": _sum_if(e.c.review == "dismissed", e.c.duration_s),
            },
            e,
            None,
        ),
    ]


def _merged(f: HistoryFilter, key: KeyFn, sources: list[Source]) -> tuple[Any, int]:
    """One query: each source grouped by ``key``, then summed per group; and the number of
    key columns."""
    first, then = _steps(key, f.plant_shifts)
    selects = []
    n_keys = 0
    for ts, station, sums, source, extra in sources:
        keys = first(ts, station)
        n_keys = len(keys)
        conds = (
            episode_conditions(f, t.events)
            if extra is None
            else period_conditions(f, ts, station) + extra
        )
        q = (
            select(
                *(k.label(f"k{i}") for i, k in enumerate(keys)),
                *(sums.get(n, literal_column("0")).label(n) for n in FIELDS),
            )
            .select_from(source)
            .where(*conds)
        )
        if keys:
            q = q.group_by(*keys)
        selects.append(q)
    both = union_all(*selects).subquery()
    group: list[Any] = [both.c[f"k{i}"] for i in range(n_keys)]
    if then is not None:
        group = then(group)
    # As floats from the database: PostgreSQL sums integers as numeric, and turning tens of
    # thousands of Decimals into an array costs more than the query.
    q = select(*group, *(cast(func.coalesce(func.sum(both.c[n]), 0), Float) for n in FIELDS))
    if group:
        q = q.group_by(*group)
    return q, n_keys


class HistoryRepo:
    """Read-only aggregations for the History page and reports."""

    def __init__(self, db: Database):
        self.db = db

    def grouped_table(
        self, f: HistoryFilter, key: KeyFn
    ) -> tuple[list[tuple[str, ...]], np.ndarray]:
        """The groups' keys and their sums, one row each in the order of ``FIELDS`` (a float
        matrix): for figures over many groups (a year of 200 stations by day) without one
        Python object per group.

        One query: each source's figures grouped by ``key`` (``UNION ALL``), merged per group
        by the database.
        """
        q, n_keys = _merged(f, key, _sources(f, key))
        with self.db.read() as conn:
            rows = conn.execute(q).all()
        found = [tuple(str(v) for v in row[:n_keys]) for row in rows]
        table = np.array([row[n_keys:] for row in rows], dtype=np.float64).reshape(
            len(rows), len(FIELDS)
        )
        return found, table

    def grouped(self, f: HistoryFilter, key: KeyFn) -> dict[tuple[str, ...], Figures]:
        """Coverage, detection and episode figures grouped by ``key``, merged per group."""
        keys, sums = self.grouped_table(f, key)
        out: dict[tuple[str, ...], Figures] = {}
        for k, v in zip(keys, sums.tolist()):
            out[k] = Figures(
                key=k,
                watched_s=v[0],
                compliant_s=v[1],
                violating_s=v[2],
                frames=int(v[3]),
                compliant_n=int(v[4]),
                violating_n=int(v[5]),
                episodes=int(v[6]),
                critical=int(v[7]),
                dismissed=int(v[8]),
                unreviewed=int(v[9]),
                dismissed_s=v[10],
            )
        return out

    def data_span(self) -> DataSpan:
        """First and last day with readable coverage, results or episodes (an index walk from
        each end: cheap; rows with unreadable times are stepped over)."""
        firsts, lasts = [], []
        with self.db.read() as conn:
            for col in (
                t.coverage_hourly.c.hour,
                t.events.c.started_at,
                t.results.c.ts,
                t.results_hourly.c.hour,
            ):
                lo, hi = _edge_day(conn, col, last=False), _edge_day(conn, col, last=True)
                if lo and hi:
                    firsts.append(lo)
                    lasts.append(hi)
            counts = {
                tbl.name: int(conn.execute(select(func.count()).select_from(tbl)).scalar_one())
                for tbl in (t.events, t.results, t.sessions)
            }
        return DataSpan(min(firsts) if firsts else None, max(lasts) if lasts else None, counts)

    def unreadable(self, f: HistoryFilter) -> dict[str, int]:
        """Rows the figures of ``f`` leave out because they cannot be read, per table: those
        with a time outside any sane window (anywhere in the store: an index range, cheap)
        plus those in the period with a malformed time, number or name. Tables without any
        are not named."""
        e, c, r = t.events, t.coverage_hourly, t.results
        checks = [
            (
                e,
                e.c.started_at,
                readable_episode(e),
                [e.c.started_at >= f.lo, e.c.started_at < f.hi],
            ),
            (c, c.c.hour, _coverage_checks(c, c.c.hour), [c.c.hour >= f.lo, c.c.hour < f.hi]),
            (r, r.c.ts, [sane_time(r.c.ts)], [r.c.ts >= f.lo, r.c.ts < f.hi]),
        ]
        out = {}
        with self.db.read() as conn:
            for tbl, col, sane, period in checks:
                far = select(func.count()).select_from(tbl).where(outside_window(col))
                readable = func.coalesce(and_(*sane), False)  # NULL is not readable either
                bad = select(func.count()).select_from(tbl).where(*period, not_(readable))
                n = int(conn.execute(far).scalar_one()) + int(conn.execute(bad).scalar_one())
                if n:
                    out[tbl.name] = n
        return out

    def provenance(self, f: HistoryFilter) -> Provenance:
        """Model files/hashes and rule versions of the sessions and episodes in the filter."""
        s, e = t.sessions, t.events
        models: dict[str, str] = {}  # hash -> label
        period = replace(f, classes=(), severities=(), reviews=())
        with self.db.read() as conn:
            conds = [s.c.started_at >= f.lo, s.c.started_at < f.hi]
            if f.stations:
                conds.append(s.c.station.in_(f.stations))
            for path, sha in conn.execute(
                select(s.c.model_path, s.c.model_hash).distinct().where(*conds)
            ):
                models[sha] = f"{path.rsplit('/', 1)[-1]} ({sha[:12]})"
            for name, sha in conn.execute(
                select(e.c.model_name, e.c.model_hash)
                .distinct()
                .where(*episode_conditions(period, e), e.c.model_hash.is_not(None))
            ):
                models.setdefault(sha, f"{name or 'model'} ({sha[:12]})")
            versions: dict[str, set[int]] = {}
            for station, version in conn.execute(
                select(e.c.station, e.c.rule_version)
                .distinct()
                .where(*episode_conditions(period, e), e.c.rule_version.is_not(None))
            ):
                versions.setdefault(station, set()).add(int(version))
        rules = tuple(
            f"{st}: v{', v'.join(str(v) for v in sorted(vs))}"
            for st, vs in sorted(versions.items())
        )
        return Provenance(tuple(sorted(models.values())), rules)

    def version(self) -> tuple[int, ...]:
        """Changes whenever episodes, reviews, results or retention change (cache key)."""
        with self.db.read() as conn:
            return tuple(
                int(conn.execute(select(func.coalesce(func.max(col), 0))).scalar_one())
                for col in (
                    t.events.c.id,
                    t.event_reviews.c.id,
                    t.results.c.id,
                    t.retention_runs.c.id,
                    t.sessions.c.id,
                )
            )

    def table_counts(self, names: tuple[str, ...]) -> dict[str, int]:
        """Row counts of tables (benchmarks)."""
        with self.db.read() as conn:
            return {
                n: int(
                    conn.execute(
                        select(func.count()).select_from(t.metadata.tables[n])
                    ).scalar_one()
                )
                for n in names
            }
