"""The store on both backends: the same repositories, History figures, migrations and store
copies on SQLite and on a real PostgreSQL server (started for the session by the ``postgres``
fixture; these tests skip, saying why, where PostgreSQL is not installed).

Tests taking ``backend_store`` run once per backend. Tests comparing backends fill one store
of each with the same data and require the same answers.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, is_dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Text, inspect, select

from core.analytics import history as H
from core.analytics.retention import run_retention
from core.analytics.synth import generate
from core.cli import main
from core.config import settings
from core.errors import StoreError, TrainingError
from core.storage import Store, close_store, open_store
from core.storage import schema as t
from core.storage.coverage import CoverageRow, HourRow
from core.storage.database import normalize_url
from core.storage.events import EventRow, OpenRefresh
from core.storage.filters import HistoryFilter
from core.storage.migrations import SCHEMA_VERSION, schema_version
from core.storage.sessions import DetectionRow, ResultRow, SessionInfo
from core.storage.transfer import copy_store, table_counts

END = date(2025, 3, 16)  # the synthetic data ends on a fixed day: same figures every run


@pytest.fixture(params=["sqlite", "postgres"])
def backend_store(
    request: pytest.FixtureRequest, gw_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Store:
    """The configured store of this test's data folder: the SQLite file, or (second run) a new
    PostgreSQL database selected by ``GLOVEWATCH_DB_URL``."""
    if request.param == "postgres":
        monkeypatch.setenv("GLOVEWATCH_DB_URL", request.getfixturevalue("pg_url"))
    st = open_store()
    assert st.db.dialect == ("postgresql" if request.param == "postgres" else "sqlite")
    return st


@pytest.fixture
def both(gw_home: Path, pg_url: str) -> tuple[Store, Store]:
    """An empty SQLite store and an empty PostgreSQL store."""
    return open_store(), open_store(pg_url)


def _session(st: Store, station: str = "Saw 01", kind: str = "live") -> int:
    return st.sessions.start(
        SessionInfo(kind, "camera 1", station, "weights/m.pt", "ab" * 32, 0.25, 0.7, 640)
    )


def _plain(value: Any) -> Any:
    """Figures as plain data, floats rounded (sums may add up in another order)."""
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    return value


def _figures(st: Store, f: HistoryFilter) -> dict[str, Any]:
    """Everything the History page and reports read for filter ``f``."""
    return _plain(
        {
            "kpis": H.kpis(st, f),
            "trend_day": H.trend(st, f, "day"),
            "trend_week": H.trend(st, f, "week"),
            "trend_hour": H.trend(st, HistoryFilter(f.end, f.end), "hour"),
            "station_shift": H.station_shift(st, f),
            "hour_profile": H.hour_profile(st, f),
            "per_station": H.per_station(st, f),
            "top": H.top_stations(st, f),
            "coverage": H.coverage(st, f),
            "provenance": H.provenance(st, f),
            "count": H.count_episodes(st, f),
            "classes": H.classes(st),
            "stations": H.stations(st),
            "span": H.data_span(st),
            "episodes": [
                (e.station, e.started_at, e.duration_s, e.severity, e.review)
                for order in ("newest", "longest", "critical first")
                for e in H.episodes(st, f, limit=50, order=order)
            ],
        }
    )


def _days_back_to(cutoff: date) -> int:
    """Retention's ``days`` whose cutoff is midnight starting ``cutoff``."""
    return (date.today() - cutoff).days


FILTERS = [
    lambda f: f,
    lambda f: HistoryFilter(f.start, f.end, stations=("Saw 02", "Inspection bench")),
    lambda f: HistoryFilter(f.start, f.end, shifts=("Night",)),
    lambda f: HistoryFilter(f.start, f.end, severities=("critical",), reviews=("confirmed",)),
]


# --- the backend itself -------------------------------------------------------------------


