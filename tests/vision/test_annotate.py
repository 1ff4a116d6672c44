"""Class colours as the pages show them."""

from __future__ import annotations

from core.vision.annotate import class_colour, class_hex


def test_a_class_colour_as_a_web_colour_is_the_same_colour():
    for name in ("glove", "hand", "head"):
        b, g, r = class_colour(name)
        assert class_hex(name) == f"#{r:02x}{g:02x}{b:02x}"
    assert class_hex("glove") != class_hex("hand")
