"""Station rules: polygons, polarity, allowed classes, versioning in the real store."""

from __future__ import annotations

import pytest

from core.compliance import Role
from core.detector import Detection
from core.stations import (DEFAULT_STATION, Polarity, RuleError, Severity, StationRule, Zone,
                           current_rule, delete_station, list_stations, parse_zones,
                           point_in_polygon, rule_history, save_rule)

SQUARE = ((0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75))


def det(role: Role, name: str, box=(40, 40, 60, 60), conf=0.9, track=None) -> Detection:
    return Detection(0 if role is Role.PROTECTED else 1, name, role, conf, box, None, track)


def test_point_in_polygon_inside_outside_edge_and_concave():
    assert point_in_polygon(0.5, 0.5, SQUARE)
    assert not point_in_polygon(0.1, 0.5, SQUARE)
    assert point_in_polygon(0.25, 0.5, SQUARE)  # on an edge
    l_shape = ((0, 0), (1, 0), (1, 0.5), (0.5, 0.5), (0.5, 1), (0, 1))
    assert point_in_polygon(0.25, 0.75, l_shape)
    assert not point_in_polygon(0.75, 0.75, l_shape)


def test_parse_zones_and_clear_errors():
    zones = parse_zones("blade: 0.4,0.3 0.6,0.3 0.6,0.7\n\n table : 0,0 1,0 1,1 0,1")
    assert [z.name for z in zones] == ["blade", "table"]
    assert zones[0].points[1] == (0.6, 0.3)
    with pytest.raises(RuleError, match="at least 3 points"):
        parse_zones("blade: 0.1,0.1 0.2,0.2")
    with pytest.raises(RuleError, match="outside 0..1"):
        parse_zones("blade: 10,10 20,10 20,20")
    with pytest.raises(RuleError, match="name: x,y"):
        parse_zones("0.1,0.1 0.2,0.2 0.3,0.3")
    with pytest.raises(RuleError, match="not a point"):
        parse_zones("blade: 0.1;0.1 0.2,0.2 0.3,0.3")
    with pytest.raises(RuleError, match="unique"):
        parse_zones("a: 0,0 1,0 1,1\na: 0,0 1,0 1,1")


def test_gloves_required_bare_hand_warning_outside_critical_inside_zone():
    rule = StationRule("Saw", zones=(Zone("blade", SQUARE),))
    shape = (100, 100)
    inside = rule.judge(det(Role.VIOLATION, "hand"), shape)
    assert inside.severity is Severity.CRITICAL and inside.zone == "blade"
    outside = rule.judge(det(Role.VIOLATION, "hand", box=(0, 0, 10, 10)), shape)
    assert outside.severity is Severity.WARNING and outside.zone is None
    assert rule.judge(det(Role.PROTECTED, "glove"), shape) is None


def test_allowed_classes_and_no_gloves_polarity():
    shape = (100, 100)
    saw = StationRule("Saw", allowed=("glove_steel",))
    assert saw.judge(det(Role.PROTECTED, "glove_steel"), shape) is None
    off = saw.judge(det(Role.PROTECTED, "glove_blue"), shape)
    assert off is not None and "not allowed" in off.reason
    lathe = StationRule("Lathe", polarity=Polarity.NO_GLOVES)
    assert lathe.judge(det(Role.VIOLATION, "hand"), shape) is None
    assert lathe.judge(det(Role.PROTECTED, "glove"), shape).severity is Severity.WARNING


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
    delete_station(store, "Saw")
    assert list_stations(store) == [DEFAULT_STATION]
    assert current_rule(store, "Saw").version == 2  # history kept for the audit trail
    with pytest.raises(RuleError):
        save_rule(store, StationRule("  "))
