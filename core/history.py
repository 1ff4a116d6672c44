"""Compliance history: filtered SQL aggregations over events, results and coverage.

Every figure is computed in SQLite over indexed roll-ups, never by loading rows into pandas:

* hand-time comes from ``coverage_hourly`` (seconds watched, gloved and bare hand-seconds per
  station and hour), written by the recorder next to the raw ``coverage_seconds``;
* hand detections come from ``results`` (per image/frame counts, joined to the session's
  station) plus ``results_hourly`` (what retention rolled up before deleting raw rows);
* episodes come from ``events``.

Compliance of a group (a day, a station x shift cell, ...) is gloved hand-time / all hand-time
when the group has coverage with hands in it, else gloved / all hand detections (batch photos
carry no time), else unknown. Each figure says which basis it used, so a day without a camera
is shown as "no data", never as 100 %. Dismissed episodes (false alarms) are left out of the
episode counts, their duration is taken out of the bare hand-time, and results belonging to a
dismissed episode are left out of the detection counts.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from core.config import Shift, settings

SEVERITIES = ("warning", "critical")
REVIEW_STATES = ("unreviewed", "confirmed", "dismissed")
OFF_SHIFT = "Off shift"

BASIS_HAND_TIME = "hand-time"
BASIS_DETECTIONS = "detections"


@dataclass(frozen=True)
class HistoryFilter:
    """What the history shows. Empty tuples mean "all".

    Date range and stations apply to every figure; shift to every figure (by the hour or time
    of day); class, severity and review state describe episodes, so they filter episode figures
    only (hand-time has no class or severity).
    """

    start: date
    end: date  # inclusive
    stations: tuple[str, ...] = ()
    shifts: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    reviews: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"The range ends ({self.end}) before it starts ({self.start}).")

    @property
    def lo(self) -> str:
        return f"{self.start.isoformat()} 00:00:00"

    @property
    def hi(self) -> str:
        """Exclusive upper bound (midnight after the last day)."""
        return f"{(self.end + timedelta(days=1)).isoformat()} 00:00:00"

    def describe(self) -> str:
        """One line for page captions and report headers."""
        parts = [f"{self.start.isoformat()} to {self.end.isoformat()}"]
        for label, vals in (("stations", self.stations), ("shifts", self.shifts),
                            ("classes", self.classes), ("severity", self.severities),
                            ("review", self.reviews)):
            parts.append(f"{label}: {', '.join(vals) if vals else 'all'}")
        return "; ".join(parts)


@dataclass(frozen=True)
class Stats:
    """Figures of one group (the whole period, a day, a station x shift cell, ...)."""

    key: tuple[str, ...] = ()
    watched_s: float = 0.0
    gloved_s: float = 0.0
    bare_s: float = 0.0
    frames: int = 0
    gloved_n: int = 0
    bare_n: int = 0
    episodes: int = 0
    critical: int = 0
    dismissed: int = 0
    unreviewed: int = 0
    dismissed_s: float = 0.0

    @property
    def bare_s_effective(self) -> float:
        return max(0.0, self.bare_s - self.dismissed_s)

    @property
    def basis(self) -> str | None:
        """Which figures the compliance rate is computed from (None: nothing to compute)."""
        if self.gloved_s + self.bare_s > 0:
            return BASIS_HAND_TIME
        if self.gloved_n + self.bare_n > 0:
            return BASIS_DETECTIONS
        return None

    @property
    def compliance(self) -> float | None:
        """Share of gloved hands (0..1) on :attr:`basis`, None when no hand was seen."""
        if self.basis == BASIS_HAND_TIME:
            total = self.gloved_s + self.bare_s_effective
            return self.gloved_s / total if total else None
        if self.basis == BASIS_DETECTIONS:
            return self.gloved_n / (self.gloved_n + self.bare_n)
        return None

    @property
    def minutes(self) -> float:
        """Minutes actually monitored."""
        return self.watched_s / 60.0


@dataclass(frozen=True)
class Kpis:
    """Headline figures of the filtered period."""

    total: Stats
    basis_note: str

    @property
    def compliance(self) -> float | None:
        return self.total.compliance


@dataclass(frozen=True)
class CoverageCell:
    """Minutes monitored at one station on one day (0 when no camera ran)."""

    station: str
    day: str
    stats: Stats


@dataclass(frozen=True)
class Episode:
    """One violation episode as listed for review."""

    id: int
    station: str
    started_at: str
    ended_at: str | None
    duration_s: float
    class_name: str | None
    peak_conf: float | None
    severity: str
    review: str
    review_comment: str | None
    reviewed_by: str | None
    reviewed_at: str | None
    evidence_path: str | None
    crop_path: str | None
    evidence_removed_at: str | None
    session_id: int | None
    source: str | None
    frame: int | None
    model_hash: str | None
    rule_version: int | None
    zone: str | None


@dataclass(frozen=True)
class StationInfo:
    name: str
    deleted: bool


@dataclass(frozen=True)
class Provenance:
    """Models and rule versions behind the figures of a period."""

    models: tuple[str, ...]
    rule_versions: tuple[str, ...]


@dataclass(frozen=True)
class DataSpan:
    """First and last day with any data, and row counts of the main tables."""

    first: date | None
    last: date | None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.first is None


# ----------------------------------------------------------------------------- SQL helpers


def _lit(text: str) -> str:
    """SQL string literal (shift names come from settings, not from users' rows)."""
    return "'" + text.replace("'", "''") + "'"


def shift_sql(col: str, shifts: tuple[Shift, ...] | None = None) -> str:
    """SQL CASE naming the shift of timestamp column ``col`` ('YYYY-MM-DD HH:MM:SS').

    A shift whose end is before its start crosses midnight. Hourly roll-ups are assigned by the
    hour's start, so a shift starting at 06:30 gets whole hours from 07:00.
    """
    shifts = settings().shifts if shifts is None else shifts
    if not shifts:
        return _lit(OFF_SHIFT)
    hm = f"substr({col},12,5)"
    parts = []
    for s in shifts:
        if s.start <= s.end:
            cond = f"({hm} >= {_lit(s.start)} AND {hm} < {_lit(s.end)})"
        else:
            cond = f"({hm} >= {_lit(s.start)} OR {hm} < {_lit(s.end)})"
        parts.append(f"WHEN {cond} THEN {_lit(s.name)}")
    return f"CASE {' '.join(parts)} ELSE {_lit(OFF_SHIFT)} END"


def _in(col: str, values: tuple[str, ...], params: list) -> str:
    params.extend(values)
    return f" AND {col} IN ({','.join('?' * len(values))})"


def _where(f: HistoryFilter, time_col: str, station_col: str, episodes: bool) -> tuple[str, list]:
    params: list = [f.lo, f.hi]
    sql = f"{time_col} >= ? AND {time_col} < ?"
    if f.stations:
        sql += _in(station_col, f.stations, params)
    if f.shifts:
        sql += f" AND ({shift_sql(time_col)}) IN ({','.join(_lit(s) for s in f.shifts)})"
    if episodes:
        if f.classes:
            sql += _in("e.class_name", f.classes, params)
        if f.severities:
            sql += _in("e.severity", f.severities, params)
        if f.reviews:
            sql += _in("e.review", f.reviews, params)
    return sql, params


# Group keys: a function of (time column, station column) -> SQL expressions.
def _key_day(t: str, s: str) -> list[str]:
    return [f"substr({t},1,10)"]


def _key_week(t: str, s: str) -> list[str]:
    # Monday of the week
    return [f"date({t},'-6 days','weekday 1')"]


def _key_hour(t: str, s: str) -> list[str]:
    return [f"substr({t},12,2)"]


def _key_station(t: str, s: str) -> list[str]:
    return [s]


def _key_station_shift(t: str, s: str) -> list[str]:
    return [s, shift_sql(t)]


def _key_station_day(t: str, s: str) -> list[str]:
    return [s, f"substr({t},1,10)"]


def _key_none(t: str, s: str) -> list[str]:
    return []


def _grouped(conn: sqlite3.Connection, f: HistoryFilter, key) -> dict[tuple, Stats]:
    """Coverage, detection and episode figures grouped by ``key``, merged per group."""
    out: dict[tuple, dict] = {}

    def run(sql_fn, time_col, station_col, episodes, names, from_sql):
        keys = key(time_col, station_col)
        where, params = _where(f, time_col, station_col, episodes)
        sel = ", ".join(keys + [sql_fn])
        group = f" GROUP BY {', '.join(keys)}" if keys else ""
        for row in conn.execute(f"SELECT {sel} FROM {from_sql} WHERE {where}{group}", params):
            k = tuple(str(v) for v in row[:len(keys)])
            d = out.setdefault(k, {})
            for name, val in zip(names, row[len(keys):]):
                d[name] = d.get(name, 0) + (val or 0)

    run("SUM(c.watched_s), SUM(c.gloved_s), SUM(c.bare_s)", "c.hour", "c.station", False,
        ("watched_s", "gloved_s", "bare_s"), "coverage_hourly c")
    run("SUM(r.frames), SUM(r.gloved_n), SUM(r.bare_n)", "r.hour", "r.station", False,
        ("frames", "gloved_n", "bare_n"), "results_hourly r")
    run("COUNT(*), SUM(r.protected), SUM(r.violation)", "r.ts", "s.station", False,
        ("frames", "gloved_n", "bare_n"),
        "results r JOIN sessions s ON s.id = r.session_id AND r.error IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM events d WHERE d.session_id = r.session_id"
        " AND d.review = 'dismissed' AND d.source IS r.source AND COALESCE(d.frame,0) = r.frame)")
    run("SUM(e.review != 'dismissed'), SUM(e.review != 'dismissed' AND e.severity = 'critical'),"
        " SUM(e.review = 'dismissed'), SUM(e.review = 'unreviewed'),"
        " SUM(CASE WHEN e.review = 'dismissed' THEN e.duration_s ELSE 0 END)",
        "e.started_at", "e.station", True,
        ("episodes", "critical", "dismissed", "unreviewed", "dismissed_s"), "events e")
    return {k: Stats(key=k, **v) for k, v in out.items()}


# ----------------------------------------------------------------------------- public queries


def kpis(conn: sqlite3.Connection, f: HistoryFilter) -> Kpis:
    """Compliance, episodes, critical episodes and minutes monitored for the whole filter."""
    total = _grouped(conn, f, _key_none).get((), Stats())
    if total.basis == BASIS_HAND_TIME:
        note = ("Compliance = gloved hand-time / all hand-time from monitored coverage"
                + (" (dismissed episodes' time taken out)." if total.dismissed_s else "."))
        if total.gloved_n + total.bare_n:
            note += " Batch photos without time are not mixed in."
    elif total.basis == BASIS_DETECTIONS:
        note = ("No monitored coverage in this range: compliance = gloved / all hand "
                "detections of processed images and frames.")
    else:
        note = "No hands were seen in this range, so there is no compliance rate."
    return Kpis(total=total, basis_note=note)


def trend(conn: sqlite3.Connection, f: HistoryFilter, by: str = "day") -> list[Stats]:
    """Figures per day (``by='day'``, every day of the range, empty ones included) or per week
    (key = Monday of the week)."""
    if by not in ("day", "week"):
        raise ValueError(f"trend by 'day' or 'week', not {by!r}")
    groups = _grouped(conn, f, _key_day if by == "day" else _key_week)
    days = [f.start + timedelta(days=i) for i in range((f.end - f.start).days + 1)]
    if by == "week":
        days = sorted({d - timedelta(days=d.weekday()) for d in days})
    return [groups.get((d.isoformat(),), Stats(key=(d.isoformat(),))) for d in days]


def station_shift(conn: sqlite3.Connection, f: HistoryFilter) -> list[Stats]:
    """Figures per (station, shift), for the heatmap; key = (station, shift)."""
    return sorted(_grouped(conn, f, _key_station_shift).values(), key=lambda s: s.key)


def hour_profile(conn: sqlite3.Connection, f: HistoryFilter) -> list[Stats]:
    """Figures per hour of day 00..23 (all 24, empty ones included)."""
    groups = _grouped(conn, f, _key_hour)
    return [groups.get((f"{h:02d}",), Stats(key=(f"{h:02d}",))) for h in range(24)]


def top_stations(conn: sqlite3.Connection, f: HistoryFilter, limit: int = 10) -> list[Stats]:
    """Stations by episodes (dismissed left out), worst first."""
    rows = [s for s in _grouped(conn, f, _key_station).values() if s.episodes]
    rows.sort(key=lambda s: (-s.episodes, -s.critical, s.key))
    return rows[:limit]


def per_station(conn: sqlite3.Connection, f: HistoryFilter) -> list[Stats]:
    """Figures per station, by name."""
    return sorted(_grouped(conn, f, _key_station).values(), key=lambda s: s.key)


def coverage(conn: sqlite3.Connection, f: HistoryFilter) -> list[CoverageCell]:
    """Monitoring per station and day: every station that has any data in the range times
    every day of the range; days without a camera have 0 minutes and no compliance."""
    groups = _grouped(conn, f, _key_station_day)
    stations = sorted({k[0] for k in groups})
    days = [(f.start + timedelta(days=i)).isoformat() for i in range((f.end - f.start).days + 1)]
    return [CoverageCell(s, d, groups.get((s, d), Stats(key=(s, d))))
            for s in stations for d in days]


_EPISODE_COLS = ("id, station, started_at, ended_at, duration_s, class_name, peak_conf,"
                 " severity, review, review_comment, reviewed_by, reviewed_at, evidence_path,"
                 " crop_path, evidence_removed_at, session_id, source, frame, model_hash,"
                 " rule_version, zone")

EPISODE_ORDERS = {
    "newest": "e.started_at DESC",
    "longest": "e.duration_s DESC, e.started_at DESC",
    "critical first": "e.severity = 'critical' DESC, e.duration_s DESC, e.started_at DESC",
}


def _episode(row) -> Episode:
    return Episode(**{k: row[k] for k in row.keys()})


def episodes(conn: sqlite3.Connection, f: HistoryFilter, limit: int = 200, offset: int = 0,
             order: str = "newest") -> list[Episode]:
    """Episodes matching the filter (dismissed ones included, marked), for review."""
    where, params = _where(f, "e.started_at", "e.station", True)
    cols = ", ".join(f"e.{c.strip()}" for c in _EPISODE_COLS.split(","))
    sql = (f"SELECT {cols} FROM events e WHERE {where} ORDER BY {EPISODE_ORDERS[order]}"
           " LIMIT ? OFFSET ?")
    return [_episode(r) for r in conn.execute(sql, [*params, limit, offset])]


def count_episodes(conn: sqlite3.Connection, f: HistoryFilter) -> int:
    where, params = _where(f, "e.started_at", "e.station", True)
    return conn.execute(f"SELECT COUNT(*) FROM events e WHERE {where}", params).fetchone()[0]


def get_episode(conn: sqlite3.Connection, event_id: int) -> Episode | None:
    row = conn.execute(f"SELECT {_EPISODE_COLS} FROM events WHERE id = ?",
                       (event_id,)).fetchone()
    return _episode(row) if row else None


def stations(conn: sqlite3.Connection) -> list[StationInfo]:
    """Every station with data or a registration; deleted ones flagged (their data stays)."""
    names: dict[str, bool] = {}
    for sql in ("SELECT DISTINCT station FROM coverage_hourly",
                "SELECT DISTINCT station FROM events",
                "SELECT DISTINCT station FROM sessions",
                "SELECT DISTINCT station FROM results_hourly"):
        for (name,) in conn.execute(sql):
            names[name] = False
    for name, deleted_at in conn.execute("SELECT name, deleted_at FROM stations"):
        names[name] = deleted_at is not None
    return [StationInfo(n, d) for n, d in sorted(names.items())]


def classes(conn: sqlite3.Connection) -> list[str]:
    """Class names that episodes were raised for."""
    return [r[0] for r in conn.execute(
        "SELECT DISTINCT class_name FROM events WHERE class_name IS NOT NULL ORDER BY 1")]


def _day(ts: str | None) -> date | None:
    return date.fromisoformat(ts[:10]) if ts else None


def data_span(conn: sqlite3.Connection) -> DataSpan:
    """First and last day with coverage, results or episodes (index min/max, cheap)."""
    firsts, lasts = [], []
    for table, col in (("coverage_hourly", "hour"), ("events", "started_at"),
                       ("results", "ts"), ("results_hourly", "hour")):
        lo, hi = conn.execute(f"SELECT MIN({col}), MAX({col}) FROM {table}").fetchone()
        if lo:
            firsts.append(lo)
            lasts.append(hi)
    counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
              for t in ("events", "results", "sessions")}
    return DataSpan(_day(min(firsts)) if firsts else None, _day(max(lasts)) if lasts else None,
                    counts)


