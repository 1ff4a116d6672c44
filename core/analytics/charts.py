"""The History page's charts as typed plot specs: what each chart shows, built from the figures
of :mod:`core.analytics.history`; the page only draws them (``ui/charts.py``).

Axes that count things step by round numbers (1, 2 or 5 times a power of ten), so a reader
sees 0, 500, 1,000 rather than 0, 308, 616, 924; compliance axes run from 0 to 100 % unless
zoomed, and then say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.analytics import history as h

COMPLIANCE_COLOUR = "#1e8449"
EPISODE_COLOUR = "#c0392b"
WARNING_COLOUR = "#f0a202"
TREND_BY_LABEL = {"hour": "hour", "day": "day", "week": "week starting"}


def round_step(top: float, ticks: int = 5) -> int:
    """A whole, round tick step (1, 2, 5, 10, 20, 50, ...) giving at most about ``ticks``
    steps up to ``top``."""
    if top <= ticks:
        return 1
    raw = top / ticks
    power = 10 ** math.floor(math.log10(raw))
    return int(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


@dataclass(frozen=True)
class Axis:
    """One axis: its title and how its ticks read."""

    title: str
    percent: bool = False  # ticks as 0 %..100 %
    fixed: tuple[float, float] | None = None  # None: fitted to the values
    step: int | None = None  # whole-number ticks this far apart (counts)
    category: bool = False  # labels as given, in order (hours, days)
    grid: bool = True


@dataclass(frozen=True)
class Series:
    """Values over the x labels, drawn as bars or as a line with markers."""

    name: str
    kind: str  # "bar" | "line"
    x: tuple[str, ...]
    y: tuple[float | int | None, ...]
    colour: str
    right_axis: bool = False
    hover: tuple[str, ...] = ()  # one text per point (shown beside the value)
    horizontal: bool = False


@dataclass(frozen=True)
class PlotSpec:
    """A bar/line chart: series over shared x labels, with a left (and maybe right) axis."""

    title: str
    height: int
    x: Axis
    y: Axis
    series: tuple[Series, ...]
    y_right: Axis | None = None
    stacked: bool = False


@dataclass(frozen=True)
class HeatmapSpec:
    """A grid of values (rows x columns) with a text per cell; None/NaN cells stay blank."""

    title: str
    height: int
    columns: tuple[str, ...]
    rows: tuple[str, ...]
    z: tuple[tuple[float | None, ...], ...]
    text: tuple[tuple[str, ...], ...]
    colourscale: str
    colourbar: str
    percent: bool  # z is a share 0..1
    hover: str  # what a cell's hover says after "row / column": uses {text} and {z}
    category_columns: bool = False


@dataclass(frozen=True)
class Shown:
    """One tab of charts: its title, the chart (None: nothing to draw, say ``empty``), and a
    note under it."""

    title: str
    spec: PlotSpec | HeatmapSpec | None
    empty: str = ""
    note: str = ""


@dataclass(frozen=True)
class HistoryCharts:
    """Every chart of the History page, with the note that goes under coverage."""

    trend: PlotSpec
    station_shift: HeatmapSpec | None
    hours: PlotSpec
    top: PlotSpec | None
    coverage: HeatmapSpec | None
    coverage_note: str = ""

    def tabs(self) -> list[Shown]:
        """The charts in the page's order, each with what to say when it is empty."""
        return [
            Shown("Trend", self.trend),
            Shown("Station × shift", self.station_shift, "No station has data in this range."),
            Shown("Hour of day", self.hours),
            Shown(
                "Top stations",
                self.top,
                "No episodes in this range (dismissed false alarms are not counted).",
            ),
            Shown("Coverage", self.coverage, "No coverage in this range.", self.coverage_note),
        ]


def compliance_axis(zoom: bool) -> Axis:
    """0 to 100 %, or zoomed to the values with a title that says it does not start at 0."""
    if zoom:
        return Axis("compliance (zoomed: does not start at 0 %)", percent=True)
    return Axis("compliance", percent=True, fixed=(0, 1.02))


def compliance_and_episodes(
    rows: list[h.Stats], x: list[str], title: str, height: int, zoom: bool, x_title: str
) -> PlotSpec:
    """Episodes as bars (right axis) and compliance as a line over the same x labels."""
    counts = tuple(r.episodes for r in rows)
    hover = tuple(
        f"{r.basis or 'no hands seen'}, {h.duration_text(r.watched_s)} monitored" for r in rows
    )
    return PlotSpec(
        title=title,
        height=height,
        x=Axis(x_title, category=True),
        y=compliance_axis(zoom),
        # no grid of its own: its lines would fall between the compliance axis' lines
        y_right=Axis("episodes", step=round_step(max(counts, default=0)), grid=False),
        series=(
            Series("episodes", "bar", tuple(x), counts, EPISODE_COLOUR, right_axis=True),
            Series(
                "compliance",
                "line",
                tuple(x),
                tuple(r.compliance for r in rows),
                COMPLIANCE_COLOUR,
                hover=hover,
            ),
        ),
    )


