"""Synthetic monitoring history: a year of coverage and episodes for many stations.

Used to try the History page and reports at plant scale and to measure query speed
(``python -m core synth`` / ``bench-history``). Deterministic for a given seed and end date.

The model behind the numbers: each station has its own glove habit, the night shift is worse,
compliance improves slowly over the year, cameras are sometimes off for a whole day (those
days must show as "no coverage", not as compliant), one station is deleted part-way through,
and one inspection bench only sends batch photos (no time coverage, so its compliance comes
from hand detections). Raw per-second rows are written for the most recent monitored hours
only, as the live pipeline keeps them until retention rolls them up; older hours exist as
``coverage_hourly`` roll-ups.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from core.analytics.synth_episodes import EVENT_COLUMNS, MODELS, episode_rows, with_evidence
from core.storage import Store

INSPECTION_STATION = "Inspection bench"


@dataclass(frozen=True)
class SynthReport:
    """What :func:`generate` wrote, and how long it took."""

    stations: int
    days: int
    start: date
    end: date
    coverage_seconds: int
    coverage_hourly: int
    events: int
    sessions: int
    results: int
    seconds: float


def _station_names(n: int) -> list[str]:
    return [f"Saw {i + 1:02d}" for i in range(n)]


def _hour_prefixes(start: date, days: int) -> list[str]:
    t0 = datetime(start.year, start.month, start.day)
    return [(t0 + timedelta(hours=h)).strftime("%Y-%m-%d %H") for h in range(days * 24)]


@dataclass
class _Year:
    """The calendar of a synthetic year: stations, hours and what each hour is."""

    start: date
    days: int
    names: list[str]
    prefixes: list[str]  # 'YYYY-MM-DD HH' of every hour
    hour_of_day: np.ndarray
    day_idx: np.ndarray
    weekday: np.ndarray
    year_frac: np.ndarray
    night: np.ndarray
    early: np.ndarray
    deleted_station: str | None
    deleted_day: int
    switch_day: int  # model v2 and rule v2 from here on

    @classmethod
    def of(cls, start: date, days: int, stations: int) -> _Year:
        names = _station_names(stations)
        prefixes = _hour_prefixes(start, days)
        n_hours = len(prefixes)
        hour_of_day = np.arange(n_hours) % 24
        day_idx = np.arange(n_hours) // 24
        return cls(
            start=start,
            days=days,
            names=names,
            prefixes=prefixes,
            hour_of_day=hour_of_day,
            day_idx=day_idx,
            weekday=np.array([(start + timedelta(days=int(d))).weekday() for d in range(days)]),
            year_frac=day_idx / max(days - 1, 1),
            night=(hour_of_day >= 22) | (hour_of_day < 6),
            early=(hour_of_day >= 6) & (hour_of_day < 14),
            deleted_station=names[-1] if stations > 1 else None,
            deleted_day=int(days * 0.8),
            switch_day=days // 2,
        )


@dataclass
class _Monitoring:
    """Per station, hour by hour: seconds watched, hand-seconds and the compliance habit;
    plus one live session per station and monitored day."""

    hourly: dict[str, dict[str, np.ndarray]]
    sessions: list[tuple[Any, ...]]
    session_of: dict[tuple[str, int], int]
    last_sid: int


def _station_hours(rng: np.random.Generator, y: _Year, i: int) -> dict[str, np.ndarray]:
    """One station's hours: when its camera works, and how well its people wear gloves."""
    n_hours, name = len(y.prefixes), y.names[i]
    base = 0.80 + 0.18 * rng.random()
    round_clock = i >= int(len(y.names) * 0.7)
    works = np.ones(n_hours, bool) if round_clock else ~y.night
    works &= y.weekday[y.day_idx] != 6  # Sundays off
    day_off = rng.random(y.days) < 0.04  # camera down for the whole day
    works &= ~day_off[y.day_idx]
    if name == y.deleted_station:
        works &= y.day_idx < y.deleted_day
    watched = np.where(works, np.round(3600 * rng.uniform(0.7, 1.0, n_hours)), 0.0)
    p = np.clip(
        base + 0.03 * y.year_frac + 0.01 * y.early - 0.06 * y.night + rng.normal(0, 0.02, n_hours),
        0.3,
        0.995,
    )
    hand_s = np.round(watched * rng.uniform(0.3, 0.6, n_hours))
    hand_secs = hand_s * 1.3
    return {
        "watched": watched,
        "hand": hand_s,
        "ok": np.round(hand_secs * p),
        "bad": np.round(hand_secs * (1 - p)),
        "p": p,
    }


