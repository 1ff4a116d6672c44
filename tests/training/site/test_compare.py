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


def test_a_comparison_has_a_row_per_data_set_it_was_scored_on():
    class Score:
        def __init__(self, m: float, images: int):
            self.map50, self.images = m, images

    base = (Score(0.8123, 268), Score(0.85, 268))
    cmp = site.StationComparison("Saw 8", None, base, Path("x.pt"))  # type: ignore[arg-type]
    assert cmp.rows() == [site.ScoreRow("base test split", 268, 0.812, 0.85)]
    held = (Score(0.4, 12), Score(0.2, 12))
    cmp = site.StationComparison("Saw 8", held, base, Path("x.pt"))  # type: ignore[arg-type]
    assert [r.scored_on for r in cmp.rows()] == [
        "held-out frames of this station",
        "base test split",
    ]


def test_station_runs_are_its_ended_fine_tunes_with_weights(store, tmp_path):
    def run(name: str, status: str, weights: bool) -> int:
        rid = store.runs.create(
            name, "d", "m.pt", "cpu", None, lambda i: str(tmp_path / f"r{i}"), lambda f: {}
        )
        store.runs.set(rid, status=status)
        if weights:
            best = tmp_path / f"r{rid}" / "train" / "weights" / "best.pt"
            best.parent.mkdir(parents=True)
            best.write_bytes(b"w")
        return rid

    prefix = site.run_prefix("Saw 12")
    done = run(f"{prefix}0101-1", "finished", True)
    run(f"{prefix}0101-2", "finished", False)  # no weights
    run(f"{prefix}0101-3", "running", True)  # still training
    run(f"{site.run_prefix('Saw 13')}0101-4", "finished", True)  # another station
    run("plant-wide", "finished", True)
    assert [r.id for r in site.station_runs(store, "Saw 12")] == [done]
