"""Stations and the versions of their rules (the rule itself is JSON the events layer reads)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from core.storage import schema as t
from core.storage.database import Database, now
from core.storage.sanity import sane_name


@dataclass(frozen=True)
class RuleRecord:
    """One stored version of a station's rule."""

    station: str
    version: int
    rule_json: str
    created_at: str
    author: str | None


@dataclass(frozen=True)
class StationRecord:
    name: str
    deleted: bool


@dataclass(frozen=True)
class Erased:
    """What :meth:`StationRepo.erase_recordings` deleted, and the files it leaves to delete."""

    sessions: int
    results: int
    episodes: int
    files: tuple[str, ...]


class StationRepo:
    """Stations and their versioned rules."""

    def __init__(self, db: Database):
        self.db = db

    def save_rule(self, station: str, rule_json: str, author: str | None) -> RuleRecord:
        """Store the station's next rule version (creating or un-hiding the station)."""
        stamp = now()
        ins = (postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert)(t.stations)
        with self.db.write() as c:
            c.execute(
                ins.values(name=station, created_at=stamp).on_conflict_do_update(
                    index_elements=["name"], set_={"deleted_at": None}
                )
            )
            version = int(
                c.execute(
                    select(func.coalesce(func.max(t.station_rules.c.version), 0) + 1).where(
                        t.station_rules.c.station == station
                    )
                ).scalar_one()
            )
            c.execute(
                insert(t.station_rules).values(
                    station=station,
                    version=version,
                    rule_json=rule_json,
                    created_at=stamp,
                    author=author,
                )
            )
        return RuleRecord(station, version, rule_json, stamp, author)

    def latest(self, station: str) -> RuleRecord | None:
        r = t.station_rules
        with self.db.read() as c:
            row = c.execute(
                select(r).where(r.c.station == station).order_by(r.c.version.desc()).limit(1)
            ).first()
        return RuleRecord(*row) if row else None

    def version(self, station: str, version: int) -> RuleRecord | None:
        r = t.station_rules
        with self.db.read() as c:
            row = c.execute(select(r).where(r.c.station == station, r.c.version == version)).first()
        return RuleRecord(*row) if row else None

    def history(self, station: str) -> list[RuleRecord]:
        """All versions of a station's rule, newest first."""
        r = t.station_rules
        with self.db.read() as c:
            return [
                RuleRecord(*row)
                for row in c.execute(
                    select(r).where(r.c.station == station).order_by(r.c.version.desc())
                )
            ]

    def names(self) -> list[str]:
        """Stations not hidden, by name."""
        s = t.stations
        with self.db.read() as c:
            return [
                row[0]
                for row in c.execute(
                    select(s.c.name).where(s.c.deleted_at.is_(None)).order_by(s.c.name)
                )
            ]

    def ensure(self, names: list[str], deleted: dict[str, str] | None = None) -> None:
        """Register stations (demo data); ``deleted`` maps names to their deletion time."""
        ins = (postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert)(t.stations)
        with self.db.write() as c:
            c.execute(
                ins.on_conflict_do_nothing(index_elements=["name"]),
                [
                    {"name": n, "created_at": now(), "deleted_at": (deleted or {}).get(n)}
                    for n in names
                ],
            )

    def hide(self, station: str) -> bool:
        """Hide a station from the lists; its rules and events stay. False if unknown."""
        with self.db.write() as c:
            return bool(
                c.execute(
                    update(t.stations).where(t.stations.c.name == station).values(deleted_at=now())
                ).rowcount
            )

    def erase_recordings(self, station: str) -> Erased:
        """Delete every session, result, episode and coverage row recorded at ``station``
        (trial runs); returns what went and the files the caller should delete."""
        e, r, d, ss = t.events, t.results, t.detections, t.sessions
        sessions = select(ss.c.id).where(ss.c.station == station)
        with self.db.write() as c:
            files = [
                p
                for row in c.execute(
                    select(e.c.evidence_path, e.c.crop_path).where(e.c.station == station)
                )
                for p in row
                if p
            ]
            files += [
                row[0]
                for row in c.execute(
                    select(r.c.annotated_path).where(
                        r.c.session_id.in_(sessions), r.c.annotated_path.is_not(None)
                    )
                )
            ]
            c.execute(
                delete(t.event_reviews).where(
                    t.event_reviews.c.event_id.in_(select(e.c.id).where(e.c.station == station))
                )
            )
            episodes = c.execute(delete(e).where(e.c.station == station)).rowcount
            results_of = select(r.c.id).where(r.c.session_id.in_(sessions))
            c.execute(delete(d).where(d.c.result_id.in_(results_of)))
            results = c.execute(delete(r).where(r.c.session_id.in_(sessions))).rowcount
            rolled = (t.coverage_seconds, t.coverage_hourly, t.coverage_daily, t.results_hourly)
            for table in rolled:
                c.execute(delete(table).where(table.c.station == station))
            n_sessions = c.execute(delete(ss).where(ss.c.station == station)).rowcount
        return Erased(int(n_sessions or 0), int(results or 0), int(episodes or 0), tuple(files))

    def known(self) -> list[StationRecord]:
        """Every station with data or a registration; hidden ones flagged (their data stays)."""
        names: dict[str, bool] = {}
        with self.db.read() as c:
            for col in (
                t.coverage_daily.c.station,
                t.events.c.station,
                t.sessions.c.station,
                t.results_hourly.c.station,
            ):
                # a name no page can show (a 10 MiB one) is no station: History counts it
                for (name,) in c.execute(select(col).distinct().where(sane_name(col))):
                    names[name] = False
            for name, deleted_at in c.execute(select(t.stations.c.name, t.stations.c.deleted_at)):
                names[name] = deleted_at is not None
        return [StationRecord(n, d) for n, d in sorted(names.items())]