def provenance(conn: sqlite3.Connection, f: HistoryFilter) -> Provenance:
    """Model files/hashes and rule versions of the sessions and episodes in the filter."""
    params: list = [f.lo, f.hi]
    st = _in("station", f.stations, params) if f.stations else ""
    models: dict[str, str] = {}  # hash -> label
    for path, sha in conn.execute("SELECT DISTINCT model_path, model_hash FROM sessions"
                                  f" WHERE started_at >= ? AND started_at < ?{st}", params):
        models[sha] = f"{path} ({sha[:12]})"
    where, eparams = _where(replace(f, classes=(), severities=(), reviews=()), "e.started_at",
                            "e.station", True)
    for (sha,) in conn.execute(f"SELECT DISTINCT e.model_hash FROM events e WHERE {where}"
                               " AND e.model_hash IS NOT NULL", eparams):
        models.setdefault(sha, f"model {sha[:12]}")
    rules = [f"{r[0]}: v{r[1]}" for r in conn.execute(
        "SELECT e.station, GROUP_CONCAT(DISTINCT e.rule_version) FROM events e"
        f" WHERE {where} AND e.rule_version IS NOT NULL GROUP BY e.station", eparams)]
    return Provenance(tuple(sorted(models.values())), tuple(rules))


def rollup_coverage(conn: sqlite3.Connection, before: str) -> int:
    """Add ``coverage_hourly`` rows for hours before ``before`` that have raw
    ``coverage_seconds`` but no roll-up yet (one row = one watched second). Roll-ups the
    recorder already wrote (:func:`core.episodes.write_coverage`) are kept as they are.
    Returns the number of hourly rows added."""
    cur = conn.execute(
        "INSERT INTO coverage_hourly (station, hour, watched_s, hand_s, gloved_s, bare_s)"
        " SELECT station, substr(ts,1,13) || ':00:00', COUNT(*), SUM(hands > 0),"
        " SUM(gloved_s), SUM(bare_s) FROM coverage_seconds WHERE ts < ?"
        " GROUP BY station, substr(ts,1,13) ORDER BY 1, 2"
        " ON CONFLICT(station, hour) DO NOTHING", (before,))
    return cur.rowcount


