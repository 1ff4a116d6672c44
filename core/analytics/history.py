"""Compliance history: rates, trends and breakdowns from the store's roll-ups.

Compliance of a group (a day, a station x shift cell, ...) is compliant hand-time / all judged
hand-time when the group has coverage with hands in it, else compliant / all judged hand
detections (batch photos carry no time), else unknown. "Compliant" is what the station's rule
said when the hand was seen (a glove at a "no gloves" lathe is a violation). Each figure says
which basis it used, so a day without a camera is shown as "no data", never as 100 %.
Dismissed episodes (false alarms) are left out of the episode counts and their duration is
taken out of the violating hand-time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, overload

import numpy as np

from core.config import TRIAL_STATION
from core.storage import Store, now
from core.storage.events import EPISODE_ORDERS, EpisodeRecord
from core.storage.filters import OFF_SHIFT, REVIEW_STATES, SEVERITIES, HistoryFilter
from core.storage.history import (
    COUNT_FIELDS,
    FIELDS,
    DataSpan,
    Figures,
    KeyFn,
    Provenance,
    key_day,
    key_day_hour,
    key_hour,
    key_none,
    key_station,
    key_station_day,
    key_station_shift,
)
from core.storage.stations import StationRecord

BASIS_HAND_TIME = "hand-time"
BASIS_DETECTIONS = "detections"

__all__ = [
    "BASIS_DETECTIONS",
    "BASIS_HAND_TIME",
    "EPISODE_ORDERS",
    "OFF_SHIFT",
    "REVIEW_STATES",
    "SEVERITIES",
    "DataSpan",
    "EpisodeRecord",
    "Figure",
    "HistoryFilter",
    "Provenance",
    "Stats",
]


@dataclass(frozen=True)
class Stats(Figures):
    """Figures of one group with the rates derived from them."""

    @property
    def violating_s_effective(self) -> float:
        return max(0.0, self.violating_s - self.dismissed_s)

    @property
    def basis(self) -> str | None:
        """Which figures the compliance rate is computed from (None: nothing to compute)."""
        if self.compliant_s + self.violating_s > 0:
            return BASIS_HAND_TIME
        if self.compliant_n + self.violating_n > 0:
            return BASIS_DETECTIONS
        return None

    @property
    def compliance(self) -> float | None:
        """Share of compliant hands (0..1) on :attr:`basis`, None when no hand was judged."""
        if self.basis == BASIS_HAND_TIME:
            total = self.compliant_s + self.violating_s_effective
            return self.compliant_s / total if total else None
        if self.basis == BASIS_DETECTIONS:
            return self.compliant_n / (self.compliant_n + self.violating_n)
        return None

    @property
    def minutes(self) -> float:
        """Minutes actually monitored."""
        return self.watched_s / 60.0


def _stats(fig: Figures) -> Stats:
    return Stats(**{k: getattr(fig, k) for k in Figures.__dataclass_fields__})


@dataclass(frozen=True)
class Kpis:
    """Headline figures of the filtered period."""

    total: Stats
    basis_note: str

    @property
    def compliance(self) -> float | None:
        return self.total.compliance


def percent_text(v: float | None) -> str:
    """A compliance rate as pages and reports show it: ``51.6 %``, or ``no data``."""
    return f"{v * 100:.1f} %" if v is not None else "no data"


def duration_text(seconds: float) -> str:
    """Monitored time in the unit a reader expects: ``45 s`` under a minute, ``12 min`` under
    two hours, else ``3.5 h``."""
    if seconds < 59.5:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:,.0f} min"
    return f"{seconds / 3600:,.1f} h"


@dataclass(frozen=True)
class Figure:
    """One headline figure, defined here once for Home, History, the Excel report and the
    summary CSV: its value, how it is shown, and what it counts."""

    key: str
    label: str
    value: float | int | None  # compliance 0..1, counts, or seconds
    text: str
    help: str


HELP_EPISODES = (
    "Violation episodes: a hand that broke its station's glove rule, counted once however "
    "long it lasted. Episodes dismissed as false alarms in review are left out."
)
HELP_FRAMES = (
    "Photos and video frames checked in Batch (one per photo, one per video frame). Camera "
    "monitoring is counted as time monitored instead."
)
HELP_MONITORED = (
    "Time a camera (Live, a camera worker or a video in Batch) was actually watching, added "
    "up over stations. Batch photos add no time."
)


def headline(k: Kpis) -> tuple[Figure, ...]:
    """Compliance, episodes, critical episodes, images checked and time monitored of ``k``."""
    t = k.total
    critical = (
        "Episodes where the offending hand was inside a danger zone (around a blade, say); "
        "part of the episodes."
    )
    return (
        Figure("compliance", "Compliance", t.compliance, percent_text(t.compliance), k.basis_note),
        Figure(
            "episodes",
            "Episodes",
            t.episodes,
            f"{t.episodes:,}",
            f"{HELP_EPISODES} Dismissed in this range: {t.dismissed:,}.",
        ),
        Figure("critical", "Critical episodes", t.critical, f"{t.critical:,}", critical),
        Figure("frames", "Images checked", t.frames, f"{t.frames:,}", HELP_FRAMES),
        Figure(
            "monitored", "Time monitored", t.watched_s, duration_text(t.watched_s), HELP_MONITORED
        ),
    )


def today_filter(day: date | None = None) -> HistoryFilter:
    """The one-day filter of the overview page: ``day``, by default today in plant time."""
    day = day or date.fromisoformat(now()[:10])
    return HistoryFilter(start=day, end=day)


@dataclass(frozen=True)
class CoverageCell:
    """Minutes monitored at one station on one day (0 when no camera ran)."""

    station: str
    day: str
    stats: Stats


def _grouped(store: Store, f: HistoryFilter, key: KeyFn) -> dict[tuple[str, ...], Stats]:
    return {k: _stats(v) for k, v in store.history.grouped(f, key).items()}


def kpis(store: Store, f: HistoryFilter) -> Kpis:
    """Compliance, episodes, critical episodes and minutes monitored for the whole filter."""
    total = _grouped(store, f, key_none).get((), Stats())
    if total.basis == BASIS_HAND_TIME:
        note = (
            "Compliance = compliant hand-time / all judged hand-time from monitored "
            "coverage, by each station's rule"
            + (" (dismissed episodes' time taken out)." if total.dismissed_s else ".")
        )
        if total.compliant_n + total.violating_n:
            note += " Batch photos without time are not mixed in."
    elif total.basis == BASIS_DETECTIONS:
        note = (
            "No monitored coverage in this range: compliance = compliant / all judged hand "
            "detections of processed images and frames, by each station's rule."
        )
    else:
        note = "No hands were seen in this range, so there is no compliance rate."
    return Kpis(total=total, basis_note=note)


def _merge(rows: list[Stats], key: tuple[str, ...]) -> Stats:
    sums = {n: sum(getattr(r, n) for r in rows) for n in Figures.__dataclass_fields__ if n != "key"}
    return Stats(key=key, **sums)


def trend(store: Store, f: HistoryFilter, by: str = "day") -> list[Stats]:
    """Figures per hour (``by='hour'``, for a one-day range), day (every day of the range,
    empty ones included) or week (key = Monday of the week)."""
    if by == "hour":
        groups = _grouped(store, f, key_day_hour)
        hours = [
            datetime.combine(f.start, datetime.min.time()) + timedelta(hours=h)
            for h in range(24 * f.days)
        ]
        return [
            groups.get((h.strftime("%Y-%m-%d %H"),), Stats(key=(h.strftime("%Y-%m-%d %H"),)))
            for h in hours
        ]
    if by not in ("day", "week"):
        raise ValueError(f"trend by 'hour', 'day' or 'week', not {by!r}")
    groups = _grouped(store, f, key_day)
    days = [f.start + timedelta(days=i) for i in range(f.days)]
    daily = [groups.get((d.isoformat(),), Stats(key=(d.isoformat(),))) for d in days]
    if by == "day":
        return daily
    weeks: dict[str, list[Stats]] = {}
    for d, s in zip(days, daily):
        weeks.setdefault((d - timedelta(days=d.weekday())).isoformat(), []).append(s)
    return [_merge(rows, (monday,)) for monday, rows in weeks.items()]


def station_shift(store: Store, f: HistoryFilter) -> list[Stats]:
    """Figures per (station, shift), for the heatmap; key = (station, shift)."""
    return sorted(_grouped(store, f, key_station_shift).values(), key=lambda s: s.key)


def hour_profile(store: Store, f: HistoryFilter) -> list[Stats]:
    """Figures per hour of day 00..23 (all 24, empty ones included)."""
    groups = _grouped(store, f, key_hour)
    return [groups.get((f"{h:02d}",), Stats(key=(f"{h:02d}",))) for h in range(24)]


def per_station(store: Store, f: HistoryFilter) -> list[Stats]:
    """Figures per station, by name."""
    return sorted(_grouped(store, f, key_station).values(), key=lambda s: s.key)


def top_stations(store: Store, f: HistoryFilter, limit: int = 10) -> list[Stats]:
    """Stations by episodes (dismissed left out), worst first."""
    rows = [s for s in per_station(store, f) if s.episodes]
    rows.sort(key=lambda s: (-s.episodes, -s.critical, s.key))
    return rows[:limit]


class CoverageGrid(Sequence[CoverageCell]):
    """Monitoring per station and day as arrays (stations x days), for a year of 200
    stations without 73 000 Python objects; iterating gives :class:`CoverageCell` rows."""

    def __init__(self, stations: list[str], days: list[str], sums: np.ndarray):
        self.stations, self.days = stations, days
        self._sums = sums  # (stations, days, len(FIELDS))
        field = {n: i for i, n in enumerate(FIELDS)}
        self.minutes = sums[:, :, field["watched_s"]] / 60.0
        self.episodes = sums[:, :, field["episodes"]].astype(np.int64)
        ok_s, bad_s = sums[:, :, field["compliant_s"]], sums[:, :, field["violating_s"]]
        bad_s = np.maximum(0.0, bad_s - sums[:, :, field["dismissed_s"]])
        ok_n, bad_n = sums[:, :, field["compliant_n"]], sums[:, :, field["violating_n"]]
        time_based = (ok_s + sums[:, :, field["violating_s"]]) > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            by_time = np.where(ok_s + bad_s > 0, ok_s / (ok_s + bad_s), np.nan)
            by_count = np.where(ok_n + bad_n > 0, ok_n / (ok_n + bad_n), np.nan)
        self.compliance = np.where(time_based, by_time, by_count)  # nan: no hands judged

    def __len__(self) -> int:
        return len(self.stations) * len(self.days)

    def _cell(self, i: int) -> CoverageCell:
        si, di = divmod(i, len(self.days))
        key = (self.stations[si], self.days[di])
        values = self._sums[si, di].tolist()
        stats = Stats(
            key=key, **{n: int(v) if n in COUNT_FIELDS else v for n, v in zip(FIELDS, values)}
        )
        return CoverageCell(key[0], key[1], stats)

    @overload
    def __getitem__(self, i: int) -> CoverageCell: ...

    @overload
    def __getitem__(self, i: slice) -> list[CoverageCell]: ...

    def __getitem__(self, i: int | slice) -> CoverageCell | list[CoverageCell]:
        if isinstance(i, slice):
            return [self._cell(j) for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return self._cell(i % len(self))

    def __eq__(self, other: object) -> bool:
        return (
            list(self) == list(other) if isinstance(other, (list, CoverageGrid)) else NotImplemented
        )

    __hash__ = None  # type: ignore[assignment]


def coverage(store: Store, f: HistoryFilter) -> CoverageGrid:
    """Monitoring per station and day: every station that has any data in the range times
    every day of the range; days without a camera have 0 minutes and no compliance."""
    keys, sums = store.history.grouped_table(f, key_station_day)
    stations = sorted({k[0] for k in keys})
    days = [(f.start + timedelta(days=i)).isoformat() for i in range(f.days)]
    grid = np.zeros((len(stations), len(days), len(FIELDS)))
    s_index = {name: i for i, name in enumerate(stations)}
    d_index = {d: i for i, d in enumerate(days)}
    for (station, day), row in zip(keys, sums):
        if day in d_index:
            grid[s_index[station], d_index[day]] = row
    return CoverageGrid(stations, days, grid)


@dataclass(frozen=True)
class PageFigures:
    """Every figure the History page shows for one filter (one query round)."""

    kpis: Kpis
    trend: list[Stats]
    station_shift: list[Stats]
    hours: list[Stats]
    top: list[Stats]
    coverage: CoverageGrid
    count: int  # episodes in the table, dismissed ones included

    @property
    def has_data(self) -> bool:
        t = self.kpis.total
        return bool(t.watched_s or t.frames or self.count)

    @property
    def table_note(self) -> str:
        """How the episode table's count relates to the Episodes figure."""
        counted = self.kpis.total.episodes
        return (
            f"{self.count:,} episodes recorded: {counted:,} counted in the figures, "
            f"{self.count - counted:,} dismissed as false alarms (marked)."
        )


