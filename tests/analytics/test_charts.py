"""The History page's plot specs: round count ticks, compliance axes from 0 %, the five charts
of a real synthetic store, and how each is drawn (ui/charts.py)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from core.analytics import charts
from core.analytics import history as h
from core.analytics.synth import generate
from core.storage.history import FIELDS
from ui.charts import figure

END = date(2026, 3, 31)


@pytest.mark.parametrize(
    ("top", "step"),
    [(0, 1), (4, 1), (7, 2), (12, 5), (30, 10), (1540, 500), (924, 200), (4620, 1000)],
)
def test_count_axes_step_by_round_numbers(top, step):
    assert charts.round_step(top) == step
    assert top / step <= 5 or step == 1


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    from core.storage import close_store, open_store

    store = open_store(str(tmp_path_factory.mktemp("charts") / "s.sqlite"))
    generate(store, stations=4, days=20, seconds_rows=3_000, seed=2, end=END)
    f = h.HistoryFilter(date(2026, 3, 12), END)
    yield h.page_figures(store, f, "day")
    close_store(store)


def test_the_five_charts_of_a_store(figures):
    c = charts.history_charts(figures, "day", zoom=False, shifts=["Early", "Late", "Night"])
    tabs = c.tabs()
    assert [t.title for t in tabs] == [
        "Trend",
        "Station × shift",
        "Hour of day",
        "Top stations",
        "Coverage",
    ]
    assert all(t.spec is not None for t in tabs)
    trend = c.trend
    bars, line = trend.series
    assert bars.kind == "bar" and bars.right_axis and line.kind == "line"
    assert len(bars.x) == 20 and bars.x[0] == "2026-03-12"
    assert trend.y.fixed == (0, 1.02) and trend.y.percent
    top = max(bars.y)
    assert trend.y_right is not None and trend.y_right.step == charts.round_step(top)
    assert str(trend.y_right.step)[0] in "125" and set(str(trend.y_right.step)[1:]) <= {"0"}
    assert all(" monitored" in t for t in line.hover)  # the time in its unit, e.g. "12.3 h"
    assert "station-days had no camera running" in c.coverage_note


def test_zoomed_axis_says_so(figures):
    c = charts.history_charts(figures, "day", zoom=True, shifts=[])
    assert c.trend.y.fixed is None and "zoomed" in c.trend.y.title


def test_specs_draw_as_plotly_figures(figures):
    c = charts.history_charts(figures, "day", zoom=False, shifts=["Early", "Late", "Night"])
    trend = figure(c.trend).to_plotly_json()
    assert trend["layout"]["yaxis"]["range"] == [0, 1.02]
    assert trend["layout"]["yaxis2"]["dtick"] == c.trend.y_right.step
    assert trend["layout"]["yaxis2"]["tickformat"] == "d"
    assert trend["layout"]["xaxis"]["type"] == "category"
    heat = figure(c.station_shift).to_plotly_json()
    assert heat["data"][0]["type"] == "heatmap" and heat["data"][0]["zmax"] == 1
    top = figure(c.top).to_plotly_json()
    assert top["layout"]["barmode"] == "stack" and top["data"][0]["orientation"] == "h"


def test_station_names_are_drawn_as_typed_not_as_plotly_markup():
    evil = '<a href="https://evil.example">Saw 1</a><br>'
    shown = evil.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    axis = charts.Axis("station", category=True)
    bars = charts.Series("episodes", "bar", (evil, "Saw 2"), (3, 1), "#000", horizontal=True)
    line = charts.Series("compliance", "line", ("d1",), (0.5,), "#000", hover=(evil,))
    top = figure(charts.PlotSpec("t", 300, axis, axis, (bars, line))).to_plotly_json()
    assert list(top["data"][0]["y"]) == [shown, "Saw 2"]
    assert list(top["data"][1]["customdata"]) == [[shown]]
    heat = figure(
        charts.HeatmapSpec(
            "h", 300, ("Early",), (evil,), ((0.5,),), ((evil,),), "RdYlGn", "%", True, "{text}"
        )
    ).to_plotly_json()["data"][0]
    assert list(heat["y"]) == [shown] and list(heat["text"][0]) == [shown]
    assert list(heat["x"]) == ["Early"]


def test_empty_charts_say_why():
    empty = charts.history_charts(
        h.PageFigures(
            kpis=h.Kpis(h.Stats(), ""),
            trend=[h.Stats(key=("2026-01-01",))],
            station_shift=[],
            hours=[],
            top=[],
            coverage=h.CoverageGrid([], [], np.zeros((0, 0, len(FIELDS)))),
            count=0,
        ),
        "day",
        zoom=False,
        shifts=[],
    )
    shown = {t.title: t for t in empty.tabs()}
    assert shown["Top stations"].spec is None and "No episodes" in shown["Top stations"].empty
    assert shown["Coverage"].spec is None and shown["Station × shift"].spec is None