def _monitoring(rng: np.random.Generator, y: _Year, first_sid: int) -> _Monitoring:
    """Every station's hours and its live sessions (one per monitored day)."""
    m = _Monitoring({}, [], {}, first_sid)
    for i, name in enumerate(y.names):
        hh = m.hourly[name] = _station_hours(rng, y, i)
        for d in np.unique(y.day_idx[hh["watched"] > 0]):
            m.last_sid += 1
            model = MODELS[1 if d >= y.switch_day else 0]
            t = f"{(y.start + timedelta(days=int(d))).isoformat()} 00:00:00"
            m.sessions.append(
                (m.last_sid, "live", f"camera {i + 1:02d}", name, *model, 0.25, 0.7, 640, "{}")
                + (t, t, "finished")
            )
            m.session_of[(name, int(d))] = m.last_sid
    return m


def _raw_hours(y: _Year, m: _Monitoring, budget: int) -> list[tuple[int, str, int]]:
    """(hour, station, seconds) of the most recent monitored hours, newest first until
    ``budget`` per-second rows are spent; in time order."""
    raw: list[tuple[int, str, int]] = []
    for hour in range(len(y.prefixes) - 1, -1, -1):
        if budget <= 0:
            break
        for name in y.names:
            w = int(m.hourly[name]["watched"][hour])
            if w and budget > 0:
                raw.append((hour, name, w))
                budget -= w
    return sorted(raw)


