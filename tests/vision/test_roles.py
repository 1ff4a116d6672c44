"""Class roles: what each class of a model means for glove compliance."""

from __future__ import annotations

import pytest

from core.vision.annotate import STATUS_COLOURS, BoxStatus, class_colour
from core.vision.roles import ClassRoles, Role, default_role


@pytest.mark.parametrize(
    "name",
    ["glove", "Glove_Blue", "Glove_White", "glove_steel", "glove_steel_b", "gloves", "gloved_hand"],
)
def test_glove_names_are_protected(name):
    assert default_role(name) is Role.PROTECTED


@pytest.mark.parametrize(
    "name", ["hand", "no_glove", "bare_hand", "Bare-Hand", "no-glove", " HANDS "]
)
def test_bare_hand_names_are_violations(name):
    assert default_role(name) is Role.VIOLATION


@pytest.mark.parametrize("name", ["head", "person", "forklift", ""])
def test_other_names_are_context(name):
    assert default_role(name) is Role.CONTEXT


def test_overrides_win_over_names():
    names = {
        0: "Glove_Blue",
        1: "Glove_White",
        2: "glove_steel",
        3: "glove_steel_b",
        4: "hand",
        5: "head",
    }
    roles = ClassRoles.from_names(names, {"head": "violation", "hand": Role.CONTEXT})
    assert roles.role_of(5) is Role.VIOLATION and roles.role_of(4) is Role.CONTEXT
    assert roles.ids_with(Role.PROTECTED) == [0, 1, 2, 3]
    assert roles.names_with(Role.VIOLATION) == ["head"]
    assert roles.role_of(99) is Role.CONTEXT
    plain = ClassRoles.from_names(names)
    assert plain.as_dict() == {
        "Glove_Blue": "protected",
        "Glove_White": "protected",
        "glove_steel": "protected",
        "glove_steel_b": "protected",
        "hand": "violation",
        "head": "context",
    }


def test_unknown_role_in_override_is_refused():
    with pytest.raises(ValueError):
        ClassRoles.from_names({0: "glove"}, {"glove": "maybe"})


def test_class_colours_follow_the_legend():
    assert class_colour("glove") == STATUS_COLOURS[BoxStatus.COMPLIANT]
    assert class_colour("no_glove") == STATUS_COLOURS[BoxStatus.VIOLATING]
    assert class_colour("head") == STATUS_COLOURS[BoxStatus.CONTEXT]
