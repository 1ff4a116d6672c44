from core.compliance import ClassRoles, Role, Verdict, default_role, judge


def test_default_roles_from_names():
    for n in ["glove", "Glove_Blue", "Glove_White", "glove_steel", "glove_steel_b"]:
        assert default_role(n) is Role.PROTECTED, n
    for n in ["hand", "no_glove", "bare_hand", "Bare-Hand"]:
        assert default_role(n) is Role.VIOLATION, n
    for n in ["head", "person", "forklift"]:
        assert default_role(n) is Role.CONTEXT, n


def test_overrides_and_verdicts():
    names = {0: "Glove_Blue", 1: "Glove_White", 2: "glove_steel", 3: "glove_steel_b",
             4: "hand", 5: "head"}
    roles = ClassRoles.from_names(names, {"head": "violation"})
    assert roles.role_of(5) is Role.VIOLATION
    assert roles.ids_with(Role.PROTECTED) == [0, 1, 2, 3]
    roles = ClassRoles.from_names(names)
    v = judge([0, 2, 5], roles)
    assert (v.verdict, v.protected, v.violation, v.context, v.hands) == (
        Verdict.COMPLIANT, 2, 0, 1, 2)
    assert judge([0, 4], roles).verdict is Verdict.VIOLATION
    assert judge([5], roles).verdict is Verdict.NO_HANDS
    assert judge([], roles).verdict is Verdict.NO_HANDS
    assert roles.as_dict()["hand"] == "violation"