def default_filter(conn: sqlite3.Connection, days: int = 30) -> HistoryFilter:
    """The last ``days`` days up to the latest data (today when the store is empty)."""
    span = data_span(conn)
    end = span.last or datetime.now().date()
    start = max(end - timedelta(days=days - 1), span.first or end)
    return HistoryFilter(start=start, end=end)


@dataclass(frozen=True)
class QueryTiming:
    """Wall time of one page query (best of ``repeat`` runs)."""

    name: str
    ms: float
    rows: int


def bench(conn: sqlite3.Connection, f: HistoryFilter, repeat: int = 3) -> list[QueryTiming]:
    """Time every query the History page runs for filter ``f``."""
    import time

    queries = {
        "kpis": lambda: [kpis(conn, f)],
        "trend_day": lambda: trend(conn, f, "day"),
        "trend_week": lambda: trend(conn, f, "week"),
        "station_shift": lambda: station_shift(conn, f),
        "hour_profile": lambda: hour_profile(conn, f),
        "top_stations": lambda: top_stations(conn, f),
        "coverage": lambda: coverage(conn, f),
        "episodes_page": lambda: episodes(conn, f, limit=200),
        "episodes_count": lambda: [count_episodes(conn, f)],
        "stations": lambda: stations(conn),
        "data_span": lambda: [data_span(conn)],
        "provenance": lambda: [provenance(conn, f)],
    }
    out = []
    for name, fn in queries.items():
        best, rows = float("inf"), 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            rows = len(fn())
            best = min(best, time.perf_counter() - t0)
        out.append(QueryTiming(name, round(best * 1000, 1), rows))
    return out
