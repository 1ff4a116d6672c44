"""Stations and their versioned rules, kept in the store; every save is audited."""

from __future__ import annotations

from dataclasses import dataclass, replace

from core.config import DEFAULT_STATION, TRIAL_STATION
from core.errors import RuleError
from core.events.rules import StationRule
from core.storage import Store


def clean_name(name: str) -> str:
    """A station name as stored: trimmed, 1-80 characters."""
    name = name.strip()
    if not name:
        raise RuleError("A station needs a name.")
    if len(name) > 80:
        raise RuleError("Station names are at most 80 characters.")
    if name == TRIAL_STATION:
        raise RuleError(f"'{TRIAL_STATION}' is where trial runs are kept: choose another name.")
    return name


def save_rule(store: Store, rule: StationRule, author: str | None = None) -> StationRule:
    """Store ``rule`` as the station's next version (creating the station); returns it."""
    name = clean_name(rule.station)
    rec = store.stations.save_rule(name, replace(rule, station=name).to_json(), author)
    store.audit.add(
        author or "-", "station.rule", name, {"version": rec.version, "rule": rule.describe()}
    )
    return replace(rule, station=name, version=rec.version)


def current_rule(store: Store, station: str) -> StationRule:
    """Latest rule of ``station``; the default rule (version 0) if none was saved."""
    rec = store.stations.latest(station)
    if rec is None:
        return StationRule(station=station)
    return StationRule.from_json(station, rec.version, rec.rule_json)


@dataclass(frozen=True)
class RuleVersion:
    """One stored version of a station's rule, for the history table."""

    rule: StationRule
    created_at: str
    author: str | None


def rule_history(store: Store, station: str) -> list[RuleVersion]:
    """All versions of a station's rule, newest first."""
    return [
        RuleVersion(StationRule.from_json(station, r.version, r.rule_json), r.created_at, r.author)
        for r in store.stations.history(station)
    ]


def list_stations(store: Store) -> list[str]:
    """Names of stations not hidden, always including the default station first."""
    return [DEFAULT_STATION] + [n for n in store.stations.names() if n != DEFAULT_STATION]


def delete_station(store: Store, station: str, author: str | None = None) -> None:
    """Hide a station from the lists; its rules and events stay for the audit trail."""
    if store.stations.hide(station):
        store.audit.add(author or "-", "station.hide", station)
