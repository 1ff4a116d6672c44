"""The Training page's charts as typed plot specs: what each shows is decided here, from a
run's metrics and an evaluation's confusion matrix; the page only draws them (Plotly)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.training.runs import Metrics
from core.vision.evaluate import EvalResult


@dataclass(frozen=True)
class Curve:
    """One line with markers: a metric per epoch."""

    name: str
    x: tuple[float, ...]
    y: tuple[float, ...]


@dataclass(frozen=True)
class CurveChart:
    """Lines over whole epochs, the x ticks ``x_step`` epochs apart (at most ~10 ticks)."""

    title: str
    x_title: str
    x_step: int
    curves: tuple[Curve, ...]
    height: int = 320


@dataclass(frozen=True)
class MatrixChart:
    """A confusion matrix: counts per (predicted row, true column), each cell labelled."""

    title: str
    labels: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]
    x_title: str = "true"
    y_title: str = "predicted"
    height: int = 360


def _curves(metrics: Metrics, columns: list[str], title: str) -> CurveChart:
    epochs = tuple(metrics.series("epoch"))
    return CurveChart(
        title,
        "epoch",
        max(1, math.ceil(len(epochs) / 10)),
        tuple(Curve(c.replace("metrics/", ""), epochs, tuple(metrics.series(c))) for c in columns),
    )


def run_charts(metrics: Metrics) -> tuple[CurveChart, CurveChart] | None:
    """A run's loss curves and its precision/recall/mAP curves; None before its first epoch."""
    if not metrics.rows:
        return None
    losses = [c for c in metrics.columns if c.endswith("_loss")]
    scores = [c for c in metrics.columns if c.startswith("metrics/")]
    return _curves(metrics, losses, "Losses"), _curves(metrics, scores, "Precision, recall, mAP")


def confusion_chart(label: str, result: EvalResult) -> MatrixChart | None:
    """The confusion matrix of an evaluation (None when it has none)."""
    if not result.confusion:
        return None
    return MatrixChart(
        f"Confusion matrix: {label}",
        tuple(result.confusion_labels),
        tuple(tuple(int(v) for v in row) for row in result.confusion),
    )
