"""The Training page's plot specs, built from a run's metrics and an evaluation."""

from __future__ import annotations

import html
from dataclasses import replace

from core.training.charts import MatrixChart, confusion_chart, run_charts
from core.training.runs import Metrics
from core.vision.evaluate import EvalResult


def _metrics(epochs: int) -> Metrics:
    columns = ("epoch", "train/box_loss", "val/box_loss", "metrics/mAP50(B)", "lr/pg0")
    rows = tuple((float(e), 2.0 - e / 10, 2.1 - e / 10, e / 40, 0.01) for e in range(1, epochs + 1))
    return Metrics(columns, rows)


def test_no_curves_before_the_first_epoch():
    assert run_charts(Metrics(("epoch",), ())) is None


def test_losses_and_scores_are_two_charts_over_whole_epochs():
    charts = run_charts(_metrics(25))
    assert charts is not None
    losses, scores = charts
    assert (losses.title, scores.title) == ("Losses", "Precision, recall, mAP")
    assert [c.name for c in losses.curves] == ["train/box_loss", "val/box_loss"]
    assert [c.name for c in scores.curves] == ["mAP50(B)"]  # "metrics/" left out; no lr
    assert scores.curves[0].x == tuple(float(e) for e in range(1, 26))
    assert scores.curves[0].y[-1] == 25 / 40
    assert losses.x_step == 3 and run_charts(_metrics(4))[0].x_step == 1  # type: ignore[index]


def test_a_confusion_matrix_keeps_its_labels_and_counts():
    res = EvalResult(
        weights="m.pt",
        data="d.yaml",
        split="val",
        imgsz=320,
        tiles=None,
        images=3,
        map50=0.5,
        map50_95=0.3,
        per_class_ap50={},
        per_class_ap50_95={},
        ms_per_image=10.0,
    )
    assert confusion_chart("Run 1", res) is None
    res = replace(res, confusion=[[2, 1], [0, 3]], confusion_labels=["glove", "background"])
    chart = confusion_chart("Run 1", res)
    assert chart is not None and chart.title == "Confusion matrix: Run 1"
    assert chart.labels == ("glove", "background") and chart.counts == ((2, 1), (0, 3))


def test_class_names_are_drawn_as_typed_not_as_plotly_markup():
    from ui.curves import matrix_figure

    evil = '<a href="https://evil.example">glove</a><br>'
    shown = html.escape(evil, quote=False)
    chart = MatrixChart(f"Confusion matrix: {evil}", (evil, "background"), ((1, 0), (0, 1)))
    fig = matrix_figure(chart).to_plotly_json()
    assert list(fig["data"][0]["x"]) == [shown, "background"] == list(fig["data"][0]["y"])
    assert fig["layout"]["title"]["text"] == f"Confusion matrix: {shown}"
    assert fig["layout"]["yaxis"]["autorange"] == "reversed"  # the first class's row on top