def page_figures(store: Store, f: HistoryFilter, by: str) -> PageFigures:
    """The History page's figures for ``f``, trends per ``by`` (hour, day or week)."""
    return PageFigures(
        kpis=kpis(store, f),
        trend=trend(store, f, by),
        station_shift=station_shift(store, f),
        hours=hour_profile(store, f),
        top=top_stations(store, f),
        coverage=coverage(store, f),
        count=count_episodes(store, f),
    )


def episodes(
    store: Store, f: HistoryFilter, limit: int = 200, offset: int = 0, order: str = "newest"
) -> list[EpisodeRecord]:
    """Episodes matching the filter (dismissed ones included, marked), for review."""
    return store.events.matching(f, limit, offset, order)


def count_episodes(store: Store, f: HistoryFilter) -> int:
    return store.events.count(f)


def get_episode(store: Store, event_id: int) -> EpisodeRecord | None:
    return store.events.get(event_id)


def stations(store: Store) -> list[StationRecord]:
    """Every station with data or a registration; hidden ones flagged (their data stays).
    Trial runs are not a station of the plant: left out."""
    return [s for s in store.stations.known() if s.name != TRIAL_STATION]


def classes(store: Store) -> list[str]:
    """Class names that episodes were raised for."""
    return store.events.classes()


