"""SQLite event store: detection sessions, per-image/per-frame results, violation events,
coverage, stations and rules, data sets, training runs and the model registry.

One file (``Settings.db_path``), WAL mode so the live pipeline, the pages and the training
worker can read and write at once. The schema is versioned with ``PRAGMA user_version``;
:data:`MIGRATIONS` only ever grows, so an old store is upgraded in place without losing rows.
Timestamps are local plant time as ISO text (``YYYY-MM-DD HH:MM:SS``), which SQLite can group
by day and hour directly.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from core.config import ensure_home

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
]

SCHEMA_VERSION = len(MIGRATIONS)


def now() -> str:
    """Current local time as stored in the database."""
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def migrate(conn: sqlite3.Connection) -> int:
    """Bring ``conn`` up to :data:`SCHEMA_VERSION`; each step is one transaction."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"This store has schema version {version}, newer than this GloveWatch "
            f"({SCHEMA_VERSION}). Upgrade GloveWatch instead of opening it with an old one."
        )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        script = MIGRATIONS[target - 1]
        # executescript commits first; wrap in an explicit transaction so a failed step
        # leaves the store at the previous version.
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {target};\nCOMMIT;")
    return SCHEMA_VERSION


def connect(path: Path | str | None = None) -> sqlite3.Connection:
    """Open (and create or upgrade) the store. ``path`` defaults to the configured one."""
    if path is None:
        path = ensure_home().db_path
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    migrate(conn)
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def row_by_ref(conn: sqlite3.Connection, table: str, ref: int | str) -> sqlite3.Row | None:
    """A row of ``table`` (``runs``, ``datasets``) by id, or the newest one with that name."""
    if isinstance(ref, int) or str(ref).isdigit():
        return conn.execute(f"SELECT * FROM {table} WHERE id=?", (int(ref),)).fetchone()
    return conn.execute(f"SELECT * FROM {table} WHERE name=? ORDER BY id DESC LIMIT 1",
                        (ref,)).fetchone()


@dataclass(frozen=True)
class SessionInfo:
    """What a detection session ran with."""

    kind: str
    source: str
    station: str
    model_path: str
    model_hash: str
    conf: float
    iou: float
    imgsz: int
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DetectionRow:
    class_id: int
    class_name: str
    role: str
    confidence: float
    box: tuple[float, float, float, float]
    track_id: int | None = None


@dataclass(frozen=True)
class ResultRow:
    """One image or video frame of a session (``error`` set when it could not be read)."""

    source: str
    frame: int = 0
    verdict: str | None = None
    protected: int = 0
    violation: int = 0
    context: int = 0
    annotated_path: str | None = None
    error: str | None = None
    detections: Sequence[DetectionRow] = ()
    ts: str | None = None


@dataclass(frozen=True)
class EventRow:
    """A violation event (an episode for video/live, one image for photos)."""

    station: str
    started_at: str
    ended_at: str | None = None
    duration_s: float = 0.0
    session_id: int | None = None
    source: str | None = None
    frame: int | None = None
    class_name: str | None = None
    peak_conf: float | None = None
    severity: str = "warning"
    evidence_path: str | None = None
    crop_path: str | None = None
    model_hash: str | None = None
    track_id: int | None = None
    zone: str | None = None
    rule_version: int | None = None
    thresholds: dict = field(default_factory=dict)
    state: str = "closed"


def start_session(conn: sqlite3.Connection, info: SessionInfo) -> int:
    """Record the start of a detection session; returns its id."""
    cur = conn.execute(
        "INSERT INTO sessions (kind, source, station, model_path, model_hash, conf, iou, imgsz,"
        " params_json, started_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (info.kind, info.source, info.station, info.model_path, info.model_hash, info.conf,
         info.iou, info.imgsz, json.dumps(info.params), now()),
    )
    return int(cur.lastrowid)


def end_session(conn: sqlite3.Connection, session_id: int, status: str = "finished") -> None:
    conn.execute("UPDATE sessions SET ended_at=?, status=? WHERE id=?",
                 (now(), status, session_id))


def add_result(conn: sqlite3.Connection, session_id: int, row: ResultRow) -> int:
    """Store one image/frame result with its detections in one transaction."""
    with transaction(conn):
        cur = conn.execute(
            "INSERT INTO results (session_id, source, frame, ts, verdict, protected, violation,"
            " context, annotated_path, error) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (session_id, row.source, row.frame, row.ts or now(), row.verdict, row.protected,
             row.violation, row.context, row.annotated_path, row.error),
        )
        rid = int(cur.lastrowid)
        conn.executemany(
            "INSERT INTO detections (result_id, class_id, class_name, role, confidence,"
            " x1, y1, x2, y2, track_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [(rid, d.class_id, d.class_name, d.role, d.confidence, *d.box, d.track_id)
             for d in row.detections],
        )
    return rid


def add_event(conn: sqlite3.Connection, ev: EventRow) -> int:
    """Insert an event (open or closed); returns its id."""
    cur = conn.execute(
        "INSERT INTO events (session_id, station, source, frame, started_at, ended_at,"
        " duration_s, class_name, peak_conf, severity, evidence_path, crop_path, model_hash,"
        " track_id, zone, rule_version, thresholds_json, state)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (ev.session_id, ev.station, ev.source, ev.frame, ev.started_at, ev.ended_at,
         ev.duration_s, ev.class_name, ev.peak_conf, ev.severity, ev.evidence_path,
         ev.crop_path, ev.model_hash, ev.track_id, ev.zone, ev.rule_version,
         json.dumps(ev.thresholds), ev.state),
    )
    return int(cur.lastrowid)


@dataclass(frozen=True)
class DaySummary:
    """Figures for one calendar day, for the overview page."""

    day: str
    sessions: int
    images: int
    gloved: int
    bare: int
    events: int
    critical: int

    @property
    def compliance(self) -> float | None:
        """Gloved / all hand detections, or None when no hand was seen."""
        hands = self.gloved + self.bare
        return self.gloved / hands if hands else None


def day_summary(conn: sqlite3.Connection, day: str | None = None) -> DaySummary:
    """Counts of sessions, processed frames, hands and events on ``day`` (default today)."""
    day = day or now()[:10]
    lo, hi = f"{day} 00:00:00", f"{day} 23:59:59"
    s = conn.execute("SELECT COUNT(*) FROM sessions WHERE started_at BETWEEN ? AND ?",
                     (lo, hi)).fetchone()[0]
    r = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(protected),0), COALESCE(SUM(violation),0) FROM results"
        " WHERE ts BETWEEN ? AND ? AND error IS NULL", (lo, hi)).fetchone()
    e = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(severity='critical'),0) FROM events"
        " WHERE started_at BETWEEN ? AND ? AND review != 'dismissed'", (lo, hi)).fetchone()
    return DaySummary(day, s, r[0], r[1], r[2], e[0], e[1])
