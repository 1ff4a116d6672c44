"""Station rules: zones, polarity, allowed glove classes, severities and frame verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import RuleError
from core.events.rules import (
    Polarity,
    Severity,
    StationRule,
    Verdict,
    Zone,
    draw_zones,
    parse_zones,
    points_in_polygon,
)
from tests.events.scenes import dets, hand

SQUARE = ((0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75))
SHAPE = (100, 100)
CENTRE = (40, 40, 60, 60)  # centre (50, 50): inside SQUARE
CORNER = (0, 0, 10, 10)  # centre (5, 5): outside


def test_points_in_polygon_inside_outside_edge_and_concave():
    pts = np.array([[0.5, 0.5], [0.1, 0.5], [0.25, 0.5]])
    assert points_in_polygon(pts, SQUARE).tolist() == [True, False, True]  # edge is inside
    l_shape = ((0, 0), (1, 0), (1, 0.5), (0.5, 0.5), (0.5, 1), (0, 1))
    assert points_in_polygon(np.array([[0.25, 0.75], [0.75, 0.75]]), l_shape).tolist() == [
        True,
        False,
    ]
    assert Zone("blade", SQUARE).contains(0.5, 0.5)
    assert not Zone("blade", SQUARE).contains(0.9, 0.9)


def test_parse_zones_and_clear_errors():
    zones = parse_zones("blade: 0.4,0.3 0.6,0.3 0.6,0.7\n\n table : 0,0 1,0 1,1 0,1")
    assert [z.name for z in zones] == ["blade", "table"]
    assert zones[0].points[1] == (0.6, 0.3)
    assert parse_zones(zones[0].to_text())[0] == zones[0]
    with pytest.raises(RuleError, match="at least 3 points"):
        parse_zones("blade: 0.1,0.1 0.2,0.2")
    with pytest.raises(RuleError, match=r"outside 0\.\.1"):
        parse_zones("blade: 10,10 20,10 20,20")
    with pytest.raises(RuleError, match="name: x,y"):
        parse_zones("0.1,0.1 0.2,0.2 0.3,0.3")
    with pytest.raises(RuleError, match="not a point"):
        parse_zones("blade: 0.1;0.1 0.2,0.2 0.3,0.3")
    with pytest.raises(RuleError, match="unique"):
        parse_zones("a: 0,0 1,0 1,1\na: 0,0 1,0 1,1")
    with pytest.raises(RuleError, match="needs a name"):
        Zone(" ", SQUARE)


def test_gloves_required_bare_hand_warning_outside_critical_inside_zone():
    rule = StationRule("Saw", zones=(Zone("blade", SQUARE),))
    j = rule.judge(
        dets(
            hand("hand", CENTRE), hand("hand", CORNER), hand("glove", CENTRE), hand("head", CORNER)
        ),
        SHAPE,
    )
    assert j.status.tolist() == ["violating", "violating", "compliant", "context"]
    assert j.severity[0] == Severity.CRITICAL and j.zone[0] == "blade"
    assert j.severity[1] == Severity.WARNING and j.zone[1] is None
    assert j.reason[0] == "bare hand (hand)" and j.reason[2] is None
    assert (j.compliant, j.violating) == (1, 2)


def test_allowed_classes_make_other_gloves_violations():
    saw = StationRule("Saw", allowed=("glove_steel",))
    j = saw.judge(dets(hand("glove_steel", CENTRE), hand("glove", CORNER)), SHAPE)
    assert j.status.tolist() == ["compliant", "violating"]
    assert "not allowed" in j.reason[1]
    assert j.verdict is Verdict.VIOLATION
    assert "only glove_steel" in saw.describe()


def test_no_gloves_polarity_flags_gloves_and_accepts_bare_hands():
    lathe = StationRule("Lathe", polarity=Polarity.NO_GLOVES, zones=(Zone("chuck", SQUARE),))
    j = lathe.judge(
        dets(hand("hand", CORNER), hand("glove", CENTRE), hand("glove_steel", CORNER)), SHAPE
    )
    assert j.status.tolist() == ["compliant", "violating", "violating"]
    assert j.severity.tolist()[1:] == ["critical", "warning"]
    assert "no-gloves station" in j.reason[1]
    assert "no gloves" in lathe.describe() and "chuck" in lathe.describe()


def test_frame_verdicts_compliant_violation_no_hands():
    rule = StationRule("S")
    assert (
        rule.judge(dets(hand("glove", CENTRE), hand("head", CORNER)), SHAPE).verdict
        is Verdict.COMPLIANT
    )
    assert (
        rule.judge(dets(hand("glove", CENTRE), hand("hand", CORNER)), SHAPE).verdict
        is Verdict.VIOLATION
    )
    assert rule.judge(dets(hand("head", CORNER)), SHAPE).verdict is Verdict.NO_HANDS
    assert rule.judge(dets(), SHAPE).verdict is Verdict.NO_HANDS
    lathe = StationRule("L", polarity=Polarity.NO_GLOVES)
    assert lathe.judge(dets(hand("hand", CENTRE)), SHAPE).verdict is Verdict.COMPLIANT


def test_rule_json_round_trip_and_bad_tiles():
    rule = StationRule(
        "Saw", allowed=("glove_steel",), zones=parse_zones("b: 0,0 1,0 1,1"), tiles="320:0.25"
    )
    back = StationRule.from_json("Saw", 4, rule.to_json())
    assert back.allowed == rule.allowed and back.zones == rule.zones
    assert back.tiles == "320:0.25" and back.version == 4 and back.tile_spec is not None
    with pytest.raises(RuleError):
        StationRule("Saw", tiles="not tiles")


def test_draw_zones_outlines_the_zone():
    img = np.zeros((100, 100, 3), np.uint8)
    out = draw_zones(img, StationRule("S", zones=(Zone("blade", SQUARE),)))
    assert img.sum() == 0  # the input is left alone
    assert tuple(out[50, 25]) == (0, 140, 255)  # the zone's left edge