def data_span(store: Store) -> DataSpan:
    return store.history.data_span()


def provenance(store: Store, f: HistoryFilter) -> Provenance:
    return store.history.provenance(f)


def default_filter(store: Store, days: int = 30) -> HistoryFilter:
    """The last ``days`` days up to the latest data (today when the store is empty)."""
    span = data_span(store)
    end = span.last or datetime.now().date()
    start = max(end - timedelta(days=days - 1), span.first or end)
    return HistoryFilter(start=start, end=end)


def picked_range(picked: date | Sequence[date], default: HistoryFilter) -> tuple[date, date]:
    """A date picker's value (one day, a pair, or nothing yet while a range is being picked)
    as (start, end), in order."""
    days = (picked,) if isinstance(picked, date) else tuple(picked)
    start = days[0] if days else default.start
    end = days[1] if len(days) > 1 else start
    return min(start, end), max(start, end)


def trend_granularity(f: HistoryFilter, wanted: str = "day") -> str:
    """A one-day range is shown per hour (days would be a single point)."""
    return "hour" if f.days == 1 else wanted


@dataclass(frozen=True)
class QueryTiming:
    """Wall time of one page query (best of ``repeat`` runs)."""

    name: str
    ms: float
    rows: int


def bench(store: Store, f: HistoryFilter, repeat: int = 3) -> list[QueryTiming]:
    """Time every query the History page runs for filter ``f``."""
    queries: dict[str, Callable[[], Sequence[Any]]] = {
        "kpis": lambda: [kpis(store, f)],
        "trend_day": lambda: trend(store, f, "day"),
        "trend_week": lambda: trend(store, f, "week"),
        "station_shift": lambda: station_shift(store, f),
        "hour_profile": lambda: hour_profile(store, f),
        "top_stations": lambda: top_stations(store, f),
        "coverage": lambda: coverage(store, f),
        "episodes_page": lambda: episodes(store, f, limit=200),
        "episodes_count": lambda: [count_episodes(store, f)],
        "stations": lambda: stations(store),
        "data_span": lambda: [data_span(store)],
        "provenance": lambda: [provenance(store, f)],
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


def as_date(value: str) -> date:
    """``YYYY-MM-DD`` as a date, with a clear error."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"'{value}' is not a date (use YYYY-MM-DD).") from None
