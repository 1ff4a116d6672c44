"""The Training page's plot specs (:mod:`core.training.charts`) drawn as Plotly figures."""

from __future__ import annotations

import html

import plotly.graph_objects as go

from core.training.charts import CurveChart, MatrixChart

MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def curve_figure(spec: CurveChart) -> go.Figure:
    """Lines with markers over whole-number epochs."""
    fig = go.Figure()
    for c in spec.curves:
        fig.add_trace(go.Scatter(x=c.x, y=c.y, mode="lines+markers", name=c.name))
    fig.update_xaxes(title_text=spec.x_title, tickformat="d", dtick=spec.x_step)
    fig.update_layout(title=spec.title, height=spec.height, margin=MARGIN)
    return fig


def matrix_figure(spec: MatrixChart) -> go.Figure:
    """A heatmap of counts with each cell's count written in it."""
    z = [list(row) for row in spec.counts]
    # class names come from an imported data.yaml: shown as typed, as ui.charts does, since
    # Plotly reads <a href>, <b> and <br> in tick labels and titles
    labels = [html.escape(n, quote=False) for n in spec.labels]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=labels,
            text=z,
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
        )
    )
    fig.update_layout(
        title=html.escape(spec.title, quote=False),
        height=spec.height,
        xaxis_title=spec.x_title,
        yaxis_title=spec.y_title,
        margin=MARGIN,
    )
    for axis in (fig.layout.xaxis, fig.layout.yaxis):
        axis.tickfont = {"color": "#333"}
    # the first class's row on top, so the diagonal runs top-left to bottom-right as in
    # Ultralytics' own confusion_matrix.png (Plotly puts row 0 at the bottom)
    fig.update_yaxes(autorange="reversed")
    return fig
