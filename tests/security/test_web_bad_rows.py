"""Pages that survive bad rows: timestamps like -0001-01-01, 9999-12-31 or 'not a time',
negative, infinite or NaN durations and a 10 MiB station name, written straight into a real
store (SQLite and PostgreSQL), are left out of every figure and counted on the page, never
raised; report ranges are clamped to the data held and refused beyond five years."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import openpyxl
import pytest

from core.analytics import history as h
from core.analytics import reading
from core.analytics.reports import episodes_csv, write_history_xlsx
from core.analytics.synth import generate
from core.storage import open_store
from core.storage.coverage import CoverageRow
from core.storage.database import now
from core.storage.events import EventRow
from tests.helpers import open_page
from tests.pages.support import plain, values

BAD_TIMES = ["-0001-01-01 00:00:00", "9999-12-31 23:59:59", "not a time", "", "2026-13-45 99:99"]
BAD_AMOUNTS = [-5.0, math.inf, -math.inf, math.nan]
HUGE = "X" * (10 * 1024 * 1024)


def _poison(store: Any, day: str, shown_confidence: bool = True) -> int:
    """Write every kind of bad row (at ``day`` where a row needs a good time); how many bad
    episodes the backend took (SQLite turns NaN into NULL, which its NOT NULL columns refuse).
    Coverage is rolled up per station and hour as it is written, so its rows are fewer.
    ``shown_confidence``: also episodes that are good but for the confidence they show (they
    count in the figures)."""
    episodes = 0

    def put(fn: Any, *args: Any) -> bool:
        try:
            fn(*args)
            return True
        except Exception:  # the database itself refused it: nothing stored
            return False

    for ts in BAD_TIMES:
        episodes += put(
            store.events.insert, EventRow(station="Saw 01", started_at=ts, duration_s=3.0)
        )
        put(store.coverage.write, "Saw 01", None, [CoverageRow(ts, 1.0, 1.0, 1, 1.0, 0.0)])
    for amount in BAD_AMOUNTS:
        ev = EventRow(
            station="Saw 01", started_at=f"{day} 08:00:00", duration_s=amount, peak_conf=amount
        )
        episodes += put(store.events.insert, ev)
        cov = CoverageRow(f"{day} 09:00:00", amount, 1.0, 1, amount, 0.0)
        put(store.coverage.write, "Saw 02", None, [cov])
    ev = EventRow(station=HUGE, started_at=f"{day} 10:00:00", duration_s=1.0)
    episodes += put(store.events.insert, ev)
    for conf in (math.inf, math.nan, -1.0) if shown_confidence else ():
        put(
            store.events.insert,
            EventRow(
                station="Saw 01", started_at=f"{day} 11:00:00", duration_s=2.0, peak_conf=conf
            ),
        )
    return episodes


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request, gw_home, monkeypatch):
    """The app's store on either backend (the pages open it too: GLOVEWATCH_DB_URL)."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        monkeypatch.setenv("GLOVEWATCH_DB_URL", url)
        return open_store(url)
    return open_store()


def test_bad_rows_change_no_figure_and_are_counted(any_store, tmp_path):
    store = any_store
    generate(store, stations=2, days=3, seconds_rows=300, seed=5)
    span = h.data_span(store)
    f = h.HistoryFilter(span.first, span.last)
    before = (h.kpis(store, f).total, h.count_episodes(store, f), h.stations(store))
    taken = _poison(store, span.last.isoformat(), shown_confidence=False)
    assert taken >= 9  # NaN is stored on PostgreSQL only
    assert h.data_span(store).first == span.first and h.data_span(store).last == span.last
    after = (h.kpis(store, f).total, h.count_episodes(store, f), h.stations(store))
    assert after == before
    assert all(math.isfinite(e.duration_s) and e.duration_s >= 0 for e in h.episodes(store, f))
    gone = reading.unreadable(store, f)
    # every bad episode but the one dated 2026-13-45, which sorts after the range asked for
    assert gone.tables["events"] == taken - 1 and gone.tables["coverage_hourly"] >= 2
    assert "could not be read" in gone.note
    workbook = openpyxl.load_workbook(write_history_xlsx(tmp_path / "r.xlsx", store, f))
    assert "Summary" in workbook.sheetnames
    assert HUGE[:100] not in episodes_csv(store, f)


def test_history_and_home_open_and_say_how_many_rows_were_left_out(any_store):
    store = any_store
    generate(store, stations=2, days=3, seconds_rows=300, seed=5)
    today = now()[:10]
    _poison(store, today)
    at = open_page("pages/3_History.py")
    assert not at.exception and not at.error
    notes = [w for w in values(at.warning) if "could not be read" in w]
    assert len(notes) == 1 and notes[0].split()[0].isdigit()
    assert "History" in values(at.title) and at.metric
    assert not any(HUGE[:50] in str(o) for m in at.multiselect for o in m.options)
    home = open_page()
    assert not home.exception and not home.error
    [note] = [w for w in values(home.warning) if "could not be read" in w]
    assert "nothing was deleted" in note


def test_a_long_range_is_clamped_to_the_data_held(store, gw_home):
    generate(store, stations=2, days=3, seconds_rows=300, seed=5)
    span = h.data_span(store)
    asked = h.HistoryFilter(date(2000, 1, 1), date(2100, 1, 1))
    f, notes = reading.prepare(store, asked, span)
    assert (f.start, f.end) == (span.first, span.last)
    assert notes and "2000-01-01 to 2100-01-01 was asked for" in notes[0]
    assert reading.clamp_for(store, h.HistoryFilter(span.first, span.last)).note is None


def test_a_range_of_data_beyond_five_years_is_refused_for_reports(store, gw_home, capfd, tmp_path):
    from core.cli import main

    for day in ("2001-03-01", "2026-03-01"):
        store.events.insert(
            EventRow(station="Saw 01", started_at=f"{day} 08:00:00", duration_s=2.0)
        )
    asked = h.HistoryFilter(date(2000, 1, 1), date(2100, 1, 1))
    with pytest.raises(reading.RangeError, match="more than 5 years"):
        reading.clamp_for(store, asked)
    f, notes = reading.prepare(store, asked, h.data_span(store))  # the page: the last 5 years
    assert f.end == date(2026, 3, 1) and f.days == reading.MAX_DAYS and "last 5 years" in notes[0]
    code = main(
        ["report", "--from", "2000-01-01", "--to", "2100-01-01", "--out", str(tmp_path / "r.xlsx")]
    )
    err = capfd.readouterr().err
    assert code != 0 and "more than 5 years" in err and len(err.strip().splitlines()) == 1


def test_the_history_page_with_the_widest_range_it_offers_stays_on_the_data(store, gw_home):
    generate(store, stations=2, days=3, seconds_rows=300, seed=5)
    at = open_page("pages/3_History.py")
    picker = at.sidebar.date_input(key="range")
    widest = (picker.proto.min, picker.proto.max)  # 2000-01-01 to ten years ahead
    picker.set_value(tuple(date.fromisoformat(d) for d in widest)).run()
    assert not at.exception and not at.error
    asked = f"{widest[0]} to {widest[1]} was asked for"
    assert any(asked in w for w in values(at.warning)), values(at.warning)
    span = h.data_span(store)
    assert any(f"Showing {span.first} to {span.last}" in plain(c) for c in values(at.caption))
