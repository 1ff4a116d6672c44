"""Schema history of the store: one script per version, append only, for every backend.

Each entry upgrades the schema by one version. On SQLite ``PRAGMA user_version`` records where
a store is, so an old store is upgraded in place without losing rows. Never edit a released
entry. :mod:`core.storage.schema` describes the schema these scripts arrive at (for queries and
for other database backends); a test checks that both agree.

Other backends (PostgreSQL) came later: a new store there is created from the metadata at the
current version, and the ``schema_version`` table records each version reached. Entries after
:data:`BASELINE` run on both backends, so they must be portable SQL: ``ALTER TABLE ... ADD
COLUMN``, ``CREATE [UNIQUE] INDEX``, ``CREATE TABLE`` without ``INTEGER PRIMARY KEY`` ids,
``UPDATE``; types ``TEXT``, ``INTEGER``, ``DOUBLE PRECISION``; statements separated by ``;``
and ``--`` comments without a ``;``. Where one text cannot serve both, give the PostgreSQL
text of that version in :data:`POSTGRES_STEPS`. Text columns a step adds get the "C"
collation on PostgreSQL afterwards, as the metadata's have.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    insert,
    inspect,
    select,
    text,
)

from core.errors import StoreError
from core.storage import schema

# Each entry upgrades the schema by one version. Append only; never edit a released entry.
MIGRATIONS: list[str] = [
    # 1: detection sessions, results, detections, events
    """
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,               -- batch | live | stream | file
        source TEXT NOT NULL,
        station TEXT NOT NULL,
        model_path TEXT NOT NULL,
        model_hash TEXT NOT NULL,
        conf REAL NOT NULL,
        iou REAL NOT NULL,
        imgsz INTEGER NOT NULL,
        params_json TEXT NOT NULL DEFAULT '{}',
        started_at TEXT NOT NULL,
        ended_at TEXT,
        status TEXT NOT NULL DEFAULT 'running'  -- running | finished | failed | interrupted
    );
    CREATE TABLE results (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        source TEXT NOT NULL,
        frame INTEGER NOT NULL DEFAULT 0,
        ts TEXT NOT NULL,
        verdict TEXT,
        protected INTEGER NOT NULL DEFAULT 0,
        violation INTEGER NOT NULL DEFAULT 0,
        context INTEGER NOT NULL DEFAULT 0,
        annotated_path TEXT,
        error TEXT
    );
    CREATE INDEX results_session ON results(session_id);
    CREATE INDEX results_ts ON results(ts);
    CREATE TABLE detections (
        id INTEGER PRIMARY KEY,
        result_id INTEGER NOT NULL REFERENCES results(id) ON DELETE CASCADE,
        class_id INTEGER NOT NULL,
        class_name TEXT NOT NULL,
        role TEXT NOT NULL,
        confidence REAL NOT NULL,
        x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL,
        track_id INTEGER
    );
    CREATE INDEX detections_result ON detections(result_id);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        session_id INTEGER REFERENCES sessions(id) ON DELETE SET NULL,
        station TEXT NOT NULL,
        source TEXT,
        frame INTEGER,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        duration_s REAL NOT NULL DEFAULT 0,
        class_name TEXT,
        peak_conf REAL,
        severity TEXT NOT NULL DEFAULT 'warning',   -- warning | critical
        evidence_path TEXT,
        model_hash TEXT
    );
    CREATE INDEX events_station_time ON events(station, started_at);
    """,
    # 2: episodes (track, zone, rule version, crop, thresholds, open/closed state) and review
    """
    ALTER TABLE events ADD COLUMN track_id INTEGER;
    ALTER TABLE events ADD COLUMN zone TEXT;
    ALTER TABLE events ADD COLUMN rule_version INTEGER;
    ALTER TABLE events ADD COLUMN thresholds_json TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE events ADD COLUMN crop_path TEXT;
    ALTER TABLE events ADD COLUMN state TEXT NOT NULL DEFAULT 'closed';  -- open | closed
    ALTER TABLE events ADD COLUMN review TEXT NOT NULL DEFAULT 'unreviewed';
    ALTER TABLE events ADD COLUMN review_comment TEXT;
    ALTER TABLE events ADD COLUMN reviewed_by TEXT;
    ALTER TABLE events ADD COLUMN reviewed_at TEXT;
    CREATE INDEX events_started ON events(started_at);
    CREATE INDEX events_session ON events(session_id);
    """,
    # 3: coverage: raw per-second rows plus an hourly roll-up that survives retention
    """
    CREATE TABLE coverage_seconds (
        station TEXT NOT NULL,
        session_id INTEGER,
        ts TEXT NOT NULL,
        hands INTEGER NOT NULL DEFAULT 0,
        gloved_s REAL NOT NULL DEFAULT 0,
        bare_s REAL NOT NULL DEFAULT 0
    );
    CREATE INDEX coverage_seconds_ts ON coverage_seconds(ts);
    CREATE TABLE coverage_hourly (
        station TEXT NOT NULL,
        hour TEXT NOT NULL,               -- 'YYYY-MM-DD HH:00:00'
        watched_s REAL NOT NULL DEFAULT 0,
        hand_s REAL NOT NULL DEFAULT 0,
        gloved_s REAL NOT NULL DEFAULT 0,
        bare_s REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (station, hour)
    ) WITHOUT ROWID;
    CREATE INDEX coverage_hourly_hour ON coverage_hourly(hour);
    """,
    # 4: stations and versioned glove rules / danger zones
    """
    CREATE TABLE stations (
        name TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        deleted_at TEXT
    );
    CREATE TABLE station_rules (
        station TEXT NOT NULL,
        version INTEGER NOT NULL,
        rule_json TEXT NOT NULL,          -- allowed classes, polarity, zones
        created_at TEXT NOT NULL,
        author TEXT,
        PRIMARY KEY (station, version)
    );
    """,
    # 5: data sets, training runs, model registry
    """
    CREATE TABLE datasets (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        path TEXT NOT NULL,
        task TEXT NOT NULL,
        names_json TEXT NOT NULL,
        report_json TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        dataset TEXT NOT NULL,
        model TEXT NOT NULL,
        args_json TEXT NOT NULL,
        device TEXT NOT NULL DEFAULT 'cpu',
        status TEXT NOT NULL,             -- queued | running | finished | failed | stopped
        pid INTEGER,
        run_dir TEXT NOT NULL,
        created_at TEXT NOT NULL,
        started_at TEXT,
        ended_at TEXT,
        message TEXT,
        best_json TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE model_registry (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        run_id INTEGER REFERENCES runs(id),
        dataset TEXT,
        roles_json TEXT NOT NULL DEFAULT '{}',
        scores_json TEXT NOT NULL DEFAULT '{}',
        promoted_by TEXT NOT NULL,
        promoted_at TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 6: history: review audit trail, roll-up of per-frame results that survives retention,
    # retention log, marker for evidence removed by retention
    """
    CREATE TABLE event_reviews (
        id INTEGER PRIMARY KEY,
        event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
        review TEXT NOT NULL,             -- unreviewed | confirmed | dismissed
        comment TEXT,
        reviewed_by TEXT,
        reviewed_at TEXT NOT NULL
    );
    CREATE INDEX event_reviews_event ON event_reviews(event_id);
    CREATE TABLE results_hourly (
        station TEXT NOT NULL,
        hour TEXT NOT NULL,               -- 'YYYY-MM-DD HH:00:00'
        frames INTEGER NOT NULL DEFAULT 0,
        gloved_n INTEGER NOT NULL DEFAULT 0,
        bare_n INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (station, hour)
    ) WITHOUT ROWID;
    CREATE INDEX results_hourly_hour ON results_hourly(hour);
    CREATE TABLE retention_runs (
        id INTEGER PRIMARY KEY,
        ran_at TEXT NOT NULL,
        days INTEGER NOT NULL,
        cutoff TEXT NOT NULL,
        report_json TEXT NOT NULL
    );
    ALTER TABLE events ADD COLUMN evidence_removed_at TEXT;
    -- covering indexes: History's aggregations read only the index, not the tables
    CREATE INDEX coverage_hourly_cover ON coverage_hourly(hour, station, watched_s, gloved_s,
                                                          bare_s);
    CREATE INDEX events_history ON events(started_at, station, review, severity, duration_s,
                                          class_name);
    """,
    # 7: the station rule judges everything: coverage and detection counts become compliant /
    # violating (by the rule) instead of gloved / bare (by class); sessions know their process
    # (crash recovery); episodes name the model that judged them; accounts and an audit log.
    # Old rows were judged by class, which was the same thing at "gloves required" stations.
    """
    ALTER TABLE coverage_seconds RENAME COLUMN gloved_s TO compliant_s;
    ALTER TABLE coverage_seconds RENAME COLUMN bare_s TO violating_s;
    ALTER TABLE coverage_hourly RENAME COLUMN gloved_s TO compliant_s;
    ALTER TABLE coverage_hourly RENAME COLUMN bare_s TO violating_s;
    ALTER TABLE results_hourly RENAME COLUMN gloved_n TO compliant_n;
    ALTER TABLE results_hourly RENAME COLUMN bare_n TO violating_n;
    ALTER TABLE results ADD COLUMN compliant INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE results ADD COLUMN violating INTEGER NOT NULL DEFAULT 0;
    UPDATE results SET compliant = protected, violating = violation;
    ALTER TABLE detections ADD COLUMN status TEXT;
    ALTER TABLE sessions ADD COLUMN pid INTEGER;
    ALTER TABLE sessions ADD COLUMN host TEXT;
    ALTER TABLE sessions ADD COLUMN heartbeat_at TEXT;
    ALTER TABLE sessions ADD COLUMN started_by TEXT;
    CREATE INDEX sessions_status ON sessions(status);
    ALTER TABLE events ADD COLUMN model_name TEXT;
    ALTER TABLE events ADD COLUMN reason TEXT;
    CREATE INDEX events_state ON events(state);
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        password_hash TEXT,
        role TEXT NOT NULL,               -- viewer | operator | engineer | admin
        disabled INTEGER NOT NULL DEFAULT 0,
        failed_logins INTEGER NOT NULL DEFAULT 0,
        locked_until TEXT,
        created_at TEXT NOT NULL,
        last_login_at TEXT
    );
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        details_json TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX audit_log_at ON audit_log(at);
    """,
    # 8: the on-site adaptation loop: frames collected per station, every label change, and
    # station-specific models in the registry.
    """
    CREATE TABLE site_frames (
        id INTEGER PRIMARY KEY,
        station TEXT NOT NULL,
        file TEXT NOT NULL,               -- image path relative to the data folder
        source TEXT NOT NULL,             -- live | batch | video | episode | import
        captured_at TEXT NOT NULL,
        phash TEXT NOT NULL,              -- 64-bit difference hash, hex
        uncertainty REAL NOT NULL DEFAULT 0,
        block INTEGER NOT NULL,           -- time block of captured_at (hold-out unit)
        split TEXT NOT NULL,              -- train | holdout
        status TEXT NOT NULL DEFAULT 'new',  -- new | prelabelled | done
        boxes_json TEXT NOT NULL DEFAULT '[]',
        prelabel_model TEXT,
        updated_at TEXT,
        updated_by TEXT
    );
    CREATE INDEX site_frames_station ON site_frames(station, status);
    CREATE TABLE label_changes (
        id INTEGER PRIMARY KEY,
        frame_id INTEGER NOT NULL REFERENCES site_frames(id) ON DELETE CASCADE,
        at TEXT NOT NULL,
        by TEXT NOT NULL,
        action TEXT NOT NULL,             -- prelabel | edit | done | import
        boxes_json TEXT NOT NULL
    );
    CREATE INDEX label_changes_frame ON label_changes(frame_id);
    ALTER TABLE model_registry ADD COLUMN station TEXT;
    """,
    # 9: many cameras on shared infrastructure: episodes keyed so that a message applied
    # twice changes nothing, the ids of messages already applied, workers and cameras status.
    """
    ALTER TABLE events ADD COLUMN event_key TEXT;
    CREATE UNIQUE INDEX events_key ON events(event_key);
    CREATE TABLE ingested (
        id TEXT PRIMARY KEY,
        at TEXT NOT NULL
    );
    CREATE TABLE workers (
        name TEXT PRIMARY KEY,
        host TEXT,
        status TEXT NOT NULL,             -- online | offline
        started_at TEXT,
        heartbeat_at TEXT,
        details_json TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE cameras (
        name TEXT PRIMARY KEY,
        worker TEXT,
        station TEXT NOT NULL,
        source TEXT,
        status TEXT NOT NULL,             -- live | stalled | disconnected | stopped
        fps REAL NOT NULL DEFAULT 0,
        analysed INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0,
        last_frame_at TEXT,
        heartbeat_at TEXT,
        message TEXT
    );
    """,
    # 10: coverage summed per station and day (the hourly roll-up summed), so that History's
    # figures by day, week and station read 24 times fewer rows; kept equal to the hourly
    # roll-up by every write. The first step written for both backends.
    """
    CREATE TABLE coverage_daily (
        station TEXT NOT NULL,
        day TEXT NOT NULL,                -- 'YYYY-MM-DD 00:00:00'
        watched_s DOUBLE PRECISION NOT NULL DEFAULT 0,
        hand_s DOUBLE PRECISION NOT NULL DEFAULT 0,
        compliant_s DOUBLE PRECISION NOT NULL DEFAULT 0,
        violating_s DOUBLE PRECISION NOT NULL DEFAULT 0,
        PRIMARY KEY (station, day)
    );
    CREATE INDEX coverage_daily_day ON coverage_daily(day);
    INSERT INTO coverage_daily (station, day, watched_s, hand_s, compliant_s, violating_s)
        SELECT station, substr(hour, 1, 10) || ' 00:00:00', sum(watched_s), sum(hand_s),
               sum(compliant_s), sum(violating_s)
        FROM coverage_hourly GROUP BY station, substr(hour, 1, 10);
    """,
    # 11: the fleet's trust boundary: each worker's signing key (only its generation and a
    # fingerprint: the key is derived from the fleet secret, never stored), messages refused
    # with their reason (bounded), and the coverage seconds each session was credited with,
    # so a replay under a new message id counts once.
    """
    CREATE TABLE worker_keys (
        name TEXT PRIMARY KEY,
        generation INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    );
    CREATE TABLE dead_letters (
        id TEXT PRIMARY KEY,
        at TEXT NOT NULL,
        worker TEXT,
        topic TEXT NOT NULL,
        reason TEXT NOT NULL,
        message_id TEXT,
        excerpt TEXT
    );
    CREATE INDEX dead_letters_at ON dead_letters(at);
    CREATE TABLE ingested_seconds (
        session_id INTEGER NOT NULL,
        ts TEXT NOT NULL,
        PRIMARY KEY (session_id, ts)
    );
    CREATE INDEX ingested_seconds_ts ON ingested_seconds(ts);
    """,
    # 12: sign-ins that outlive a page reload: the hash of each browser's token, whose it is,
    # and when it was issued, last seen and ended (the token itself is only in the cookie).
    """
    CREATE TABLE web_sessions (
        token_hash TEXT PRIMARY KEY,
        user_name TEXT NOT NULL,
        role TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL,
        ended_at TEXT
    );
    CREATE INDEX web_sessions_user ON web_sessions(user_name);
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)

# The version a store created from the metadata (not by the scripts above) can start at: the
# first version that other backends were created at. Entries after it run on every backend.
BASELINE = 9

# PostgreSQL text of a version whose SQLite script cannot be written portably (none so far).
POSTGRES_STEPS: dict[int, str] = {}

# Kept apart from the schema's metadata: store copies and schema comparisons leave it out.
version_metadata = MetaData()
schema_version = Table(
    "schema_version",
    version_metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("migrated_at", Text, nullable=False),
)

# Any constant: the advisory lock that makes two processes opening a new store take turns.
_LOCK_KEY = 0x67_6C_6F_76  # "glov"


def migrate_sqlite(conn: sqlite3.Connection) -> int:
    """Bring a SQLite connection's store up to :data:`SCHEMA_VERSION`, one transaction a step.

    Raises :class:`StoreError` for a store written by a newer GloveWatch.
    """

    def check(version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"This store has schema version {version}, newer than this GloveWatch "
                f"({SCHEMA_VERSION}). Upgrade GloveWatch instead of opening it with an old one."
            )

    version = sqlite_version(conn)
    check(version)
    if version == SCHEMA_VERSION:
        return SCHEMA_VERSION
    # Take the write lock, then read the version again: two processes opening a new store at
    # once must not both migrate it. All steps are one transaction: a failure leaves the store
    # as it was.
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = sqlite_version(conn)
        check(version)
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in statements(MIGRATIONS[target - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION


def sqlite_version(conn: sqlite3.Connection) -> int:
    """The schema version a SQLite store records (0: a new, empty file)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def statements(script: str) -> list[str]:
    """The statements of a migration script, comments removed."""
    body = re.sub(r"--[^\n]*", "", script)
    return [part.strip() for part in body.split(";") if part.strip()]


def _stamp() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def recorded_version(conn: Connection) -> int | None:
    """The version a non-SQLite store records, or None when it has no version table."""
    if not inspect(conn).has_table(schema_version.name):
        return None
    return int(
        conn.execute(select(func.coalesce(func.max(schema_version.c.version), 0))).scalar_one()
    )


def _check_unversioned(conn: Connection, where: str) -> None:
    """Refuse GloveWatch tables without a version record unless they match the metadata
    (then they can only be the current schema, created before versions were recorded)."""
    insp = inspect(conn)
    for table in schema.metadata.sorted_tables:
        if not insp.has_table(table.name):
            continue
        have = {c["name"] for c in insp.get_columns(table.name)}
        missing = [c.name for c in table.columns if c.name not in have]
        if missing:
            raise StoreError(
                f"{where} holds a '{table.name}' table without {', '.join(missing)} and no "
                "schema version record: it is not a GloveWatch store of a known version. Use "
                "an empty database; nothing was changed."
            )


def migrate_other(engine: Engine, where: str) -> tuple[int, int]:
    """Bring a non-SQLite store (PostgreSQL) to :data:`SCHEMA_VERSION` in one transaction.

    A new database gets the metadata's tables at the current version; an older one runs the
    steps after its recorded version. Returns ``(version found, version now)``; 0 found means a
    new store. Raises :class:`StoreError` for a store written by a newer GloveWatch.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        found = recorded_version(conn)
        if found is None:
            existed = inspect(conn).has_table(schema.events.name)
            _check_unversioned(conn, where)
            schema.metadata.create_all(conn)
            version_metadata.create_all(conn)
            conn.execute(
                insert(schema_version).values(version=SCHEMA_VERSION, migrated_at=_stamp())
            )
            return (SCHEMA_VERSION if existed else 0), SCHEMA_VERSION
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"This store has schema version {found}, newer than this GloveWatch "
                f"({SCHEMA_VERSION}). Upgrade GloveWatch instead of opening it with an old one."
            )
        if found < BASELINE:
            raise StoreError(
                f"This store records schema version {found}, older than any "
                f"version this backend was created at ({BASELINE})."
            )
        for target in range(found + 1, SCHEMA_VERSION + 1):
            script = POSTGRES_STEPS.get(target, MIGRATIONS[target - 1])
            for statement in statements(script):
                conn.exec_driver_sql(statement)
            conn.execute(insert(schema_version).values(version=target, migrated_at=_stamp()))
        if found < SCHEMA_VERSION and conn.dialect.name == "postgresql":
            _bytewise_text(conn)
        return found, SCHEMA_VERSION


def _bytewise_text(conn: Connection) -> None:
    """Give text columns that a portable step added the "C" collation that the metadata's
    columns have on PostgreSQL (see :mod:`core.storage.schema`)."""
    rows = conn.execute(
        text(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND data_type = 'text' "
            "AND collation_name IS DISTINCT FROM 'C'"
        )
    ).all()
    for table, column in rows:
        if table in schema.metadata.tables:
            conn.exec_driver_sql(
                f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE text COLLATE "C"'
            )
