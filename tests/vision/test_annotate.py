"""Class colours as the pages show them."""

from __future__ import annotations

from core.vision.annotate import STATUS_HEX, BoxStatus, class_colour, class_hex


def test_a_class_colour_as_a_web_colour_is_the_same_colour():
    for name in ("glove", "hand", "head"):
        b, g, r = class_colour(name)
        assert class_hex(name) == f"#{r:02x}{g:02x}{b:02x}"
    assert class_hex("glove") != class_hex("hand")
    # the legends' colours: a bare hand is drawn as violating, a glove as compliant
    assert class_hex("hand") == STATUS_HEX[BoxStatus.VIOLATING] == "#dc2828"
    assert class_hex("glove") == STATUS_HEX[BoxStatus.COMPLIANT]