def test_postgresql_urls_use_psycopg() -> None:
    """``postgresql://`` and ``postgres://`` URLs connect through psycopg 3; others stay."""
    assert normalize_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_url("postgres://h/db") == "postgresql+psycopg://h/db"
    assert normalize_url("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"
    assert normalize_url("sqlite:///x.sqlite") == "sqlite:///x.sqlite"


def test_plain_postgresql_url_opens_the_same_store(
    pg_url: str, gw_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GLOVEWATCH_DB_URL=postgresql://... selects PostgreSQL: the store the app opens is the
    one at that URL, whichever spelling is used."""
    monkeypatch.setenv(
        "GLOVEWATCH_DB_URL", pg_url.replace("postgresql+psycopg://", "postgresql://")
    )
    st = open_store()
    assert st.db.dialect == "postgresql" and st is open_store(pg_url)
    sid = _session(st)
    assert open_store(pg_url).sessions.get(sid) is not None


def test_unreachable_server_is_one_clear_error(gw_home: Path) -> None:
    """A PostgreSQL URL with no server behind it is a StoreError that says so."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StoreError, match="cannot be reached"):
        open_store(f"postgresql://gw@127.0.0.1:{port}/nothing")


def test_schema_matches_the_metadata_on_both(both: tuple[Store, Store]) -> None:
    """SQLite's migrations and PostgreSQL's created schema have every table, column and index
    of the metadata the queries are written against."""
    for st in both:
        insp = inspect(st.db.engine)
        for table in t.metadata.sorted_tables:
            cols = {c["name"]: c for c in insp.get_columns(table.name)}
            assert list(cols) == [c.name for c in table.columns], (st.db.dialect, table.name)
            for c in table.columns:
                if not c.primary_key:  # SQLite reports its key columns as nullable
                    assert cols[c.name]["nullable"] == c.nullable, (st.db.dialect, c)
            indexes = {i["name"] for i in insp.get_indexes(table.name)}
            assert {i.name for i in table.indexes} <= indexes, (st.db.dialect, table.name)
            if st.db.dialect == "postgresql":  # text compares byte by byte there too
                assert all(
                    getattr(c["type"], "collation", None) == "C"
                    for c in cols.values()
                    if isinstance(c["type"], Text)
                ), table.name


def test_text_sorts_by_bytes_on_both(both: tuple[Store, Store]) -> None:
    """Names and timestamps sort the same on both backends (byte order), whatever the
    PostgreSQL server's locale (the test server's is ICU en-US where available)."""
    names = ["saw 2", "Saw 10", "Saw 2", "bench", "Åsa", "Band-saw"]
    for st in both:
        st.stations.ensure(names)
        assert st.stations.names() == sorted(names), st.db.dialect


# --- repositories, once per backend --------------------------------------------------------


def test_sessions_results_and_day_summary(backend_store: Store) -> None:
    """A session with results and detections reads back the same; the day summary counts
    frames, judged hands and episodes of the day."""
    st = backend_store
    sid = _session(st, kind="batch")
    rid = st.sessions.add_result(
        sid,
        ResultRow(
            "a.jpg",
            verdict="violation",
            violation=1,
            violating=1,
            ts="2025-03-01 10:00:00",
            detections=[
                DetectionRow(
                    1, "hand", "violation", 0.9, (1.0, 2.0, 30.0, 40.0), status="violating"
                )
            ],
        ),
    )
    st.sessions.add_result(
        sid,
        ResultRow("b.jpg", verdict="compliant", protected=2, compliant=2, ts="2025-03-01 10:00:01"),
    )
    st.sessions.add_result(sid, ResultRow("c.jpg", error="unreadable", ts="2025-03-01 10:00:02"))
    st.sessions.set_annotated(rid, "batch/a.jpg")
    assert [s.id for s in st.sessions.running()] == [sid]
    st.events.insert(
        EventRow(
            "Saw 01",
            "2025-03-01 10:00:00",
            "2025-03-01 10:00:00",
            session_id=sid,
            source="a.jpg",
            frame=0,
            severity="critical",
        )
    )
    st.sessions.end(sid)
    rec = st.sessions.get(sid)
    assert rec is not None and rec.status == "finished" and rec.ended_at
    assert st.sessions.running() == []
    day = st.sessions.day_summary("2025-03-01")
    assert (day.images, day.compliant, day.violating, day.events, day.critical) == (2, 2, 1, 1, 1)
    ep = st.events.matching(HistoryFilter(date(2025, 3, 1), date(2025, 3, 1)))[0]
    dets = st.events.frame_detections(ep)
    assert [(d.role, d.status, d.box) for d in dets] == [
        ("violation", "violating", (1.0, 2.0, 30.0, 40.0))
    ]


def test_episode_lifecycle_review_and_orders(backend_store: Store) -> None:
    """Open, refresh, close, review (with its trail), and the three list orders."""
    st = backend_store
    sid = _session(st)
    eid = st.events.insert(
        EventRow("Saw 01", "2025-03-01 08:00:00", state="open", session_id=sid, class_name="hand")
    )
    st.events.refresh_open([OpenRefresh(eid, "2025-03-01 08:00:05", 5.0, 0.8, "warning", None)])
    st.events.close(
        eid,
        EventRow(
            "Saw 01",
            "2025-03-01 08:00:00",
            "2025-03-01 08:00:09",
            9.0,
            class_name="hand",
            peak_conf=0.9,
            severity="critical",
            zone="blade",
        ),
    )
    long_id = st.events.insert(
        EventRow("Saw 01", "2025-03-01 07:00:00", "2025-03-01 07:01:00", 60.0, class_name="bare")
    )
    new_id = st.events.insert(
        EventRow("Saw 01", "2025-03-01 09:00:00", "2025-03-01 09:00:02", 2.0, class_name="hand")
    )
    ep = st.events.get(eid)
    assert ep is not None and (ep.state, ep.duration_s, ep.zone) == ("closed", 9.0, "blade")
    f = HistoryFilter(date(2025, 3, 1), date(2025, 3, 1))
    order = {
        o: [e.id for e in st.events.matching(f, order=o)]
        for o in ("newest", "longest", "critical first")
    }
    assert order == {
        "newest": [new_id, eid, long_id],
        "longest": [long_id, eid, new_id],
        "critical first": [eid, long_id, new_id],
    }
    assert st.events.classes() == ["bare", "hand"]
    assert st.events.set_review(eid, "dismissed", "glove", "lead") is not None
    assert st.events.set_review(eid, "confirmed", None, "lead") is not None
    assert st.events.set_review(999_999, "confirmed", None, "lead") is None
    assert [r.review for r in st.events.review_history(eid)] == ["dismissed", "confirmed"]
    assert st.events.count(HistoryFilter(f.start, f.end, reviews=("confirmed",))) == 1
    assert [e.id for e in st.events.for_session(sid)] == [eid]


def test_close_orphans_closes_at_last_sighting(backend_store: Store) -> None:
    """Open episodes of dead, ended or missing sessions are closed at their last sighting;
    those of a running session stay open."""
    st = backend_store
    alive, dead, ended = _session(st), _session(st), _session(st)
    st.sessions.end(ended)
    ids = {
        name: st.events.insert(
            EventRow(
                "Saw 01", "2025-03-01 08:00:00", "2025-03-01 08:00:07", state="open", session_id=sid
            )
        )
        for name, sid in (("alive", alive), ("dead", dead), ("ended", ended))
    }
    ids["none"] = st.events.insert(EventRow("Saw 01", "2025-03-01 09:00:00", state="open"))
    assert st.events.close_orphans([dead]) == 3
    got = {name: st.events.get(i) for name, i in ids.items()}
    assert got["alive"] and got["alive"].state == "open"
    assert got["dead"] and (got["dead"].state, got["dead"].duration_s) == ("closed", 7.0)
    assert got["none"] and (got["none"].ended_at, got["none"].duration_s) == (
        "2025-03-01 09:00:00",
        0.0,
    )
    assert st.events.close_orphans([]) == 0


def test_upsert_by_key_is_idempotent_across_writers(backend_store: Store) -> None:
    """The same episode key written by several writers at once is stored once; every writer
    gets the same id (20 keys, 6 writers each)."""
    st = backend_store
    rows = [
        EventRow("Saw 01", "2025-03-01 08:00:00", event_key=f"worker-a/cam-1/{k}")
        for k in range(20)
    ]
    ids: dict[int, list[int]] = {k: [] for k in range(len(rows))}
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def write() -> None:
        try:
            for k, row in enumerate(rows):
                barrier.wait()
                ids[k].append(st.events.upsert_by_key(row))
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=write) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert all(len(got) == 6 and len(set(got)) == 1 for got in ids.values())
    assert st.events.id_by_key(rows[0].event_key or "") == ids[0][0]
    assert st.events.upsert_by_key(rows[0]) == ids[0][0]
    assert st.events.count(HistoryFilter(date(2025, 3, 1), date(2025, 3, 1))) == len(rows)


def test_coverage_rolls_up_by_hour(backend_store: Store) -> None:
    """Coverage seconds add into the hourly roll-up (again on a second write); hours written
    directly are merged per hour; History reads the hours."""
    st = backend_store
    rows = [CoverageRow(f"2025-03-01 10:59:5{i}", 1.0, 1.0, 1, 1.0, 0.0) for i in range(5)]
    rows += [CoverageRow("2025-03-01 11:00:00", 1.0, 1.0, 2, 1.0, 1.0)]
    st.coverage.write("Saw 01", None, rows)
    st.coverage.write("Saw 01", None, rows[:1])
    assert (
        st.coverage.insert_hours(
            [
                HourRow("Saw 02", "2025-03-01 12:00:00", 10, 5, 4, 1),
                HourRow("Saw 02", "2025-03-01 12:00:00", 10, 5, 3, 2),
            ]
        )
        == 2
    )
    f = HistoryFilter(date(2025, 3, 1), date(2025, 3, 1))
    per_hour = {
        s.key: (s.watched_s, s.compliant_s, s.violating_s)
        for s in H.trend(f=f, store=st, by="hour")
        if s.watched_s
    }
    assert per_hour == {
        ("2025-03-01 10",): (6.0, 6.0, 0.0),
        ("2025-03-01 11",): (1.0, 1.0, 1.0),
        ("2025-03-01 12",): (20.0, 7.0, 3.0),
    }
    assert st.history.table_counts(("coverage_seconds",)) == {"coverage_seconds": 7}


def test_daily_rollup_is_the_hourly_one_summed(backend_store: Store) -> None:
    """Every way coverage reaches the hourly roll-up (bulk loads, live writes, hours written
    directly, retention rolling up raw seconds) adds the same figures per day: History by
    day (daily roll-up) equals History by hour (hourly roll-up) summed per day."""
    st = backend_store
    generate(st, stations=2, days=3, seconds_rows=2_000, seed=9, end=date(2025, 3, 3))
    st.coverage.write("Saw 01", None, [CoverageRow("2025-03-02 10:00:01", 1.0, 1.0, 1, 1.0)])
    st.coverage.insert_hours([HourRow("Saw 09", "2025-03-01 23:00:00", 60, 30, 20, 10)])
    st.coverage.insert_seconds(
        [("Saw 08", CoverageRow(f"2025-03-02 05:00:0{i}", 1.0, 1.0, 1, 0.0, 1.0)) for i in range(4)]
    )
    run_retention(st, days=_days_back_to(date(2025, 3, 4)))  # rolls Saw 08's seconds up
    f = HistoryFilter(date(2025, 3, 1), date(2025, 3, 3))
    by_day = {s.key[0]: (s.watched_s, s.compliant_s, s.violating_s) for s in H.trend(st, f, "day")}
    by_hour: dict[str, tuple[float, float, float]] = {}
    for s in H.trend(st, f, "hour"):
        w, c, v = by_hour.get(s.key[0][:10], (0.0, 0.0, 0.0))
        by_hour[s.key[0][:10]] = (w + s.watched_s, c + s.compliant_s, v + s.violating_s)
    assert by_day == by_hour and len(by_day) == 3
    stations = {s.key[0]: s.watched_s for s in H.per_station(st, f)}
    assert (stations["Saw 08"], stations["Saw 09"]) == (4.0, 60.0)


@pytest.mark.parametrize(
    "shifts, expected",
    [
        ("", {"Early": (2, 7200.0), "Late": (2, 0.0), "Night": (2, 0.0)}),
        (
            "Early=06:30-14:30,Late=14:30-22:30,Night=22:30-06:30",
            {"Early": (2, 3600.0), "Late": (1, 0.0), "Night": (3, 3600.0)},
        ),
    ],
)
def test_shift_figures(
    backend_store: Store,
    monkeypatch: pytest.MonkeyPatch,
    shifts: str,
    expected: dict[str, tuple[int, float]],
) -> None:
    """Episodes count in the shift of their start time (to the minute), hours of coverage in
    the shift of the hour's start, for shifts on the hour and off it, by shift and when
    filtering by shift."""
    if shifts:
        monkeypatch.setenv("GLOVEWATCH_SHIFTS", shifts)
    st = backend_store
    for ts in (
        "2025-03-01 06:29:59",
        "2025-03-01 06:30:00",
        "2025-03-01 14:29:00",
        "2025-03-01 14:30:00",
        "2025-03-01 22:45:00",
        "2025-03-01 03:00:00",
    ):
        st.events.insert(EventRow("Saw 01", ts, ts))
    st.coverage.insert_hours(
        [
            HourRow("Saw 01", "2025-03-01 06:00:00", 3600, 0, 0, 0),
            HourRow("Saw 01", "2025-03-01 07:00:00", 3600, 0, 0, 0),
        ]
    )
    # the entry point's settings, passed down in the filter
    f = HistoryFilter(date(2025, 3, 1), date(2025, 3, 1), plant_shifts=settings().shifts)
    got = {s.key[1]: (s.episodes, s.watched_s) for s in H.station_shift(st, f)}
    assert got == expected
    by_night = HistoryFilter(f.start, f.end, shifts=("Night",), plant_shifts=f.plant_shifts)
    night = H.kpis(st, by_night).total
    assert (night.episodes, night.watched_s) == expected["Night"]


def test_station_rule_versions(backend_store: Store) -> None:
    """Each saved rule is the next version; a hidden station comes back with a new rule."""
    st = backend_store
    assert [
        st.stations.save_rule("Saw 01", json.dumps({"v": v}), "eng").version for v in range(3)
    ] == [1, 2, 3]
    latest = st.stations.latest("Saw 01")
    assert latest and latest.version == 3 and json.loads(latest.rule_json) == {"v": 2}
    assert [r.version for r in st.stations.history("Saw 01")] == [3, 2, 1]
    v1 = st.stations.version("Saw 01", 1)
    assert v1 and json.loads(v1.rule_json) == {"v": 0}
    assert st.stations.hide("Saw 01") and not st.stations.hide("nowhere")
    assert st.stations.names() == []
    assert [(s.name, s.deleted) for s in st.stations.known()] == [("Saw 01", True)]
    st.stations.save_rule("Saw 01", "{}", None)
    assert st.stations.names() == ["Saw 01"]


def test_concurrent_rule_saves_get_distinct_versions(backend_store: Store) -> None:
    """Writers saving rules of one station at the same moment get versions 1..n, none lost."""
    st = backend_store
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def save(i: int) -> None:
        try:
            barrier.wait()
            st.stations.save_rule("Saw 07", json.dumps({"by": i}), f"w{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert sorted(r.version for r in st.stations.history("Saw 07")) == [1, 2, 3, 4]


def _queue(st: Store, name: str, device: str = "cpu") -> int:
    return st.runs.create(
        name,
        "gloves",
        "yolo11n.pt",
        device,
        None,
        folder_for=lambda i: f"runs/{i}",
        args_for=lambda d: {"project": d},
    )


def test_start_queued_starts_the_oldest_run_per_device(backend_store: Store) -> None:
    """One run per device: the oldest queued; a failing spawn fails that run only; a name
    already queued is refused."""
    st = backend_store
    first, second, gpu, bad = (
        _queue(st, "a"),
        _queue(st, "b"),
        _queue(st, "c", "0"),
        _queue(st, "d", "1"),
    )
    with pytest.raises(TrainingError, match="already queued"):
        _queue(st, "a")

    def spawn(run: Any) -> int:
        if run.device == "1":
            raise TrainingError("no such GPU")
        return 1000 + run.id

    assert st.runs.start_queued(spawn) == [first, gpu]
    runs = {r.id: r for r in st.runs.all()}
    assert (runs[first].status, runs[first].pid) == ("running", 1000 + first)
    assert runs[second].status == "queued"
    assert (runs[bad].status, runs[bad].message) == ("failed", "no such GPU")
    assert st.runs.start_queued(spawn) == []
    assert st.runs.set(first, only_if=("running",), status="finished")
    assert st.runs.start_queued(spawn) == [second]


def test_two_processes_never_start_the_same_run(backend_store: Store) -> None:
    """Two schedulers at once (each with its own connection): every queued run is spawned
    once, and never two runs on one device."""
    st = backend_store
    ids = [_queue(st, f"r{i}") for i in range(3)]
    spawned: list[int] = []
    barrier = threading.Barrier(2)

    def spawn(run: Any) -> int:
        spawned.append(run.id)
        time.sleep(0.3)  # the other scheduler runs meanwhile
        return 4242

    def schedule() -> None:
        barrier.wait()
        st.runs.start_queued(spawn)

    threads = [threading.Thread(target=schedule) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert spawned == [ids[0]]
    assert [r.status for r in sorted(st.runs.all(), key=lambda r: r.id)] == [
        "running",
        "queued",
        "queued",
    ]


def test_registry_scopes(backend_store: Store) -> None:
    """One active entry plant-wide and one per station; activate(None) falls back."""
    st = backend_store
    run = _queue(st, "a")
    plant1 = st.registry.promote(
        "m1.pt", "11" * 32, run, "gloves", {"gloved": "protected"}, {"map50": 0.8}, "eng"
    )
    plant2 = st.registry.promote("m2.pt", "22" * 32, None, None, {}, {}, "eng")
    saw = st.registry.promote("saw.pt", "33" * 32, None, None, {}, {}, "eng", station="Saw 01")
    active = st.registry.active()
    assert active and active.id == plant2.id and active.active
    station_active = st.registry.active("Saw 01")
    assert station_active and station_active.id == saw.id
    st.registry.activate(plant1.id)
    active = st.registry.active()
    assert active and active.id == plant1.id and active.roles == {"gloved": "protected"}
    st.registry.activate(None, station="Saw 01")
    assert st.registry.active("Saw 01") is None and st.registry.active() is not None
    assert [e.id for e in st.registry.all()] == [saw.id, plant2.id, plant1.id]


def test_users_and_audit(backend_store: Store) -> None:
    """Accounts and the audit log read back the same, newest audit entries first."""
    st = backend_store
    st.users.add("zoe", "hash", "admin")
    st.users.add("Adam", None, "viewer")
    assert [u.name for u in st.users.all()] == ["Adam", "zoe"]
    assert st.users.update("Adam", disabled=1, failed_logins=3)
    adam = st.users.get("Adam")
    assert adam and adam.disabled and adam.failed_logins == 3
    assert st.users.count_active() == 1 and st.users.count_active("viewer") == 0
    for i in range(3):
        st.audit.add("zoe", "user.add" if i < 2 else "role.set", f"u{i}", {"i": i})
    assert [a.details["i"] for a in st.audit.recent()] == [2, 1, 0]
    assert [a.target for a in st.audit.recent(action="user.add", limit=1)] == ["u1"]


def test_site_frames_and_datasets(backend_store: Store) -> None:
    """Collected frames, their label history and counts; data sets by id and name."""
    st = backend_store
    a = st.site.add(
        "Saw 01", "site/a.jpg", "live", "2025-03-01 08:00:00", "ff" * 8, 0.4, 3, "train"
    )
    st.site.add(
        "Saw 01",
        "site/b.jpg",
        "live",
        "2025-03-01 08:00:01",
        "0f" * 8,
        0.1,
        3,
        "holdout",
        boxes=[],
        status="done",
    )
    st.site.set_labels(
        a,
        [{"class_id": 1, "x1": 0.1, "y1": 0.1, "x2": 0.2, "y2": 0.2}],
        "ann",
        "edit",
        status="done",
    )
    assert [c.action for c in st.site.history(a)] == ["edit"]
    counts = st.site.counts()[0]
    assert (counts.total, counts.done, counts.holdout, counts.holdout_done) == (2, 2, 1, 1)
    ds = st.datasets.add("gloves", "/d/data.yaml", "detect", ("gloved", "bare"), "{}")
    got = st.datasets.get("gloves")
    assert got and got.id == ds.id and got.names == ("gloved", "bare")


def test_fleet_status_and_messages_applied_once(backend_store: Store) -> None:
    """Workers' and cameras' status rows are replaced by newer reports; a coverage message
    applied twice counts once (hourly and daily); a camera run keeps its session."""
    from core.storage.fleet import CameraRow, WorkerRow

    st = backend_store
    st.fleet.report(
        WorkerRow("w1", "online", "host-a"),
        [CameraRow("cam-2", "Saw 02", "live"), CameraRow("cam-1", "Saw 01", "live")],
    )
    st.fleet.report(
        WorkerRow("w1", "online", "host-a"),
        [CameraRow("cam-1", "Saw 01", "stalled", fps=2.5, analysed=10)],
    )
    assert [(w.name, w.status) for w in st.fleet.workers()] == [("w1", "online")]
    assert [(c.name, c.status, c.analysed) for c in st.fleet.cameras()] == [
        ("cam-1", "stalled", 10),
        ("cam-2", "live", 0),
    ]
    rows = [CoverageRow(f"2025-03-01 10:00:0{i}", 1.0, 1.0, 1, 1.0, 0.0) for i in range(3)]
    assert st.fleet.coverage_once("w1/cam-1/1", "Saw 01", None, rows)
    assert not st.fleet.coverage_once("w1/cam-1/1", "Saw 01", None, rows)
    assert st.fleet.applied("w1/cam-1/1")
    f = HistoryFilter(date(2025, 3, 1), date(2025, 3, 1))
    assert H.kpis(st, f).total.watched_s == 3.0
    assert sum(s.watched_s for s in H.trend(st, f, "hour")) == 3.0
    info = SessionInfo("stream", "rtsp://cam-1", "Saw 01", "m.pt", "ab", 0.25, 0.7, 640)
    sid = st.fleet.run_session("run-7", info, "host-a", 4321)
    assert st.fleet.run_session("run-7", info, "host-a", 4321) == sid
    assert st.fleet.run_session("run-8", info, "host-a", 4321) != sid
    assert sorted(st.fleet.end_sessions("host-a", 4321, "finished")) == [sid, sid + 1]
    assert st.fleet.prune_ingested("2999-01-01 00:00:00") == 1


def test_bulk_load_moves_id_sequences(backend_store: Store) -> None:
    """Rows loaded with explicit ids do not collide with rows added afterwards."""
    st = backend_store
    st.bulk.load(
        [
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
                    "started_at",
                    "status",
                ),
                (
                    (
                        i,
                        "live",
                        "cam",
                        "Saw 01",
                        "m.pt",
                        "ab",
                        0.25,
                        0.7,
                        640,
                        "2025-03-01 00:00:00",
                        "finished",
                    )
                    for i in (5, 9, 40)
                ),
            ),
            (
                "events",
                ("id", "session_id", "station", "started_at"),
                [(7, 9, "Saw 01", "2025-03-01 08:00:00")],
            ),
        ]
    )
    assert st.bulk.max_id("sessions") == 40
    assert _session(st) == 41
    assert st.events.insert(EventRow("Saw 01", "2025-03-01 09:00:00")) == 8


def test_retention_keeps_the_figures(backend_store: Store) -> None:
    """Retention deletes old raw rows and evidence paths but History's figures stay."""
    st = backend_store
    generate(st, stations=3, days=20, seconds_rows=20_000, seed=4, end=END)
    sid = _session(st, kind="batch")
    st.sessions.add_result(
        sid,
        ResultRow(
            "old.jpg", violating=1, compliant=2, ts="2025-03-01 10:00:00", annotated_path="x.jpg"
        ),
    )
    st.events.insert(
        EventRow(
            "Saw 01",
            "2025-03-01 10:00:00",
            evidence_path="ev.jpg",
            session_id=sid,
            source="old.jpg",
        )
    )
    f = HistoryFilter(date(2025, 2, 20), END)
    before = _figures(st, f)
    rep = run_retention(st, days=_days_back_to(date(2025, 3, 17)))
    assert rep.coverage_seconds_deleted > 0 and rep.results_deleted >= 1
    after = _figures(st, f)
    assert after["kpis"] == before["kpis"] and after["trend_day"] == before["trend_day"]
    assert after["station_shift"] == before["station_shift"]
    assert st.retention.last_runs()[0].days == rep.days


# --- the same figures on both backends -----------------------------------------------------


@pytest.mark.parametrize("days", [30, pytest.param(365, marks=pytest.mark.slow)])
def test_history_figures_are_identical_on_both(both: tuple[Store, Store], days: int) -> None:
    """Synthetic history (3 stations, an inspection bench, a deleted station, reviews, two
    models and rule versions; a month, and a year in the slow lane) gives the same History
    figures on SQLite and PostgreSQL, for several filters, and again after retention."""
    lite, pg = both
    for st in both:
        generate(st, stations=3, days=days, seconds_rows=10_000, seed=7, end=END)
    year = H.default_filter(lite, days=days)
    assert H.default_filter(pg, days=days) == year
    for make in FILTERS:
        f = make(year)
        assert _figures(pg, f) == _figures(lite, f), f.describe()
    reps = [run_retention(st, days=_days_back_to(date(2025, 3, 16))) for st in both]
    assert reps[0].coverage_seconds_deleted == reps[1].coverage_seconds_deleted > 0
    assert _figures(pg, year) == _figures(lite, year)


# --- migrations ------------------------------------------------------------------------------


def test_new_postgres_store_records_its_version(pg_empty_url: str) -> None:
    """A new PostgreSQL database is created at the current version, recorded in
    schema_version; opening it again changes nothing."""
    st = open_store(pg_empty_url)
    assert (st.db.migrated_from, st.db.schema_version()) == (0, SCHEMA_VERSION)
    close_store(st)
    again = open_store(pg_empty_url)
    assert (again.db.migrated_from, again.db.schema_version()) == (SCHEMA_VERSION, SCHEMA_VERSION)
    with again.db.read() as c:
        assert [r.version for r in c.execute(select(schema_version))] == [SCHEMA_VERSION]


_VERSION_9_TABLES = set(
    [
        "sessions",
        "results",
        "detections",
        "events",
        "coverage_seconds",
        "coverage_hourly",
        "stations",
        "station_rules",
        "datasets",
        "runs",
        "model_registry",
        "event_reviews",
        "results_hourly",
        "retention_runs",
        "users",
        "audit_log",
        "site_frames",
        "label_changes",
        "ingested",
        "workers",
        "cameras",
        "schema_version",
    ]
)


def test_postgres_store_of_version_9_gets_the_daily_rollup(pg_fresh_url: str) -> None:
    """A PostgreSQL store of version 9 (before the daily roll-up) is upgraded by the same
    script as SQLite: the roll-up is filled from the hourly rows, with byte-order text, and
    History's daily figures match the hourly ones."""
    st = open_store(pg_fresh_url)
    st.coverage.insert_hours(
        [HourRow("Saw 01", f"2025-03-01 {h:02d}:00:00", 3600, 100, 60, 40) for h in range(6, 14)]
    )
    with st.db.write() as c:  # back to version 9, rows kept
        c.exec_driver_sql("DROP TABLE coverage_daily")
        for later in set(inspect(c).get_table_names()) - _VERSION_9_TABLES:  # 11 and later
            c.exec_driver_sql(f"DROP TABLE {later}")
        c.execute(schema_version.update().values(version=9))
    close_store(st)
    st = open_store(pg_fresh_url)
    assert (st.db.migrated_from, st.db.schema_version()) == (9, SCHEMA_VERSION)
    types = {c["name"]: c["type"] for c in inspect(st.db.engine).get_columns("coverage_daily")}
    assert types["station"].collation == "C" and types["day"].collation == "C"
    f = HistoryFilter(date(2025, 3, 1), date(2025, 3, 1))
    day = H.trend(st, f, "day")[0]
    assert (day.watched_s, day.compliant_s, day.violating_s) == (8 * 3600, 480.0, 320.0)
    early = H.kpis(st, HistoryFilter(f.start, f.end, shifts=("Early",))).total  # hourly
    assert (early.watched_s, early.compliant_s, early.violating_s) == (
        day.watched_s,
        day.compliant_s,
        day.violating_s,
    )


def _future_step(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.storage import migrations

    step = """
    -- a made-up next version, written once for both backends
    ALTER TABLE events ADD COLUMN future_note TEXT;
    CREATE INDEX events_future ON events(future_note);
    UPDATE events SET future_note = 'migrated';
    """
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, step])
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", SCHEMA_VERSION + 1)


