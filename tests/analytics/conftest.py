"""A recorded shift at a saw: real recorder, real store, real evidence images."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import pytest

from core.events.rules import StationRule, Zone
from core.events.stations import current_rule, save_rule
from core.media import read_image
from core.storage import Store
from tests.events.scenes import dets, every, hand, record

SAW_DAY = date(2026, 1, 5)  # a Monday
BLADE = Zone("blade", ((0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)))
GLOVE_BOX = (40.0, 420.0, 160.0, 540.0)
BARE_LEFT = (60.0, 80.0, 180.0, 200.0)  # outside the blade zone
BARE_RIGHT = (420.0, 80.0, 540.0, 200.0)  # inside it


@dataclass(frozen=True)
class Recorded:
    """What the saw recording put in the store (figures are exact by construction)."""

    store: Store
    station: str
    day: date
    compliant_s: float  # 12 s of a compliant glove
    violating_s: float  # two bare-hand episodes of 2.2 hand-seconds each
    episode_s: float  # each episode lasts 2 s (first to last sighting)


def record_saw(
    store: Store,
    image_path,
    station: str = "Saw 01",
    started: datetime = datetime(2026, 1, 5, 10, 0, 0),
    source: str = "camera 1",
):
    """A gloved hand for 12 s with two bare-hand episodes: 2-4 s (warning) and 8-10 s (in the
    blade zone: critical)."""
    if current_rule(store, station).version == 0:
        save_rule(store, StationRule(station, zones=(BLADE,)), "ann")
    rule = current_rule(store, station)
    glove = hand("glove", GLOVE_BOX, 0.9, 2)
    script = (
        every(0.2, 0, 1.8, dets(glove))
        + every(0.2, 2.0, 4.0, dets(glove, hand("hand", BARE_LEFT, 0.8, 1)))
        + every(0.2, 4.2, 7.8, dets(glove))
        + every(0.2, 8.0, 10.0, dets(glove, hand("hand", BARE_RIGHT, 0.85, 3)))
        + every(0.2, 10.2, 12.0, dets(glove))
    )
    return record(store, rule, script, read_image(image_path), started, source=source)


@pytest.fixture
def saw(store, bare_images) -> Recorded:
    record_saw(store, bare_images[0])
    return Recorded(store, "Saw 01", SAW_DAY, 12.0, 4.4, 2.0)