def station_shift_heatmap(rows: list[h.Stats], shifts: list[str]) -> HeatmapSpec | None:
    """Compliance per station (rows) and shift (columns); None without data."""
    if not rows:
        return None
    stations = sorted({r.key[0] for r in rows})
    names = shifts + ([h.OFF_SHIFT] if any(r.key[1] == h.OFF_SHIFT for r in rows) else [])
    cell = {r.key: r for r in rows}
    z, text = [], []
    for s in stations:
        found = [cell.get((s, sh)) for sh in names]
        z.append(tuple(r.compliance if r else None for r in found))
        text.append(
            tuple(
                f"{h.percent_text(r.compliance)}<br>{r.episodes:,} episodes<br>"
                f"{h.duration_text(r.watched_s)} monitored, {r.basis or 'no hands'}"
                if r
                else "no data"
                for r in found
            )
        )
    return HeatmapSpec(
        title="Compliance by station and shift (blank: no data)",
        height=max(300, 28 * len(stations) + 120),
        columns=tuple(names),
        rows=tuple(stations),
        z=tuple(z),
        text=tuple(text),
        colourscale="RdYlGn",
        colourbar="compliance",
        percent=True,
        hover="{text}",
    )


def top_stations_chart(rows: list[h.Stats]) -> PlotSpec | None:
    """Stations by episodes, warning and critical stacked, worst on top; None without any."""
    if not rows:
        return None
    names = tuple(r.key[0] for r in rows)[::-1]
    return PlotSpec(
        title="Top stations by episodes",
        height=max(300, 30 * len(rows) + 120),
        x=Axis("episodes", step=round_step(max(r.episodes for r in rows))),
        y=Axis("", category=True),
        stacked=True,
        series=(
            Series(
                "warning",
                "bar",
                names,
                tuple(r.episodes - r.critical for r in rows)[::-1],
                WARNING_COLOUR,
                horizontal=True,
            ),
            Series(
                "critical",
                "bar",
                names,
                tuple(r.critical for r in rows)[::-1],
                EPISODE_COLOUR,
                horizontal=True,
            ),
        ),
    )


def coverage_heatmap(grid: h.CoverageGrid) -> HeatmapSpec | None:
    """Minutes monitored per station and day; days without a camera blank. None if empty."""
    if not len(grid):
        return None
    minutes = np.where(grid.minutes > 0, grid.minutes, np.nan)
    shown = np.where(
        grid.minutes > 0,
        np.where(
            np.isnan(grid.compliance),
            "no hands seen",
            np.char.mod("%.1f %%", np.nan_to_num(grid.compliance) * 100),
        ),
        "no camera",
    )
    return HeatmapSpec(
        title="Minutes monitored per station and day (blank: no camera)",
        height=max(300, 26 * len(grid.stations) + 120),
        columns=tuple(grid.days),
        rows=tuple(grid.stations),
        z=tuple(tuple(None if math.isnan(v) else float(v) for v in row) for row in minutes),
        text=tuple(tuple(str(t) for t in row) for row in shown),
        colourscale="Blues",
        colourbar="min",
        percent=False,
        hover="{z:,.0f} min monitored, compliance {text}",
        category_columns=True,
    )


def history_charts(figures: h.PageFigures, by: str, zoom: bool, shifts: list[str]) -> HistoryCharts:
    """The History page's five charts for the figures of one filter."""
    x_title = TREND_BY_LABEL[by]
    fmt = (lambda k: k[11:13] + ":00") if by == "hour" else (lambda k: k)
    grid = figures.coverage
    no_camera = int((grid.minutes <= 0).sum()) if len(grid) else 0
    return HistoryCharts(
        trend=compliance_and_episodes(
            figures.trend,
            [fmt(r.key[0]) for r in figures.trend],
            f"Compliance and episodes per {by} (gaps: no hands seen)",
            380,
            zoom,
            x_title,
        ),
        station_shift=station_shift_heatmap(figures.station_shift, shifts),
        hours=compliance_and_episodes(
            figures.hours,
            [r.key[0] + ":00" for r in figures.hours],
            "Hour-of-day profile",
            360,
            zoom,
            "hour of day",
        ),
        top=top_stations_chart(figures.top),
        coverage=coverage_heatmap(grid),
        coverage_note=f"{no_camera} of {len(grid)} station-days had no camera running: they "
        "have no compliance figure (never shown as 100 %).",
    )
