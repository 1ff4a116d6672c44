"""Stations and their versioned rules in the real store; every save is audited."""

from __future__ import annotations

import pytest

from core.config import DEFAULT_STATION
from core.errors import RuleError
from core.events.rules import Polarity, StationRule, parse_zones
from core.events.stations import (
    current_rule,
    delete_station,
    list_stations,
    rule_history,
    save_rule,
)


def test_rules_are_versioned_in_the_store(store):
    assert current_rule(store, "Saw").version == 0
    v1 = save_rule(store, StationRule("Saw", zones=parse_zones("blade: 0,0 1,0 1,1")), "ann")
    v2 = save_rule(store, StationRule("Saw", polarity=Polarity.NO_GLOVES), "bob")
    assert (v1.version, v2.version) == (1, 2)
    now = current_rule(store, "Saw")
    assert now.polarity is Polarity.NO_GLOVES and now.version == 2 and now.zones == ()
    hist = rule_history(store, "Saw")
    assert [h.rule.version for h in hist] == [2, 1]
    assert hist[1].rule.zones[0].name == "blade" and hist[1].author == "ann"
    assert list_stations(store) == [DEFAULT_STATION, "Saw"]


def test_hidden_station_keeps_its_rules_and_comes_back_on_save(store):
    save_rule(store, StationRule("Saw", allowed=("glove_steel",)), "ann")
    delete_station(store, "Saw", "ann")
    assert list_stations(store) == [DEFAULT_STATION]
    assert current_rule(store, "Saw").allowed == ("glove_steel",)  # kept for the audit trail
    save_rule(store, StationRule("Saw"), "bob")
    assert "Saw" in list_stations(store) and current_rule(store, "Saw").version == 2


def test_station_names_are_checked_and_trimmed(store):
    with pytest.raises(RuleError, match="needs a name"):
        save_rule(store, StationRule("  "))
    with pytest.raises(RuleError, match="80 characters"):
        save_rule(store, StationRule("x" * 81))
    saved = save_rule(store, StationRule("  Lathe 2 "))
    assert saved.station == "Lathe 2" and current_rule(store, "Lathe 2").version == 1


def test_every_rule_save_and_hide_is_audited(store):
    save_rule(store, StationRule("Saw", polarity=Polarity.NO_GLOVES), "ann")
    delete_station(store, "Saw", "bob")
    log = store.audit.recent()
    saved = next(a for a in log if a.action == "station.rule")
    assert saved.actor == "ann" and saved.target == "Saw" and saved.details["version"] == 1
    assert "no gloves" in saved.details["rule"]
    hidden = next(a for a in log if a.action == "station.hide")
    assert hidden.actor == "bob" and hidden.target == "Saw"