def test_a_future_migration_runs_on_both(
    gw_home: Path, pg_fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store of today's version (with rows) is upgraded in place by the next version's
    script, on SQLite and on PostgreSQL alike, and records the new version."""
    stores = [open_store(), open_store(pg_fresh_url)]
    for st in stores:
        st.events.insert(EventRow("Saw 01", "2025-03-01 08:00:00"))
        close_store(st)
    _future_step(monkeypatch)
    for url in (str(settings().db_path), pg_fresh_url):
        st = open_store(url)
        assert (st.db.migrated_from, st.db.schema_version()) == (
            SCHEMA_VERSION,
            SCHEMA_VERSION + 1,
        ), url
        with st.db.read() as c:
            assert c.exec_driver_sql("SELECT future_note FROM events").scalar_one() == "migrated"
        close_store(st)


def test_a_newer_store_is_refused(
    gw_home: Path, pg_fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store written by a newer GloveWatch is refused on both backends, unchanged."""
    from core.storage import migrations

    today = (migrations.MIGRATIONS, migrations.SCHEMA_VERSION)
    _future_step(monkeypatch)
    urls = (str(gw_home / "newer.sqlite"), pg_fresh_url)
    for url in urls:
        close_store(open_store(url))
    monkeypatch.setattr(migrations, "MIGRATIONS", today[0])
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", today[1])
    for url in urls:
        with pytest.raises(StoreError, match="newer than this GloveWatch"):
            open_store(url)


def test_foreign_tables_without_a_version_are_refused(postgres: Any, pg_empty_url: str) -> None:
    """A database holding a different 'events' table and no version record is not taken
    for a GloveWatch store."""
    with postgres.admin(pg_empty_url.rsplit("/", 1)[1]) as conn:
        conn.execute("CREATE TABLE events (id integer, what text)")
    with pytest.raises(StoreError, match="not a GloveWatch store"):
        open_store(pg_empty_url)


def _cli(capfd: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main(list(argv))
    out = capfd.readouterr().out
    return code, json.loads(out) if "--json" in argv and out.strip() else out


def test_db_migrate_and_info_on_both(
    backend_store: Store, capfd: pytest.CaptureFixture[str]
) -> None:
    """``db migrate`` says the configured store's version; ``db info`` its backend, version
    and row counts."""
    _session(backend_store)
    code, out = _cli(capfd, "db", "migrate", "--json")
    assert code == 0 and out["version"] == SCHEMA_VERSION
    assert out["backend"] == backend_store.db.dialect
    code, text = _cli(capfd, "db", "migrate")
    assert code == 0 and f"schema version {SCHEMA_VERSION}" in text
    code, info = _cli(capfd, "db", "info", "--json")
    assert code == 0 and info["rows"]["sessions"] == 1 and info["version"] == SCHEMA_VERSION


def test_db_migrate_creates_a_new_postgres_store(
    gw_home: Path,
    pg_empty_url: str,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``db migrate`` on an empty PostgreSQL database creates the schema and says so."""
    monkeypatch.setenv("GLOVEWATCH_DB_URL", pg_empty_url)
    code, text = _cli(capfd, "db", "migrate")
    assert code == 0 and f"schema version {SCHEMA_VERSION} (created)" in text
    assert "postgresql" in text


# --- db copy -------------------------------------------------------------------------------


@pytest.mark.slow
def test_db_copy_moves_a_real_store_to_postgres(
    history_home: Path, pg_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """``db copy --to postgresql://...`` of a store with synthetic history and a real batch
    session: every table has the same rows, History shows the same figures, and new rows get
    new ids."""
    lite = open_store()
    code, out = _cli(capfd, "db", "copy", "--to", pg_url, "--json")
    assert code == 0 and out["ok"], out
    counts = table_counts(lite.db)
    assert {k: v["target"] for k, v in out["tables"].items()} == counts
    assert counts["detections"] > 0 and counts["results"] > 0 and counts["events"] > 0
    pg = open_store(pg_url)
    assert table_counts(pg.db) == counts
    span = H.data_span(lite)
    assert span.first and span.last
    whole = HistoryFilter(span.first, span.last)
    for make in FILTERS:
        f = make(whole)
        assert _figures(pg, f) == _figures(lite, f), f.describe()
    batch = lite.sessions.get(lite.bulk.max_id("sessions"))  # the real batch, made last
    assert batch and batch.kind == "batch"
    ep = pg.events.for_session(batch.id)[0]
    assert (
        pg.events.frame_detections(ep)
        == lite.events.frame_detections(lite.events.for_session(batch.id)[0])
        != []
    )
    assert _session(pg) == lite.bulk.max_id("sessions") + 1
    assert pg.events.set_review(ep.id, "confirmed", None, "lead") is not None


def test_db_copy_refuses_a_target_with_rows(
    both: tuple[Store, Store], pg_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """A target that holds rows is refused (exit 1, unchanged); --force replaces them."""
    lite, pg = both
    generate(lite, stations=2, days=5, seconds_rows=2_000, seed=3, end=END)
    _session(pg, station="Elsewhere")
    code, out = _cli(capfd, "db", "copy", "--to", pg_url)
    assert code == 2 and out == ""
    assert table_counts(pg.db)["sessions"] == 1
    code, out = _cli(capfd, "db", "copy", "--to", pg_url, "--force", "--chunk", "500")
    assert code == 0 and "tables match" in out
    assert table_counts(pg.db) == table_counts(lite.db)
    assert "Elsewhere" not in {s.name for s in H.stations(pg)}


def test_copy_back_from_postgres_to_sqlite(both: tuple[Store, Store], tmp_path: Path) -> None:
    """A PostgreSQL store copies into a new SQLite file with the same rows and figures."""
    _, pg = both
    generate(pg, stations=2, days=10, seconds_rows=3_000, seed=5, end=END)
    back = open_store(str(tmp_path / "back.sqlite"))
    rep = copy_store(pg.db, back.db, chunk=1_000)
    assert rep.ok and rep.rows == sum(table_counts(pg.db).values())
    f = H.default_filter(pg, days=10)
    assert _figures(back, f) == _figures(pg, f)
    with pytest.raises(StoreError, match="both the source and the target"):
        copy_store(pg.db, pg.db)


def test_a_refused_row_leaves_the_target_empty(both: tuple[Store, Store]) -> None:
    """A source row the target cannot hold (an orphan result) aborts the copy: the target is
    left empty, with a message naming the table."""
    lite, pg = both
    sid = _session(lite, kind="batch")
    lite.sessions.add_result(sid, ResultRow("a.jpg", ts="2025-03-01 10:00:00"))
    raw: Any = lite.db.engine.raw_connection()  # an orphan, as an old store could hold
    try:
        raw.driver_connection.execute("PRAGMA foreign_keys=OFF")
        raw.driver_connection.execute("UPDATE results SET session_id = 999")
    finally:
        raw.close()
    with pytest.raises(StoreError, match="in table results"):
        copy_store(lite.db, pg.db)
    assert sum(table_counts(pg.db).values()) == 0
