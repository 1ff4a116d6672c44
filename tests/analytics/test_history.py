"""History figures on hand-made rows (exact numbers), on synthetic stores, and timings."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from core.analytics import history as h
from core.analytics import review, synth
from core.config import settings
from core.storage import open_store
from core.storage.coverage import HourRow
from core.storage.events import EventRow
from core.storage.sessions import ResultRow, SessionInfo

DAY = date(2026, 1, 5)  # a Monday
ONE_DAY = h.HistoryFilter(DAY, DAY)


def _hour(store, station, hour, watched=3600.0, compliant=0.0, violating=0.0):
    store.coverage.insert_hours(
        [HourRow(station, hour, watched, compliant + violating, compliant, violating)]
    )


def _event(
    store,
    station,
    started,
    duration=5.0,
    severity="warning",
    review_state=None,
    class_name="hand",
    **kw,
):
    ended = (datetime.fromisoformat(started) + timedelta(seconds=duration)).strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    eid = store.events.insert(
        EventRow(
            station=station,
            started_at=started,
            ended_at=ended,
            duration_s=duration,
            severity=severity,
            class_name=class_name,
            **kw,
        )
    )
    if review_state:
        review.set_review(store, eid, review_state, reviewed_by="Ana")
    return eid


@pytest.fixture
def exact(store):
    """Two stations, one day: hand-time at 07:00 (Early), 23:00 and 02:00 (Night) at A, 15:00
    (Late) at B; three episodes at A, one dismissed."""
    _hour(store, "A", "2026-01-05 07:00:00", compliant=900, violating=100)
    _hour(store, "A", "2026-01-05 23:00:00", compliant=50, violating=50)
    _hour(store, "A", "2026-01-05 02:00:00", compliant=30, violating=10)
    _hour(store, "B", "2026-01-05 15:00:00", compliant=400, violating=0)
    _event(store, "A", "2026-01-05 07:10:00", duration=20, review_state="dismissed")
    _event(store, "A", "2026-01-05 07:20:00", duration=4, severity="critical")
    _event(store, "A", "2026-01-05 23:30:00", duration=6, class_name="no_glove")
    return store


def test_kpis_use_hand_time_and_leave_dismissed_out(exact):
    k = h.kpis(exact, ONE_DAY)
    t = k.total
    assert t.basis == h.BASIS_HAND_TIME and "hand-time" in k.basis_note
    assert "dismissed" in k.basis_note
    assert t.episodes == 2 and t.critical == 1 and t.dismissed == 1 and t.unreviewed == 2
    compliant, violating = 900 + 50 + 30 + 400, 100 + 50 + 10 - 20  # dismissed 20 s out
    assert k.compliance == pytest.approx(compliant / (compliant + violating))
    assert t.violating_s == 160 and t.dismissed_s == 20
    assert t.minutes == pytest.approx(4 * 60)


def test_station_shift_night_crosses_midnight(exact):
    cells = {s.key: s for s in h.station_shift(exact, ONE_DAY)}
    assert set(cells) == {("A", "Early"), ("A", "Night"), ("B", "Late")}
    night = cells[("A", "Night")]
    assert night.compliant_s == 80 and night.violating_s == 60 and night.episodes == 1
    assert cells[("A", "Early")].compliance == pytest.approx(900 / (900 + 80))
    assert cells[("B", "Late")].compliance == 1.0


def test_custom_shifts_from_the_settings(exact, monkeypatch):
    """GLOVEWATCH_SHIFTS, read by the entry point and passed down in the filter, names the
    shifts; the store never reads the environment itself."""
    monkeypatch.setenv("GLOVEWATCH_SHIFTS", "Day=07:00-19:00,Night=19:00-07:00")
    default = {s.key for s in h.station_shift(exact, ONE_DAY)}  # a filter built without them
    assert default == {("A", "Early"), ("A", "Night"), ("B", "Late")}
    plant = h.HistoryFilter(DAY, DAY, plant_shifts=settings().shifts)
    cells = {s.key: s for s in h.station_shift(exact, plant)}
    assert set(cells) == {("A", "Day"), ("A", "Night"), ("B", "Day")}
    assert cells[("A", "Night")].compliant_s == 80  # 23:00 and 02:00
    night = h.HistoryFilter(DAY, DAY, shifts=("Night",), plant_shifts=plant.plant_shifts)
    assert h.kpis(exact, night).total.episodes == 1


def test_filters_shift_and_episode_only_filters(exact):
    early = h.kpis(exact, h.HistoryFilter(DAY, DAY, shifts=("Early",))).total
    assert early.compliant_s == 900 and early.episodes == 1 and early.dismissed == 1
    crit = h.kpis(exact, h.HistoryFilter(DAY, DAY, severities=("critical",))).total
    assert crit.episodes == 1 and crit.compliant_s == 1380  # hand-time is not filtered
    only_b = h.kpis(exact, h.HistoryFilter(DAY, DAY, stations=("B",))).total
    assert only_b.episodes == 0 and only_b.compliance == 1.0
    assert h.count_episodes(exact, h.HistoryFilter(DAY, DAY, reviews=("dismissed",))) == 1
    assert h.count_episodes(exact, h.HistoryFilter(DAY, DAY, reviews=("unreviewed",))) == 2
    by_class = h.HistoryFilter(DAY, DAY, classes=("no_glove",))
    assert [e.started_at for e in h.episodes(exact, by_class)] == ["2026-01-05 23:30:00"]
    assert h.kpis(exact, by_class).total.episodes == 1
    both = h.HistoryFilter(DAY, DAY, classes=("hand",), severities=("warning",))
    assert h.count_episodes(exact, both) == 1  # the dismissed one (still listed for review)
    assert h.kpis(exact, both).total.episodes == 0
    assert sorted(h.classes(exact)) == ["hand", "no_glove"]


def test_episode_orders(exact):
    assert [e.duration_s for e in h.episodes(exact, ONE_DAY, order="longest")] == [20, 6, 4]
    assert h.episodes(exact, ONE_DAY, order="critical first")[0].severity == "critical"
    newest = h.episodes(exact, ONE_DAY)
    assert [e.started_at[11:] for e in newest] == ["23:30:00", "07:20:00", "07:10:00"]
    assert [e.started_at for e in h.episodes(exact, ONE_DAY, limit=1, offset=1)] == [
        newest[1].started_at
    ]


def test_one_day_trend_is_by_hour(exact):
    assert h.trend_granularity(ONE_DAY) == "hour"
    assert h.trend_granularity(h.HistoryFilter(DAY, DAY + timedelta(days=1))) == "day"
    hours = h.trend(exact, ONE_DAY, "hour")
    assert len(hours) == 24
    assert [s.key[0] for s in hours] == [f"2026-01-05 {i:02d}" for i in range(24)]
    assert hours[7].episodes == 1 and hours[7].dismissed == 1 and hours[23].episodes == 1
    assert hours[2].compliant_s == 30 and hours[2].compliance == pytest.approx(0.75)
    assert hours[12].compliance is None and hours[12].minutes == 0
    profile = h.hour_profile(exact, ONE_DAY)
    assert [s.key[0] for s in profile] == [f"{i:02d}" for i in range(24)]
    assert profile[15].compliant_s == 400


def test_week_trend_merges_days(exact):
    _hour(exact, "A", "2026-01-13 09:00:00", compliant=60, violating=40)
    _event(exact, "A", "2026-01-13 09:05:00")
    f = h.HistoryFilter(date(2026, 1, 7), date(2026, 1, 18))  # Wednesday to Sunday
    days = h.trend(exact, f, "day")
    weeks = h.trend(exact, f, "week")
    assert [w.key[0] for w in weeks] == ["2026-01-05", "2026-01-12"]  # Mondays
    assert len(days) == 12
    assert weeks[0].watched_s == 0 and weeks[0].compliance is None  # 7-11 Jan: no data
    assert weeks[1].compliant_s == 60 and weeks[1].episodes == 1
    assert weeks[1].compliance == pytest.approx(0.6)
    assert sum(w.watched_s for w in weeks) == sum(d.watched_s for d in days)
    with pytest.raises(ValueError, match="hour"):
        h.trend(exact, f, "month")


def test_days_without_a_camera_are_never_compliant(exact):
    f = h.HistoryFilter(DAY, date(2026, 1, 7))
    days = h.trend(exact, f)
    assert [d.key[0] for d in days] == ["2026-01-05", "2026-01-06", "2026-01-07"]
    assert days[1].compliance is None and days[1].basis is None and days[1].minutes == 0
    cells = h.coverage(exact, f)
    assert len(cells) == 2 * 3 and {c.station for c in cells} == {"A", "B"}
    empty = [c for c in cells if c.day != "2026-01-05"]
    assert all(c.stats.minutes == 0 and c.stats.compliance is None for c in empty)
    first = {c.station: c for c in cells if c.day == "2026-01-05"}
    assert first["B"].stats.compliance == 1.0 and first["A"].stats.minutes == 180
    assert [s.key[0] for s in h.top_stations(exact, f)] == ["A"]
    assert [s.key[0] for s in h.per_station(exact, f)] == ["A", "B"]
    with pytest.raises(ValueError, match="before it starts"):
        h.HistoryFilter(date(2026, 1, 7), DAY)


def test_dismissing_moves_counts_and_time_at_once(exact):
    before = h.kpis(exact, ONE_DAY).total
    crit = next(e for e in h.episodes(exact, ONE_DAY) if e.severity == "critical")
    review.set_review(exact, crit.id, "dismissed")
    after = h.kpis(exact, ONE_DAY).total
    assert (after.episodes, after.critical, after.dismissed) == (1, 0, 2)
    assert after.dismissed_s == before.dismissed_s + 4
    assert after.compliance > before.compliance


def test_detections_basis_without_coverage(store):
    sid = store.sessions.start(
        SessionInfo("batch", "x", "Bench", "m.pt", "abc" * 8, 0.25, 0.7, 640)
    )
    for i, (ok, bad) in enumerate([(2, 0), (1, 1), (0, 1)]):
        store.sessions.add_result(
            sid,
            ResultRow(source=f"img{i}.jpg", compliant=ok, violating=bad, ts="2026-01-05 10:00:00"),
        )
    eid = _event(
        store,
        "Bench",
        "2026-01-05 10:00:00",
        duration=0,
        session_id=sid,
        source="img2.jpg",
        frame=0,
    )
    k = h.kpis(store, ONE_DAY)
    assert k.total.basis == h.BASIS_DETECTIONS and "detections" in k.basis_note
    assert k.compliance == pytest.approx(3 / 5) and k.total.frames == 3
    review.set_review(store, eid, "dismissed")
    # the dismissed photo's detections leave the figures too
    assert h.kpis(store, ONE_DAY).compliance == pytest.approx(3 / 4)
    assert h.kpis(store, ONE_DAY).total.episodes == 0


def test_empty_store_and_range_without_data(store):
    span = h.data_span(store)
    assert span.empty and span.counts == {"events": 0, "results": 0, "sessions": 0}
    f = h.default_filter(store)
    assert f.start == f.end == date.today()
    k = h.kpis(store, f)
    assert k.compliance is None and "no compliance" in k.basis_note.lower()
    assert h.station_shift(store, f) == [] and h.coverage(store, f) == []
    assert h.episodes(store, f) == [] and h.stations(store) == []


def test_default_filter_ends_at_the_latest_data(exact):
    span = h.data_span(exact)
    assert (span.first, span.last) == (DAY, DAY)
    f = h.default_filter(exact, days=30)
    assert (f.start, f.end) == (DAY, DAY)  # not before the first day with data
    _hour(exact, "A", "2026-03-01 10:00:00", compliant=1)
    f = h.default_filter(exact, days=30)
    assert f.end == date(2026, 3, 1) and f.days == 30


def test_stations_flags_hidden_and_provenance_names_models_and_rules(exact):
    exact.stations.ensure(["A"], deleted={"A": "2026-01-06 00:00:00"})
    assert [(s.name, s.deleted) for s in h.stations(exact)] == [("A", True), ("B", False)]
    _event(exact, "B", "2026-01-05 16:00:00", model_hash="f" * 64, rule_version=3)
    _event(
        exact, "B", "2026-01-05 17:00:00", model_hash="e" * 64, model_name="v2.pt", rule_version=4
    )
    prov = h.provenance(exact, ONE_DAY)
    assert prov.models == ("model (ffffffffffff)", "v2.pt (eeeeeeeeeeee)")
    assert prov.rule_versions == ("B: v3, v4",)
    # episode filters do not hide what the period's figures were made with
    narrow = h.provenance(exact, h.HistoryFilter(DAY, DAY, classes=("nothing",)))
    assert narrow.rule_versions == ("B: v3, v4",)
    assert h.provenance(exact, h.HistoryFilter(DAY, DAY, stations=("A",))).models == ()


def test_provenance_names_the_models_of_sessions(store):
    store.sessions.start(
        SessionInfo("live", "cam", "Saw", "/models/gloves-v9.pt", "9" * 64, 0.25, 0.7, 640)
    )
    today = h.HistoryFilter(date.today(), date.today())
    assert h.provenance(store, today).models == ("gloves-v9.pt (999999999999)",)


def test_bench_times_every_page_query(exact):
    timings = h.bench(exact, ONE_DAY, repeat=1)
    assert {t.name for t in timings} == {
        "kpis",
        "trend_day",
        "trend_week",
        "station_shift",
        "hour_profile",
        "top_stations",
        "coverage",
        "episodes_page",
        "episodes_count",
        "stations",
        "data_span",
        "provenance",
    }
    assert all(t.ms >= 0 for t in timings)
    rows = {t.name: t.rows for t in timings}
    assert rows["episodes_page"] == 3 and rows["station_shift"] == 3 and rows["coverage"] == 2


def test_as_date_says_what_is_wrong():
    assert h.as_date("2026-01-05") == DAY
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        h.as_date("05/01/2026")


@pytest.fixture
def path_stores(tmp_path):
    """Stores opened by path in this test (closed afterwards)."""
    from core.storage import close_store

    opened = []

    def make(name: str):
        s = open_store(str(tmp_path / name))
        opened.append(s)
        return s

    yield make
    for s in opened:
        close_store(s)


def test_synth_is_deterministic_and_refuses_a_used_store(path_stores):
    reps, figures = [], []
    f = h.HistoryFilter(date(2026, 2, 20), date(2026, 3, 1))
    for i in range(2):
        s = path_stores(f"s{i}.sqlite")
        reps.append(
            synth.generate(
                s, stations=4, days=10, seconds_rows=20_000, seed=7, end=date(2026, 3, 1)
            )
        )
        figures.append((h.kpis(s, f).total, h.station_shift(s, f), h.coverage(s, f)))
        if i == 1:
            with pytest.raises(ValueError, match="empty store"):
                synth.generate(s, stations=1, days=1)
    a, b = reps
    assert (a.coverage_seconds, a.events, a.coverage_hourly, a.results) == (
        b.coverage_seconds,
        b.events,
        b.coverage_hourly,
        b.results,
    )
    assert a.coverage_seconds >= 20_000 and a.events > 0 and (a.start, a.end) == (f.start, f.end)
    assert figures[0] == figures[1]
    s = path_stores("s0.sqlite")
    assert any(st.deleted for st in h.stations(s))  # one station is removed part-way
    bench = h.per_station(s, h.HistoryFilter(f.start, f.end, stations=(synth.INSPECTION_STATION,)))
    assert bench and bench[0].basis == h.BASIS_DETECTIONS  # photos only, no coverage
    days = h.trend(s, f)
    assert any(d.compliance is None for d in days)  # Sundays are off: no data, not 100 %
    with pytest.raises(ValueError, match="at least one"):
        synth.generate(path_stores("s2.sqlite"), stations=0)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (45.4, "45 s"), (59.4, "59 s"), (60, "1 min"), (754, "13 min"), (9000, "2.5 h")],
)
def test_time_monitored_in_the_unit_a_reader_expects(seconds, text):
    assert h.duration_text(seconds) == text


def test_headline_figures_say_what_they_count(store):
    _hour(store, "Saw 01", "2026-01-05 10:00:00", watched=45.0, compliant=30.0, violating=10.0)
    _event(store, "Saw 01", "2026-01-05 10:00:10")
    _event(store, "Saw 01", "2026-01-05 10:00:20", review_state="dismissed")
    figs = {f.key: f for f in h.headline(h.kpis(store, ONE_DAY))}
    assert list(figs) == ["compliance", "episodes", "critical", "frames", "monitored"]
    assert figs["monitored"].text == "45 s" and figs["monitored"].value == 45.0
    assert figs["episodes"].text == "1" and "Dismissed in this range: 1" in figs["episodes"].help
    assert figs["compliance"].text == h.percent_text(figs["compliance"].value)
    assert figs["compliance"].text.endswith(" %") and "hand-time" in figs["compliance"].help
    assert all(f.help for f in figs.values())
    assert h.percent_text(None) == "no data"
    assert h.today_filter(DAY) == ONE_DAY
