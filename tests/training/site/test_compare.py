"""Comparing and promoting per station."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import RegistryError
from core.training import site


def test_promote_station_refuses_a_large_base_drop_without_confirmation():
    class Score:
        def __init__(self, m: float):
            self.map50 = m

    cmp = site.StationComparison(
        "Saw 8",
        None,
        (Score(0.80), Score(0.85)),  # type: ignore[arg-type]
        Path("x.pt"),
    )
    assert cmp.base_drop == pytest.approx(0.05) and cmp.needs_confirmation
    with pytest.raises(RegistryError, match="confirm"):
        site.promote_station(None, "Saw 8", 1, cmp, by="ana")  # type: ignore[arg-type]
