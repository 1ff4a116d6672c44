"""The demo store: built once beside the plant's own store, never mixed into it."""

from __future__ import annotations

import pytest

from core.analytics import demo
from core.analytics import history as h
from core.storage import close_store


@pytest.fixture
def small_demo(gw_home, monkeypatch):
    """A small demo year (the sizes are not what is under test)."""
    monkeypatch.setattr(demo, "DEMO_STATIONS", 3)
    monkeypatch.setattr(demo, "DEMO_DAYS", 10)
    monkeypatch.setattr(demo, "DEMO_SECONDS_ROWS", 2_000)
    yield
    if demo.demo_path().exists():
        close_store(demo.open_store(str(demo.demo_path())))


def test_demo_store_is_built_once_in_its_own_folder(small_demo, gw_home, store):
    assert not demo.demo_path().exists()
    built, report = demo.demo_store()
    assert demo.demo_path() == gw_home / "demo" / "glovewatch.sqlite"
    assert demo.demo_path().is_file()
    assert report is not None and report.stations == 3 and report.days == 10
    assert report.coverage_seconds >= 2_000 and report.events > 0
    f = h.default_filter(built, days=10)
    figures = h.kpis(built, f).total
    assert figures.episodes > 0 and figures.compliance is not None
    again, second = demo.demo_store()
    assert second is None  # not rebuilt
    assert again.bulk.max_id("events") == built.bulk.max_id("events") == report.events
    assert h.kpis(again, f).total == figures
    # the plant's own store is untouched
    assert store.bulk.is_empty() and h.data_span(store).empty


def test_demo_episodes_carry_drawn_evidence(small_demo, gw_home, monkeypatch):
    from core.analytics.review import load_evidence, thumbnail_png

    monkeypatch.setattr(demo, "DEMO_EVIDENCE", 5)
    built, _ = demo.demo_store()
    span = h.data_span(built)
    every = h.episodes(built, h.HistoryFilter(span.first, span.last), limit=100_000)
    eps = every[:5]
    assert all(e.evidence_path and e.crop_path for e in eps)  # the newest ones
    assert all(str(gw_home / "demo" / "evidence") in e.evidence_path for e in eps)
    view = load_evidence(eps[0])
    assert view.image is not None and view.image.shape[:2] == (400, 640)
    assert "redacted" in view.message and thumbnail_png(eps[0]) is not None
    assert len(every) > 5 and not any(e.evidence_path for e in every[5:])  # only the newest
