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
import sqlite3
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from core import store as st
from core.config import DEFAULT_WEIGHTS

MODELS = (
    (str(DEFAULT_WEIGHTS), "5f" * 32),
    ("models/gloves-v2.pt", "a7" * 32),
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


def generate(conn: sqlite3.Connection, stations: int = 20, days: int = 365,
             seconds_rows: int = 3_000_000, seed: int = 0, end: date | None = None,
             batch_station: bool = True) -> SynthReport:
    """Fill ``conn`` (an opened store) with ``days`` days ending ``end`` (default yesterday)
    for ``stations`` stations, about ``seconds_rows`` raw per-second coverage rows, and the
    matching hourly roll-ups, sessions and episodes. Bulk inserts, one transaction."""
    if stations < 1 or days < 1:
        raise ValueError("synth needs at least one station and one day")
    if conn.execute("SELECT EXISTS (SELECT 1 FROM events) OR EXISTS (SELECT 1 FROM"
                    " coverage_hourly) OR EXISTS (SELECT 1 FROM sessions)").fetchone()[0]:
        raise ValueError("synth only fills an empty store (this one already holds data); "
                         "give it a new file.")
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
    session_rows, session_of = [], {}
    sid = conn.execute("SELECT COALESCE(MAX(id),0) FROM sessions").fetchone()[0]
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
        p = np.clip(base + 0.03 * year_frac + 0.01 * early - 0.06 * night
                    + rng.normal(0, 0.02, n_hours), 0.3, 0.995)
        hand_s = np.round(watched * rng.uniform(0.3, 0.6, n_hours))
        hand_secs = hand_s * 1.3
        hourly[name] = {"watched": watched, "hand": hand_s, "gloved": np.round(hand_secs * p),
                        "bare": np.round(hand_secs * (1 - p)), "p": p}
        for d in np.unique(day_idx[watched > 0]):
            sid += 1
            model = MODELS[1 if d >= switch_day else 0]
            t = f"{(start + timedelta(days=int(d))).isoformat()} 00:00:00"
            session_rows.append((sid, "live", f"rtsp://cam-{i + 1:02d}", name, model[0],
                                 model[1], 0.25, 0.7, 640, "{}", t, t, "finished"))
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

    def seconds_rows_iter():
        for h, name, w in raw_hours:
            hh = hourly[name]
            secs = np.sort(rng.choice(3600, size=w, replace=False))
            hands = rng.choice(3, size=w, p=[0.55, 0.30, 0.15])
            bare = rng.binomial(hands, 1 - hh["p"][h])
            gloved = hands - bare
            hh["hand"][h] = float((hands > 0).sum())
            hh["gloved"][h] = float(gloved.sum())
            hh["bare"][h] = float(bare.sum())
            prefix = prefixes[h]
            sess = session_of.get((name, h // 24))
            yield from zip([name] * w, [sess] * w, [prefix + second_suffix[s] for s in secs],
                           hands.tolist(), gloved.tolist(), bare.tolist())

    with st.transaction(conn):
        conn.executemany("INSERT OR IGNORE INTO stations (name, created_at, deleted_at)"
                         " VALUES (?,?,?)",
                         [(n, f"{start.isoformat()} 00:00:00",
                           f"{(start + timedelta(days=deleted_day)).isoformat()} 00:00:00"
                           if n == deleted_station else None) for n in names])
        conn.executemany(
            "INSERT INTO sessions (id, kind, source, station, model_path, model_hash, conf, iou,"
            " imgsz, params_json, started_at, ended_at, status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            session_rows)
        n_seconds = conn.executemany(
            "INSERT INTO coverage_seconds (station, session_id, ts, hands, gloved_s, bare_s)"
            " VALUES (?,?,?,?,?,?)", seconds_rows_iter()).rowcount
        hourly_rows = [
            (name, prefixes[h] + ":00:00", float(hh["watched"][h]), float(hh["hand"][h]),
             float(hh["gloved"][h]), float(hh["bare"][h]))
            for name, hh in hourly.items() for h in np.flatnonzero(hh["watched"] > 0)]
        conn.executemany(
            "INSERT OR REPLACE INTO coverage_hourly (station, hour, watched_s, hand_s, gloved_s,"
            " bare_s) VALUES (?,?,?,?,?,?)", hourly_rows)
        event_rows = _episodes(rng, hourly, prefixes, session_of, switch_day, days)
        conn.executemany(
            "INSERT INTO events (session_id, station, source, started_at, ended_at, duration_s,"
            " class_name, peak_conf, severity, model_hash, rule_version, zone, thresholds_json,"
            " review, review_comment, reviewed_by, reviewed_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", event_rows)
        n_results = _batch_photos(conn, rng, start, days, sid) if batch_station else 0
    n_sessions = len(session_rows) + (n_results // 20 if batch_station else 0)
    return SynthReport(stations, days, start, end, n_seconds, len(hourly_rows), len(event_rows),
                       n_sessions, n_results, time.perf_counter() - t_start)


def _episodes(rng, hourly, prefixes, session_of, switch_day, days) -> list[tuple]:
    """Violation episodes, about one per 10 bare hand-minutes, some reviewed."""
    rows = []
    thresholds = json.dumps({"min_duration_s": 1.0, "grace_s": 2.0})
    for name, hh in hourly.items():
        counts = rng.poisson(hh["bare"] / 600.0)
        hours = np.repeat(np.arange(len(counts)), counts)
        n = len(hours)
        offs = rng.integers(0, 3540, n)
        dur = np.round(rng.lognormal(1.8, 0.7, n), 1)
        critical = (dur > 15) | (rng.random(n) < 0.08)
        conf = np.round(rng.uniform(0.4, 0.95, n), 3)
        reviewed = rng.random(n)
        for h, o, d, c, pc, r in zip(hours.tolist(), offs.tolist(), dur.tolist(),
                                     critical.tolist(), conf.tolist(), reviewed.tolist()):
            day = h // 24
            t0 = datetime.strptime(prefixes[h], "%Y-%m-%d %H") + timedelta(seconds=o)
            t1 = t0 + timedelta(seconds=d)
            v2 = day >= switch_day
            old = day < days - 14  # the last two weeks are not reviewed yet
            review, comment, who, when = "unreviewed", None, None, None
            if old and r < 0.25:
                review = "dismissed" if r < 0.05 else "confirmed"
                comment = "glove seen on zoom" if review == "dismissed" else None
                who, when = "shift lead", (t1 + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S")
            rows.append((session_of.get((name, day)), name, "live", t0.strftime(
                "%Y-%m-%d %H:%M:%S"), t1.strftime("%Y-%m-%d %H:%M:%S"), d, "hand", pc,
                "critical" if c else "warning", MODELS[1 if v2 else 0][1], 2 if v2 else 1,
                "blade" if c else None, thresholds, review, comment, who, when))
    return rows


def _batch_photos(conn, rng, start: date, days: int, last_sid: int) -> int:
    """Weekly batches of 20 photos from an inspection bench (results only, no coverage)."""
    sid, n = last_sid, 0
    model = MODELS[0]
    for d in range(0, days, 7):
        sid += 1
        t = f"{(start + timedelta(days=d)).isoformat()} 10:00:00"
        conn.execute(
            "INSERT INTO sessions (id, kind, source, station, model_path, model_hash, conf, iou,"
            " imgsz, started_at, ended_at, status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (sid, "batch", "photos", INSPECTION_STATION, model[0], model[1], 0.25, 0.7, 640, t, t,
             "finished"))
        gloved = rng.integers(0, 3, 20)
        bare = (rng.random(20) < 0.1).astype(int)
        rows = [(sid, f"IMG_{d:03d}_{k:02d}.jpg", 0, t, "violation" if b else
                 ("compliant" if g else "no hands seen"), int(g), int(b))
                for k, (g, b) in enumerate(zip(gloved, bare))]
        conn.executemany("INSERT INTO results (session_id, source, frame, ts, verdict, protected,"
                         " violation) VALUES (?,?,?,?,?,?,?)", rows)
        n += len(rows)
    return n
