"""Plot specs (:mod:`core.analytics.charts`) drawn as Plotly figures: the only place that knows
Plotly's vocabulary; what a chart shows is decided in core."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.analytics.charts import Axis, HeatmapSpec, PlotSpec, Series

MARGIN = {"t": 50, "b": 30}


def _plain(texts: Sequence[Any]) -> list[Any]:
    """Labels shown as typed: Plotly reads ``<a href>``, ``<b>``, ``<br>`` and ``<span>`` in
    tick labels and hover text, and station names come from users."""
    return [html.escape(t, quote=False) if isinstance(t, str) else t for t in texts]


def _axis(a: Axis) -> dict[str, Any]:
    out: dict[str, Any] = {"title_text": a.title, "showgrid": a.grid}
    if a.percent:
        out["tickformat"] = ".1%" if a.fixed is None else ".0%"
    if a.fixed is not None:
        out["range"] = list(a.fixed)
    if a.step is not None:
        out.update(rangemode="tozero", tickformat="d", dtick=a.step)
    if a.category:
        out["type"] = "category"
    return out


def _trace(s: Series) -> Any:
    x = _plain(s.x)
    xy = {"x": s.y, "y": x, "orientation": "h"} if s.horizontal else {"x": x, "y": s.y}
    if s.kind == "bar":
        opacity = 1.0 if s.horizontal else 0.35
        return go.Bar(**xy, name=s.name, marker_color=s.colour, opacity=opacity)
    return go.Scatter(
        **xy,
        name=s.name,
        mode="lines+markers",
        connectgaps=False,
        line_color=s.colour,
        customdata=[[t] for t in _plain(s.hover)] or None,
        hovertemplate="%{x}: %{y:.1%}"
        + (" (%{customdata[0]})" if s.hover else "")
        + "<extra></extra>",
    )


def plot(spec: PlotSpec) -> go.Figure:
    """Bars and lines of ``spec``; a right axis when it has one."""
    two = spec.y_right is not None
    fig = make_subplots(specs=[[{"secondary_y": True}]]) if two else go.Figure()
    for s in spec.series:
        if two:
            fig.add_trace(_trace(s), secondary_y=s.right_axis)
        else:
            fig.add_trace(_trace(s))
    if two:
        assert spec.y_right is not None
        fig.update_yaxes(**_axis(spec.y), secondary_y=False)
        fig.update_yaxes(**_axis(spec.y_right), secondary_y=True)
    else:
        fig.update_yaxes(**_axis(spec.y))
    fig.update_xaxes(**_axis(spec.x))
    fig.update_layout(
        title=spec.title,
        height=spec.height,
        margin=MARGIN,
        barmode="stack" if spec.stacked else None,
    )
    return fig


def heatmap(spec: HeatmapSpec) -> go.Figure:
    """The grid of ``spec``; blank cells have no data."""
    hover = spec.hover.replace("{text}", "%{text}").replace("{z", "%{z")
    fig = go.Figure(
        go.Heatmap(
            z=[list(r) for r in spec.z],
            x=_plain(spec.columns),
            y=_plain(spec.rows),
            text=[_plain(r) for r in spec.text],
            colorscale=spec.colourscale,
            zmin=0 if spec.percent else None,
            zmax=1 if spec.percent else None,
            hovertemplate="%{y} / %{x}<br>" + hover + "<extra></extra>",
            colorbar={"title": spec.colourbar, **({"tickformat": ".0%"} if spec.percent else {})},
        )
    )
    if spec.category_columns:
        fig.update_xaxes(type="category")
    fig.update_layout(title=spec.title, height=spec.height, margin=MARGIN)
    return fig


def figure(spec: PlotSpec | HeatmapSpec) -> go.Figure:
    """Whichever kind of chart ``spec`` is."""
    return heatmap(spec) if isinstance(spec, HeatmapSpec) else plot(spec)