def _seconds_rows(
    rng: np.random.Generator, y: _Year, m: _Monitoring, raw: list[tuple[int, str, int]]
) -> Iterator[tuple[Any, ...]]:
    """Raw per-second rows of the ``raw`` hours; those hours' roll-ups are recomputed from
    the rows while they stream, so both agree."""
    second_suffix = [f":{s // 60:02d}:{s % 60:02d}" for s in range(3600)]
    for hour, name, w in raw:
        hh = m.hourly[name]
        secs = np.sort(rng.choice(3600, size=w, replace=False))
        hands = rng.choice(3, size=w, p=[0.55, 0.30, 0.15])
        bad = rng.binomial(hands, 1 - hh["p"][hour])
        ok = hands - bad
        hh["hand"][hour] = float((hands > 0).sum())
        hh["ok"][hour] = float(ok.sum())
        hh["bad"][hour] = float(bad.sum())
        prefix = y.prefixes[hour]
        sess = m.session_of.get((name, hour // 24))
        yield from zip(
            [name] * w,
            [sess] * w,
            [prefix + second_suffix[s] for s in secs],
            hands.tolist(),
            ok.tolist(),
            bad.tolist(),
        )


def _hourly_rows(y: _Year, m: _Monitoring) -> Iterator[tuple[Any, ...]]:
    """The hourly roll-ups (after the raw seconds: their hours were recomputed then)."""
    for name, hh in m.hourly.items():
        for hour in np.flatnonzero(hh["watched"] > 0):
            yield (
                name,
                y.prefixes[hour] + ":00:00",
                float(hh["watched"][hour]),
                float(hh["hand"][hour]),
                float(hh["ok"][hour]),
                float(hh["bad"][hour]),
            )


def _station_rows(y: _Year) -> list[tuple[Any, ...]]:
    deleted_at = f"{(y.start + timedelta(days=y.deleted_day)).isoformat()} 00:00:00"
    return [
        (n, f"{y.start.isoformat()} 00:00:00", deleted_at if n == y.deleted_station else None)
        for n in y.names
    ]


SESSION_COLUMNS = (
    "id",
    "kind",
    "source",
    "station",
    "model_path",
    "model_hash",
    "conf",
    "iou",
    "imgsz",
    "params_json",
    "started_at",
    "ended_at",
    "status",
)
RESULT_COLUMNS = (
    "session_id",
    "source",
    "frame",
    "ts",
    "verdict",
    "protected",
    "violation",
    "compliant",
    "violating",
)


def _tables(
    rng: np.random.Generator,
    y: _Year,
    m: _Monitoring,
    raw: list[tuple[int, str, int]],
    events: Iterator[tuple[Any, ...]],
    sessions: list[tuple[Any, ...]],
    results: list[tuple[Any, ...]],
) -> list[tuple[str, tuple[str, ...], Any]]:
    """What goes into which table, in load order: the raw seconds before the roll-ups and
    episodes that follow them."""
    return [
        ("stations", ("name", "created_at", "deleted_at"), _station_rows(y)),
        ("sessions", SESSION_COLUMNS, sessions),
        (
            "coverage_seconds",
            ("station", "session_id", "ts", "hands", "compliant_s", "violating_s"),
            _seconds_rows(rng, y, m, raw),
        ),
        (
            "coverage_hourly",
            ("station", "hour", "watched_s", "hand_s", "compliant_s", "violating_s"),
            _hourly_rows(y, m),
        ),
        ("events", EVENT_COLUMNS, events),
        ("results", RESULT_COLUMNS, results),
    ]


def generate(
    store: Store,
    stations: int = 20,
    days: int = 365,
    seconds_rows: int = 3_000_000,
    seed: int = 0,
    end: date | None = None,
    batch_station: bool = True,
    evidence_dir: Path | None = None,
    evidence_count: int = 150,
) -> SynthReport:
    """Fill an empty store with ``days`` days ending ``end`` (default yesterday) for
    ``stations`` stations, about ``seconds_rows`` raw per-second coverage rows, and the
    matching hourly roll-ups, sessions and episodes. Bulk inserts, one transaction. With
    ``evidence_dir``, the newest ``evidence_count`` episodes get drawn evidence images there."""
    if stations < 1 or days < 1:
        raise ValueError("synth needs at least one station and one day")
    if not store.bulk.is_empty():
        raise ValueError(
            "synth only fills an empty store (this one already holds data); give it a new file."
        )
    t_start = time.perf_counter()
    rng = np.random.default_rng(seed)
    end = end or (datetime.now().date() - timedelta(days=1))
    y = _Year.of(end - timedelta(days=days - 1), days, stations)
    m = _monitoring(rng, y, store.bulk.max_id("sessions"))
    raw = _raw_hours(y, m, seconds_rows)

    def event_rows() -> Iterator[tuple[Any, ...]]:
        # after the raw seconds too: episodes follow the recomputed violating time
        rows = episode_rows(rng, m.hourly, y.prefixes, m.session_of, y.switch_day, days)
        if evidence_dir is not None:
            rows = with_evidence(rows, evidence_dir, evidence_count, seed)
        yield from rows

    batch_sessions, batch_results = (
        _batch_photos(rng, y.start, days, m.last_sid) if batch_station else ([], [])
    )
    counts = store.bulk.load(
        _tables(rng, y, m, raw, event_rows(), m.sessions + batch_sessions, batch_results)
    )
    assert counts["coverage_seconds"] == sum(w for _, _, w in raw)
    return SynthReport(
        stations,
        days,
        y.start,
        end,
        counts["coverage_seconds"],
        counts["coverage_hourly"],
        counts["events"],
        counts["sessions"],
        counts["results"],
        time.perf_counter() - t_start,
    )


def _batch_photos(
    rng: np.random.Generator, start: date, days: int, last_sid: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Weekly batches of 20 photos from an inspection bench (results only, no coverage)."""
    sessions, results = [], []
    sid = last_sid
    model = MODELS[0]
    for d in range(0, days, 7):
        sid += 1
        t = f"{(start + timedelta(days=d)).isoformat()} 10:00:00"
        sessions.append(
            (
                sid,
                "batch",
                "photos",
                INSPECTION_STATION,
                model[0],
                model[1],
                0.25,
                0.7,
                640,
                "{}",
                t,
                t,
                "finished",
            )
        )
        gloved = rng.integers(0, 3, 20)
        bare = (rng.random(20) < 0.1).astype(int)
        results += [
            (
                sid,
                f"IMG_{d:03d}_{k:02d}.jpg",
                0,
                t,
                "violation" if b else ("compliant" if g else "no hands seen"),
                int(g),
                int(b),
                int(g),
                int(b),
            )
            for k, (g, b) in enumerate(zip(gloved, bare))
        ]
    return sessions, results
