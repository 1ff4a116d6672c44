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

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from core.config import DEFAULT_WEIGHTS
from core.storage import Store

MODELS = (
    (DEFAULT_WEIGHTS.name, "5f" * 32),
    ("gloves-v2.pt", "a7" * 32),
)
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


def generate(
    store: Store,
    stations: int = 20,
    days: int = 365,
    seconds_rows: int = 3_000_000,
    seed: int = 0,
    end: date | None = None,
    batch_station: bool = True,
) -> SynthReport:
    """Fill an empty store with ``days`` days ending ``end`` (default yesterday) for
    ``stations`` stations, about ``seconds_rows`` raw per-second coverage rows, and the
    matching hourly roll-ups, sessions and episodes. Bulk inserts, one transaction."""
    if stations < 1 or days < 1:
        raise ValueError("synth needs at least one station and one day")
    if not store.bulk.is_empty():
        raise ValueError(
            "synth only fills an empty store (this one already holds data); give it a new file."
        )
    t_start = time.perf_counter()
    rng = np.random.default_rng(seed)
    end = end or (datetime.now().date() - timedelta(days=1))
    start = end - timedelta(days=days - 1)
    names = _station_names(stations)
    prefixes = _hour_prefixes(start, days)
    n_hours = len(prefixes)
    hour_of_day = np.arange(n_hours) % 24
    day_idx = np.arange(n_hours) // 24
    weekday = np.array([(start + timedelta(days=int(d))).weekday() for d in range(days)])
    year_frac = day_idx / max(days - 1, 1)
    night = (hour_of_day >= 22) | (hour_of_day < 6)
    early = (hour_of_day >= 6) & (hour_of_day < 14)
    deleted_station = names[-1] if stations > 1 else None
    deleted_day = int(days * 0.8)
    switch_day = days // 2  # model v2 and rule v2 from here on

    hourly: dict[str, dict[str, np.ndarray]] = {}
    session_rows: list[tuple[Any, ...]] = []
    session_of: dict[tuple[str, int], int] = {}
    sid = store.bulk.max_id("sessions")
    for i, name in enumerate(names):
        base = 0.80 + 0.18 * rng.random()
        round_clock = i >= int(stations * 0.7)
        works = np.ones(n_hours, bool) if round_clock else ~night
        works &= weekday[day_idx] != 6  # Sundays off
        day_off = rng.random(days) < 0.04  # camera down for the whole day
        works &= ~day_off[day_idx]
        if name == deleted_station:
            works &= day_idx < deleted_day
        watched = np.where(works, np.round(3600 * rng.uniform(0.7, 1.0, n_hours)), 0.0)
        p = np.clip(
            base + 0.03 * year_frac + 0.01 * early - 0.06 * night + rng.normal(0, 0.02, n_hours),
            0.3,
            0.995,
        )
        hand_s = np.round(watched * rng.uniform(0.3, 0.6, n_hours))
        hand_secs = hand_s * 1.3
        hourly[name] = {
            "watched": watched,
            "hand": hand_s,
            "ok": np.round(hand_secs * p),
            "bad": np.round(hand_secs * (1 - p)),
            "p": p,
        }
        for d in np.unique(day_idx[watched > 0]):
            sid += 1
            model = MODELS[1 if d >= switch_day else 0]
            t = f"{(start + timedelta(days=int(d))).isoformat()} 00:00:00"
            session_rows.append(
                (
                    sid,
                    "live",
                    f"camera {i + 1:02d}",
                    name,
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
            session_of[(name, int(d))] = sid

    # Raw per-second rows for the most recent monitored hours, newest first until the budget
    # is spent; those hours' roll-ups are recomputed from the rows so both agree.
    second_suffix = [f":{s // 60:02d}:{s % 60:02d}" for s in range(3600)]
    raw_hours: list[tuple[int, str, int]] = []  # (hour, station, rows)
    budget = seconds_rows
    for h in range(n_hours - 1, -1, -1):
        if budget <= 0:
            break
        for name in names:
            w = int(hourly[name]["watched"][h])
            if w and budget > 0:
                raw_hours.append((h, name, w))
                budget -= w
    raw_hours.sort()
    raw_seconds = sum(w for _, _, w in raw_hours)

    def seconds_rows_iter() -> Iterator[tuple[Any, ...]]:
        for h, name, w in raw_hours:
            hh = hourly[name]
            secs = np.sort(rng.choice(3600, size=w, replace=False))
            hands = rng.choice(3, size=w, p=[0.55, 0.30, 0.15])
            bad = rng.binomial(hands, 1 - hh["p"][h])
            ok = hands - bad
            hh["hand"][h] = float((hands > 0).sum())
            hh["ok"][h] = float(ok.sum())
            hh["bad"][h] = float(bad.sum())
            prefix = prefixes[h]
            sess = session_of.get((name, h // 24))
            yield from zip(
                [name] * w,
                [sess] * w,
                [prefix + second_suffix[s] for s in secs],
                hands.tolist(),
                ok.tolist(),
                bad.tolist(),
            )

    def hourly_rows() -> Iterator[tuple[Any, ...]]:
        # after the raw seconds: their hours were recomputed while they streamed
        for name, hh in hourly.items():
            for h in np.flatnonzero(hh["watched"] > 0):
                yield (
                    name,
                    prefixes[h] + ":00:00",
                    float(hh["watched"][h]),
                    float(hh["hand"][h]),
                    float(hh["ok"][h]),
                    float(hh["bad"][h]),
                )

    def event_rows() -> Iterator[tuple[Any, ...]]:
        # after the raw seconds too: episodes follow the recomputed violating time
        yield from _episodes(rng, hourly, prefixes, session_of, switch_day, days)

    station_rows = [
        (
            n,
            f"{start.isoformat()} 00:00:00",
            f"{(start + timedelta(days=deleted_day)).isoformat()} 00:00:00"
            if n == deleted_station
            else None,
        )
        for n in names
    ]
    batch_sessions, batch_results = (
        _batch_photos(rng, start, days, sid) if batch_station else ([], [])
    )
    counts = store.bulk.load(
        [
            ("stations", ("name", "created_at", "deleted_at"), station_rows),
            (
                "sessions",
                (
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
                ),
                session_rows + batch_sessions,
            ),
            (
                "coverage_seconds",
                ("station", "session_id", "ts", "hands", "compliant_s", "violating_s"),
                seconds_rows_iter(),
            ),
            (
                "coverage_hourly",
                ("station", "hour", "watched_s", "hand_s", "compliant_s", "violating_s"),
                hourly_rows(),
            ),
            (
                "events",
                (
                    "session_id",
                    "station",
                    "source",
                    "started_at",
                    "ended_at",
                    "duration_s",
                    "class_name",
                    "peak_conf",
                    "severity",
                    "model_hash",
                    "model_name",
                    "rule_version",
                    "zone",
                    "thresholds_json",
                    "review",
                    "review_comment",
                    "reviewed_by",
                    "reviewed_at",
                    "reason",
                ),
                event_rows(),
            ),
            (
                "results",
                (
                    "session_id",
                    "source",
                    "frame",
                    "ts",
                    "verdict",
                    "protected",
                    "violation",
                    "compliant",
                    "violating",
                ),
                batch_results,
            ),
        ]
    )
    assert counts["coverage_seconds"] == raw_seconds
    return SynthReport(
        stations,
        days,
        start,
        end,
        counts["coverage_seconds"],
        counts["coverage_hourly"],
        counts["events"],
        counts["sessions"],
        counts["results"],
        time.perf_counter() - t_start,
    )


def _episodes(
    rng: np.random.Generator,
    hourly: dict[str, dict[str, np.ndarray]],
    prefixes: list[str],
    session_of: dict[tuple[str, int], int],
    switch_day: int,
    days: int,
) -> list[tuple[Any, ...]]:
    """Violation episodes, about one per 10 violating hand-minutes, some reviewed."""
    rows: list[tuple[Any, ...]] = []
    thresholds = json.dumps({"min_duration_s": 1.0, "grace_s": 2.0})
    for name, hh in hourly.items():
        counts = rng.poisson(hh["bad"] / 600.0)
        hours = np.repeat(np.arange(len(counts)), counts)
        n = len(hours)
        offs = rng.integers(0, 3540, n)
        dur = np.round(rng.lognormal(1.8, 0.7, n), 1)
        critical = (dur > 15) | (rng.random(n) < 0.08)
        conf = np.round(rng.uniform(0.4, 0.95, n), 3)
        reviewed = rng.random(n)
        for h, o, d, c, pc, r in zip(
            hours.tolist(),
            offs.tolist(),
            dur.tolist(),
            critical.tolist(),
            conf.tolist(),
            reviewed.tolist(),
        ):
            day = h // 24
            t0 = datetime.strptime(prefixes[h], "%Y-%m-%d %H") + timedelta(seconds=o)
            t1 = t0 + timedelta(seconds=d)
            model = MODELS[1 if day >= switch_day else 0]
            old = day < days - 14  # the last two weeks are not reviewed yet
            review, comment, who, when = "unreviewed", None, None, None
            if old and r < 0.25:
                review = "dismissed" if r < 0.05 else "confirmed"
                comment = "glove seen on zoom" if review == "dismissed" else None
                who, when = "shift lead", (t1 + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S")
            rows.append(
                (
                    session_of.get((name, day)),
                    name,
                    "live",
                    t0.strftime("%Y-%m-%d %H:%M:%S"),
                    t1.strftime("%Y-%m-%d %H:%M:%S"),
                    d,
                    "hand",
                    pc,
                    "critical" if c else "warning",
                    model[1],
                    model[0],
                    2 if day >= switch_day else 1,
                    "blade" if c else None,
                    thresholds,
                    review,
                    comment,
                    who,
                    when,
                    "bare hand (hand)",
                )
            )
    return rows


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
