"""The store's tables as SQLAlchemy Core metadata: what queries are written against.

This is the schema :mod:`core.storage.migrations` arrives at on SQLite (a test compares them
column by column). A backend without that history (PostgreSQL) is created from this metadata
directly, at the current version. Timestamps are local plant time as ISO text
``YYYY-MM-DD HH:MM:SS``, so that every backend can group by day and hour with ``substr``; text
compares byte by byte on every backend (``COLLATE "C"`` on PostgreSQL, see the end).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, MetaData, Table, Text, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateColumn

metadata = MetaData()


def _pk() -> Column[int]:
    return Column("id", Integer, primary_key=True)


sessions = Table(
    "sessions",
    metadata,
    _pk(),
    Column("kind", Text, nullable=False),  # batch | live | stream | file
    Column("source", Text, nullable=False),
    Column("station", Text, nullable=False),
    Column("model_path", Text, nullable=False),
    Column("model_hash", Text, nullable=False),
    Column("conf", Float, nullable=False),
    Column("iou", Float, nullable=False),
    Column("imgsz", Integer, nullable=False),
    Column("params_json", Text, nullable=False, server_default=text("'{}'")),
    Column("started_at", Text, nullable=False),
    Column("ended_at", Text),
    Column("status", Text, nullable=False, server_default=text("'running'")),
    Column("pid", Integer),
    Column("host", Text),
    Column("heartbeat_at", Text),
    Column("started_by", Text),
    Index("sessions_status", "status"),
)

results = Table(
    "results",
    metadata,
    _pk(),
    Column("session_id", Integer, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("source", Text, nullable=False),
    Column("frame", Integer, nullable=False, server_default=text("0")),
    Column("ts", Text, nullable=False),
    Column("verdict", Text),
    Column("protected", Integer, nullable=False, server_default=text("0")),
    Column("violation", Integer, nullable=False, server_default=text("0")),
    Column("context", Integer, nullable=False, server_default=text("0")),
    Column("annotated_path", Text),
    Column("error", Text),
    Column("compliant", Integer, nullable=False, server_default=text("0")),
    Column("violating", Integer, nullable=False, server_default=text("0")),
    Index("results_session", "session_id"),
    Index("results_ts", "ts"),
)

detections = Table(
    "detections",
    metadata,
    _pk(),
    Column("result_id", Integer, ForeignKey("results.id", ondelete="CASCADE"), nullable=False),
    Column("class_id", Integer, nullable=False),
    Column("class_name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("x1", Float, nullable=False),
    Column("y1", Float, nullable=False),
    Column("x2", Float, nullable=False),
    Column("y2", Float, nullable=False),
    Column("track_id", Integer),
    Column("status", Text),  # compliant | violating | context, by the station rule
    Index("detections_result", "result_id"),
)

events = Table(
    "events",
    metadata,
    _pk(),
    Column("session_id", Integer, ForeignKey("sessions.id", ondelete="SET NULL")),
    Column("station", Text, nullable=False),
    Column("source", Text),
    Column("frame", Integer),
    Column("started_at", Text, nullable=False),
    Column("ended_at", Text),
    Column("duration_s", Float, nullable=False, server_default=text("0")),
    Column("class_name", Text),
    Column("peak_conf", Float),
    Column("severity", Text, nullable=False, server_default=text("'warning'")),
    Column("evidence_path", Text),
    Column("model_hash", Text),
    Column("track_id", Integer),
    Column("zone", Text),
    Column("rule_version", Integer),
    Column("thresholds_json", Text, nullable=False, server_default=text("'{}'")),
    Column("crop_path", Text),
    Column("state", Text, nullable=False, server_default=text("'closed'")),  # open | closed
    Column("review", Text, nullable=False, server_default=text("'unreviewed'")),
    Column("review_comment", Text),
    Column("reviewed_by", Text),
    Column("reviewed_at", Text),
    Column("evidence_removed_at", Text),
    Column("model_name", Text),
    Column("reason", Text),
    Column("event_key", Text),  # unique per episode across processes (idempotent writes)
    Index("events_station_time", "station", "started_at"),
    Index("events_started", "started_at"),
    Index("events_session", "session_id"),
    Index(
        "events_history", "started_at", "station", "review", "severity", "duration_s", "class_name"
    ),
    Index("events_state", "state"),
    Index("events_key", "event_key", unique=True),
)

coverage_seconds = Table(
    "coverage_seconds",
    metadata,
    Column("station", Text, nullable=False),
    Column("session_id", Integer),
    Column("ts", Text, nullable=False),
    Column("hands", Integer, nullable=False, server_default=text("0")),
    Column("compliant_s", Float, nullable=False, server_default=text("0")),
    Column("violating_s", Float, nullable=False, server_default=text("0")),
    Index("coverage_seconds_ts", "ts"),
)

coverage_hourly = Table(
    "coverage_hourly",
    metadata,
    Column("station", Text, primary_key=True),
    Column("hour", Text, primary_key=True),  # 'YYYY-MM-DD HH:00:00'
    Column("watched_s", Float, nullable=False, server_default=text("0")),
    Column("hand_s", Float, nullable=False, server_default=text("0")),
    Column("compliant_s", Float, nullable=False, server_default=text("0")),
    Column("violating_s", Float, nullable=False, server_default=text("0")),
    Index("coverage_hourly_hour", "hour"),
    Index("coverage_hourly_cover", "hour", "station", "watched_s", "compliant_s", "violating_s"),
)

coverage_daily = Table(
    "coverage_daily",
    metadata,
    Column("station", Text, primary_key=True),
    Column("day", Text, primary_key=True),  # 'YYYY-MM-DD 00:00:00'
    Column("watched_s", Float, nullable=False, server_default=text("0")),
    Column("hand_s", Float, nullable=False, server_default=text("0")),
    Column("compliant_s", Float, nullable=False, server_default=text("0")),
    Column("violating_s", Float, nullable=False, server_default=text("0")),
    Index("coverage_daily_day", "day"),
)

stations = Table(
    "stations",
    metadata,
    Column("name", Text, primary_key=True),
    Column("created_at", Text, nullable=False),
    Column("deleted_at", Text),
)

station_rules = Table(
    "station_rules",
    metadata,
    Column("station", Text, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("rule_json", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("author", Text),
)

datasets = Table(
    "datasets",
    metadata,
    _pk(),
    Column("name", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("task", Text, nullable=False),
    Column("names_json", Text, nullable=False),
    Column("report_json", Text, nullable=False, server_default=text("'{}'")),
    Column("created_at", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    _pk(),
    Column("name", Text, nullable=False),
    Column("dataset", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("args_json", Text, nullable=False),
    Column("device", Text, nullable=False, server_default=text("'cpu'")),
    Column("status", Text, nullable=False),  # queued | running | finished | failed | stopped
    Column("pid", Integer),
    Column("run_dir", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("started_at", Text),
    Column("ended_at", Text),
    Column("message", Text),
    Column("best_json", Text, nullable=False, server_default=text("'{}'")),
)

model_registry = Table(
    "model_registry",
    metadata,
    _pk(),
    Column("path", Text, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("run_id", Integer, ForeignKey("runs.id")),
    Column("dataset", Text),
    Column("roles_json", Text, nullable=False, server_default=text("'{}'")),
    Column("scores_json", Text, nullable=False, server_default=text("'{}'")),
    Column("promoted_by", Text, nullable=False),
    Column("promoted_at", Text, nullable=False),
    Column("active", Integer, nullable=False, server_default=text("0")),
    Column("station", Text),  # None: the plant-wide model
)

event_reviews = Table(
    "event_reviews",
    metadata,
    _pk(),
    Column("event_id", Integer, ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    Column("review", Text, nullable=False),
    Column("comment", Text),
    Column("reviewed_by", Text),
    Column("reviewed_at", Text, nullable=False),
    Index("event_reviews_event", "event_id"),
)

results_hourly = Table(
    "results_hourly",
    metadata,
    Column("station", Text, primary_key=True),
    Column("hour", Text, primary_key=True),
    Column("frames", Integer, nullable=False, server_default=text("0")),
    Column("compliant_n", Integer, nullable=False, server_default=text("0")),
    Column("violating_n", Integer, nullable=False, server_default=text("0")),
    Index("results_hourly_hour", "hour"),
)

retention_runs = Table(
    "retention_runs",
    metadata,
    _pk(),
    Column("ran_at", Text, nullable=False),
    Column("days", Integer, nullable=False),
    Column("cutoff", Text, nullable=False),
    Column("report_json", Text, nullable=False),
)

users = Table(
    "users",
    metadata,
    _pk(),
    Column("name", Text, nullable=False, unique=True),
    Column("password_hash", Text),
    Column("role", Text, nullable=False),  # viewer | operator | engineer | admin
    Column("disabled", Integer, nullable=False, server_default=text("0")),
    Column("failed_logins", Integer, nullable=False, server_default=text("0")),
    Column("locked_until", Text),
    Column("created_at", Text, nullable=False),
    Column("last_login_at", Text),
)

audit_log = Table(
    "audit_log",
    metadata,
    _pk(),
    Column("at", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text),
    Column("details_json", Text, nullable=False, server_default=text("'{}'")),
    Index("audit_log_at", "at"),
)

site_frames = Table(
    "site_frames",
    metadata,
    _pk(),
    Column("station", Text, nullable=False),
    Column("file", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("captured_at", Text, nullable=False),
    Column("phash", Text, nullable=False),
    Column("uncertainty", Float, nullable=False, server_default=text("0")),
    Column("block", Integer, nullable=False),
    Column("split", Text, nullable=False),
    Column("status", Text, nullable=False, server_default=text("'new'")),
    Column("boxes_json", Text, nullable=False, server_default=text("'[]'")),
    Column("prelabel_model", Text),
    Column("updated_at", Text),
    Column("updated_by", Text),
    Index("site_frames_station", "station", "status"),
)

label_changes = Table(
    "label_changes",
    metadata,
    _pk(),
    Column("frame_id", Integer, ForeignKey("site_frames.id", ondelete="CASCADE"), nullable=False),
    Column("at", Text, nullable=False),
    Column("by", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("boxes_json", Text, nullable=False),
    Index("label_changes_frame", "frame_id"),
)

ingested = Table(
    "ingested",
    metadata,
    Column("id", Text, primary_key=True),  # a message applied once
    Column("at", Text, nullable=False),
)

workers = Table(
    "workers",
    metadata,
    Column("name", Text, primary_key=True),
    Column("host", Text),
    Column("status", Text, nullable=False),
    Column("started_at", Text),
    Column("heartbeat_at", Text),
    Column("details_json", Text, nullable=False, server_default=text("'{}'")),
)

cameras = Table(
    "cameras",
    metadata,
    Column("name", Text, primary_key=True),
    Column("worker", Text),
    Column("station", Text, nullable=False),
    Column("source", Text),
    Column("status", Text, nullable=False),
    Column("fps", Float, nullable=False, server_default=text("0")),
    Column("analysed", Integer, nullable=False, server_default=text("0")),
    Column("skipped", Integer, nullable=False, server_default=text("0")),
    Column("last_frame_at", Text),
    Column("heartbeat_at", Text),
    Column("message", Text),
)

worker_keys = Table(
    "worker_keys",
    metadata,
    Column("name", Text, primary_key=True),
    Column("generation", Integer, nullable=False),  # bumped by each new key (rotation)
    Column("fingerprint", Text, nullable=False),  # of the derived key, never the key
    Column("created_at", Text, nullable=False),
    Column("revoked_at", Text),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Text, primary_key=True),
    Column("at", Text, nullable=False),
    Column("worker", Text),  # as the topic names it (unverified when the signature failed)
    Column("topic", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("message_id", Text),
    Column("excerpt", Text),  # the payload's start, for the operator
    Index("dead_letters_at", "at"),
)

ingested_seconds = Table(
    "ingested_seconds",
    metadata,
    Column("session_id", Integer, primary_key=True, autoincrement=False),
    Column("ts", Text, primary_key=True),  # one coverage second credited to the session
    Index("ingested_seconds_ts", "ts"),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_hash", Text, primary_key=True),  # SHA-256 of the browser's token
    Column("user_name", Text, nullable=False),
    Column("role", Text, nullable=False),  # at sign-in: another role since ends it
    Column("created_at", Text, nullable=False),
    Column("last_seen_at", Text, nullable=False),
    Column("ended_at", Text),  # signed out, expired, or the account changed
    Index("web_sessions_user", "user_name"),
)


@compiles(CreateColumn, "postgresql")
def _bytewise_text(element: CreateColumn, compiler: Any, **kw: Any) -> str:
    """Text compares byte by byte on every backend: SQLite's default, and the "C" collation
    for this schema's text columns on PostgreSQL, whatever the database's locale. Timestamps
    and hour keys then sort and compare as on SQLite, names sort the same on both, and
    comparisons skip the locale's rules (faster). Only the table definitions say so: query
    parameters stay plain text and take the column's collation."""
    spec: str = compiler.visit_create_column(element, **kw)
    col = element.element
    if isinstance(col.type, Text) and col.table is not None and col.table.metadata is metadata:
        head = f"{compiler.preparer.format_column(col)} TEXT"
        if spec.startswith(head):
            spec = f'{head} COLLATE "C"{spec[len(head) :]}'
    return spec
