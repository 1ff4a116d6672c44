"""Schema history: an old store upgrades in place, and the scripts arrive at the schema the
queries are written against (``core.storage.schema``), table by table, column by column."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.errors import StoreError
from core.storage import close_store, open_store, schema
from core.storage.filters import HistoryFilter
from core.storage.history import key_station

OLD_VERSION = 6  # the schema of GloveWatch 0.2 (coverage judged gloved/bare by class)


def _affinity(declared: str) -> str:
    """SQLite's type affinity of a declared column type (section 3.1 of its datatype docs)."""
    t = declared.upper()
    if "INT" in t:
        return "INTEGER"
    if any(k in t for k in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if any(k in t for k in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC" if t else "BLOB"


def _sqlite_schema(path: Path) -> dict[str, dict]:
    """Tables of a SQLite file: columns, indexes and foreign keys, as PRAGMAs report them."""
    conn = sqlite3.connect(path)
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        out = {}
        for name in names:
            cols = [
                {
                    "name": r[1],
                    "type": _affinity(r[2]),
                    "notnull": bool(r[3]),
                    "default": r[4],
                    "pk": r[5] > 0,
                }
                for r in conn.execute(f"PRAGMA table_info({name})")
            ]
            indexes, unique_cols = {}, set()
            for r in conn.execute(f"PRAGMA index_list({name})"):
                idx_cols = tuple(c[2] for c in conn.execute(f"PRAGMA index_info({r[1]})"))
                if r[3] == "c":
                    indexes[r[1]] = (idx_cols, bool(r[2]))
                elif r[3] == "u" and len(idx_cols) == 1:
                    unique_cols.add(idx_cols[0])
            fks = {
                (r[3], r[2], r[4], r[6].upper())
                for r in conn.execute(f"PRAGMA foreign_key_list({name})")
            }
            out[name] = {"columns": cols, "indexes": indexes, "unique": unique_cols, "fks": fks}
        return out
    finally:
        conn.close()


def _metadata_schema() -> dict[str, dict]:
    out = {}
    for table in schema.metadata.sorted_tables:
        cols = []
        for c in table.columns:
            default = c.server_default.arg.text if c.server_default is not None else None
            cols.append(
                {
                    "name": c.name,
                    "type": _affinity(c.type.compile()),
                    "notnull": not c.nullable and not c.primary_key,
                    "default": default,
                    "pk": c.primary_key,
                }
            )
        indexes = {
            ix.name: (tuple(col.name for col in ix.columns), bool(ix.unique))
            for ix in table.indexes
        }
        unique_cols = {c.name for c in table.columns if c.unique}
        fks = {
            (
                fk.parent.name,
                fk.column.table.name,
                fk.column.name,
                (fk.ondelete or "NO ACTION").upper(),
            )
            for fk in table.foreign_keys
        }
        out[table.name] = {"columns": cols, "indexes": indexes, "unique": unique_cols, "fks": fks}
    return out


def _assert_matches_metadata(path: Path) -> None:
    actual, expected = _sqlite_schema(path), _metadata_schema()
    assert sorted(actual) == sorted(expected), "tables differ"
    for name, want in expected.items():
        got = actual[name]
        for col in got["columns"]:  # SQLite reports NOT NULL of key columns as declared
            if col["pk"]:
                col["notnull"] = False
        assert [c["name"] for c in got["columns"]] == [c["name"] for c in want["columns"]], name
        for g, w in zip(got["columns"], want["columns"]):
            assert g == w, f"{name}.{w['name']}: store {g} vs schema.py {w}"
        assert got["indexes"] == want["indexes"], f"indexes of {name}"
        assert got["unique"] == want["unique"], f"unique columns of {name}"
        assert got["fks"] == want["fks"], f"foreign keys of {name}"


def _old_store(path: Path) -> None:
    """A store written by the old schema (its 6 scripts), with a few rows of every kind."""
    from core.storage.migrations import MIGRATIONS

    conn = sqlite3.connect(path)
    for version, script in enumerate(MIGRATIONS[:OLD_VERSION], 1):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")
    conn.executescript("""
        INSERT INTO sessions (id, kind, source, station, model_path, model_hash, conf, iou,
                              imgsz, started_at, ended_at, status)
            VALUES (1, 'live', 'rtsp://cam', 'Saw 01', 'old.pt', 'abc', 0.25, 0.7, 640,
                    '2026-01-05 10:00:00', '2026-01-05 11:00:00', 'finished');
        INSERT INTO results (session_id, source, frame, ts, verdict, protected, violation,
                             context)
            VALUES (1, 'rtsp://cam', 12, '2026-01-05 10:00:12', 'violation', 1, 2, 0);
        INSERT INTO detections (result_id, class_id, class_name, role, confidence,
                                x1, y1, x2, y2, track_id)
            VALUES (1, 1, 'hand', 'violation', 0.9, 1, 2, 3, 4, 7);
        INSERT INTO events (session_id, station, started_at, ended_at, duration_s,
                            class_name, peak_conf, severity, state, review, reviewed_by)
            VALUES (1, 'Saw 01', '2026-01-05 10:00:10', '2026-01-05 10:00:20', 10, 'hand',
                    0.9, 'critical', 'closed', 'confirmed', 'ann');
        INSERT INTO coverage_seconds (station, session_id, ts, hands, gloved_s, bare_s)
            VALUES ('Saw 01', 1, '2026-01-05 10:00:10', 2, 1.0, 0.5),
                   ('Saw 01', 1, '2026-01-05 10:00:11', 1, 0.0, 1.0);
        INSERT INTO coverage_hourly (station, hour, watched_s, hand_s, gloved_s, bare_s)
            VALUES ('Saw 01', '2026-01-05 10:00:00', 3600, 1800, 1200, 600);
        INSERT INTO results_hourly (station, hour, frames, gloved_n, bare_n)
            VALUES ('Saw 01', '2025-12-01 08:00:00', 40, 30, 10);
        INSERT INTO stations (name, created_at) VALUES ('Saw 01', '2026-01-01 08:00:00');
        INSERT INTO station_rules (station, version, rule_json, created_at, author)
            VALUES ('Saw 01', 1, '{"polarity": "gloves_required"}', '2026-01-01 08:00:00',
                    'bob');
        INSERT INTO model_registry (path, sha256, promoted_by, promoted_at, active)
            VALUES ('/models/a.pt', 'ff', 'ann', '2026-01-02 09:00:00', 1);
    """)
    conn.close()


@pytest.fixture
def upgraded(tmp_path):
    """An old store opened (and so upgraded) by this GloveWatch."""
    path = tmp_path / "old.sqlite"
    _old_store(path)
    store = open_store(str(path))
    yield path, store
    close_store(store)


def test_old_store_is_upgraded_to_the_current_version(upgraded):
    from core.storage.migrations import SCHEMA_VERSION

    path, store = upgraded
    assert store.db.migrated_from == OLD_VERSION
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


def test_upgrade_keeps_rows_and_renames_columns(upgraded):
    path, store = upgraded
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        cov = conn.execute("SELECT * FROM coverage_seconds ORDER BY ts").fetchall()
        assert [(r["compliant_s"], r["violating_s"], r["hands"]) for r in cov] == [
            (1.0, 0.5, 2),
            (0.0, 1.0, 1),
        ]
        assert "gloved_s" not in cov[0].keys()  # noqa: SIM118 (sqlite3.Row)
        hour = conn.execute("SELECT * FROM coverage_hourly").fetchone()
        assert (hour["watched_s"], hour["compliant_s"], hour["violating_s"]) == (3600, 1200, 600)
        rh = conn.execute("SELECT * FROM results_hourly").fetchone()
        assert (rh["frames"], rh["compliant_n"], rh["violating_n"]) == (40, 30, 10)
        res = conn.execute("SELECT * FROM results").fetchone()
        # old rows were judged by class: protected/violation become compliant/violating
        assert (res["protected"], res["violation"], res["compliant"], res["violating"]) == (
            1,
            2,
            1,
            2,
        )
        det = conn.execute("SELECT * FROM detections").fetchone()
        assert (det["class_name"], det["x2"], det["track_id"], det["status"]) == (
            "hand",
            3,
            7,
            None,
        )
    finally:
        conn.close()
    # the repositories read the old rows
    ev = store.events.get(1)
    assert ev is not None and (ev.station, ev.severity, ev.review, ev.reviewed_by) == (
        "Saw 01",
        "critical",
        "confirmed",
        "ann",
    )
    assert ev.state == "closed" and ev.model_name is None
    sess = store.sessions.get(1)
    assert sess is not None and sess.status == "finished" and sess.pid is None
    assert store.stations.latest("Saw 01").author == "bob"
    active = store.registry.active()
    assert active is not None and str(active.path) == "/models/a.pt"
    assert store.users.all() == [] and store.audit.recent() == []


def test_history_reads_upgraded_figures(upgraded):
    from datetime import date

    _, store = upgraded
    figures = store.history.grouped(
        HistoryFilter(date(2025, 12, 1), date(2026, 1, 31)), key_station
    )
    saw = figures[("Saw 01",)]
    assert (saw.watched_s, saw.compliant_s, saw.violating_s) == (3600, 1200, 600)
    assert (saw.frames, saw.compliant_n, saw.violating_n) == (41, 31, 12)  # roll-up + raw
    assert (saw.episodes, saw.critical) == (1, 1)


def test_upgraded_schema_matches_the_metadata(upgraded):
    path, _ = upgraded
    _assert_matches_metadata(path)


def test_new_store_schema_matches_the_metadata(store, gw_home):
    _assert_matches_metadata(gw_home / "glovewatch.sqlite")


def test_every_step_upgrades_an_empty_store(tmp_path):
    """A store left at any released version upgrades (every script runs on its own)."""
    from core.storage.migrations import MIGRATIONS, SCHEMA_VERSION, migrate_sqlite

    for start in range(SCHEMA_VERSION):
        conn = sqlite3.connect(tmp_path / f"v{start}.sqlite", isolation_level=None)
        for version, script in enumerate(MIGRATIONS[:start], 1):
            conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")
        assert migrate_sqlite(conn) == SCHEMA_VERSION
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        conn.close()
    _assert_matches_metadata(tmp_path / "v0.sqlite")


def test_schema_check_notices_a_difference(tmp_path):
    """The comparison itself fails when the store lacks a column the metadata has."""
    path = tmp_path / "old.sqlite"
    _old_store(path)
    with pytest.raises(AssertionError):
        _assert_matches_metadata(path)


def test_newer_store_is_refused_untouched(tmp_path):
    from core.storage.migrations import SCHEMA_VERSION

    path = tmp_path / "new.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE future (x)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this GloveWatch") as err:
        open_store(str(path))
    assert "\n" not in str(err.value)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["future"]
    conn.close()
