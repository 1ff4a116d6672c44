"""The compliance report a plant manager forwards: an Excel workbook and a CSV of episodes.

The workbook (History page and ``python -m core report``) has a Summary sheet (KPIs per
station and shift, native charts), the daily Trend, the Episodes with embedded thumbnails and
the Coverage per station and day. Every sheet starts with the period, filters, models and rule
versions it covers. User text (station names, comments, reviewers) is written as text, never
as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.drawing.image import Image as XLImage
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from core.analytics import history as h
from core.analytics.review import thumbnail_png
from core.analytics.spreadsheet import add_table, append_row, fit_columns, safe_text
from core.storage import Store, now
from core.storage.events import EpisodeRecord
from core.storage.filters import HistoryFilter

EPISODE_HEADER = (
    "id",
    "started_at",
    "ended_at",
    "station",
    "duration_s",
    "class",
    "reason",
    "severity",
    "peak_conf",
    "review",
    "review_comment",
    "reviewed_by",
    "reviewed_at",
    "model",
    "rule_version",
    "zone",
)


def _episode_values(ep: EpisodeRecord) -> list[Any]:
    return [
        ep.id,
        ep.started_at,
        ep.ended_at,
        ep.station,
        ep.duration_s,
        ep.class_name,
        ep.reason,
        ep.severity,
        ep.peak_conf,
        ep.review,
        ep.review_comment,
        ep.reviewed_by,
        ep.reviewed_at,
        f"{ep.model_name or 'model'} ({(ep.model_hash or '')[:12]})" if ep.model_hash else None,
        ep.rule_version,
        ep.zone,
    ]


def episodes_csv(store: Store, f: HistoryFilter, limit: int = 1_000_000) -> str:
    """The filtered episode table as CSV text (newest first)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(EPISODE_HEADER)
    w.writerows(
        [safe_text(v) if isinstance(v, str) else v for v in _episode_values(ep)]
        for ep in h.episodes(store, f, limit=limit)
    )
    return buf.getvalue()


def summary_csv(store: Store, f: HistoryFilter) -> str:
    """The headline figures of ``f`` as CSV (the same figures as the pages and the workbook):
    compliance as a share 0..1, time monitored in seconds."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(("figure", "value", "shown as", "what it counts"))
    w.writerows(
        (safe_text(x.label), "" if x.value is None else x.value, safe_text(x.text), x.help)
        for x in h.headline(h.kpis(store, f))
    )
    return buf.getvalue()


def _pct(v: float | None) -> float | str:
    return v if v is not None else "no data"


def _header(ws: Worksheet, title: str, lines: Sequence[tuple[str, str]]) -> None:
    """Title plus 'label: value' lines."""
    append_row(ws, [title])
    ws.cell(row=ws.max_row, column=1).font = Font(bold=True, size=13)
    for label, value in lines:
        append_row(ws, [label, value])
        ws.cell(row=ws.max_row, column=1).font = Font(bold=True)
    ws.append([])


def _kpi_table(ws: Worksheet, k: h.Kpis) -> None:
    """The headline figures (:func:`core.analytics.history.headline`), each in its own number
    format, as the pages show them and with what each counts."""
    t, fig = k.total, {x.key: x for x in h.headline(k)}
    rows = [
        ("Compliance", _pct(t.compliance), fig["compliance"]),
        ("Episodes (dismissed left out)", t.episodes, fig["episodes"]),
        ("Critical episodes", t.critical, fig["critical"]),
        ("Dismissed as false alarm", t.dismissed, None),
        ("Images checked", t.frames, fig["frames"]),
        ("Minutes monitored", round(t.minutes, 1), fig["monitored"]),
    ]
    first, _ = add_table(
        ws,
        ("KPI", "Value", "Shown as", "What it counts"),
        [
            (
                label,
                value,
                x.text if x else f"{value:,}",
                x.help if x else "Episodes dismissed in review: left out above.",
            )
            for label, value, x in rows
        ],
    )
    formats = ["0.0%", "#,##0", "#,##0", "#,##0", "#,##0", "#,##0.0"]
    for i, number_format in enumerate(formats, start=first + 1):
        ws.cell(row=i, column=2).number_format = number_format


def report_name(f: HistoryFilter) -> str:
    """The workbook's file name, which says what it covers."""
    return f"glovewatch-report-{f.slug()}.xlsx"[:180]


def _report_lines(store: Store, f: HistoryFilter, k: h.Kpis) -> list[tuple[str, str]]:
    """What every sheet starts with: period, filters, models, rule versions (the first four),
    then the compliance basis and when it was made."""
    prov = h.provenance(store, f)
    return [
        ("Period", f"{f.start.isoformat()} to {f.end.isoformat()}"),
        ("Filters", f.describe()),
        ("Models", ", ".join(prov.models) or "none recorded in this period"),
        ("Rule versions", ", ".join(prov.rule_versions) or "none recorded in this period"),
        ("Compliance basis", k.basis_note),
        ("Generated", now()),
    ]


def _station_shift_table(ws: Worksheet, store: Store, f: HistoryFilter) -> None:
    add_table(
        ws,
        (
            "Station",
            "Shift",
            "Compliance",
            "Basis",
            "Minutes monitored",
            "Compliant hand-s",
            "Violating hand-s",
            "Judged detections",
            "Episodes",
            "Critical",
        ),
        [
            (
                *s.key,
                _pct(s.compliance),
                s.basis or "no hands seen",
                round(s.minutes, 1),
                s.compliant_s,
                s.violating_s,
                s.compliant_n + s.violating_n,
                s.episodes,
                s.critical,
            )
            for s in h.station_shift(store, f)
        ],
        title="Per station and shift",
        pct_cols=(3,),
    )


def _station_table(ws: Worksheet, store: Store, f: HistoryFilter) -> tuple[int, int] | None:
    """The per-station table; its first and last rows, None when it has no station."""
    stations = h.per_station(store, f)
    rows = add_table(
        ws,
        ("Station", "Compliance", "Basis", "Minutes monitored", "Episodes", "Critical"),
        [
            (
                s.key[0],
                _pct(s.compliance),
                s.basis or "no hands seen",
                round(s.minutes, 1),
                s.episodes,
                s.critical,
            )
            for s in stations
        ],
        title="Per station",
        pct_cols=(2,),
    )
    return rows if stations else None


def _summary_sheet(
    ws: Worksheet, store: Store, f: HistoryFilter, k: h.Kpis, lines: list[tuple[str, str]]
) -> None:
    """KPIs, the station x shift and per-station tables, and the episodes-per-station chart."""
    ws.title = "Summary"
    _header(ws, "GloveWatch compliance report", lines)
    _kpi_table(ws, k)
    ws.append([])
    _station_shift_table(ws, store, f)
    ws.append([])
    st_rows = _station_table(ws, store, f)
    fit_columns(ws)
    if st_rows is None:
        return
    st_first, st_last = st_rows
    bar = BarChart()
    bar.title, bar.y_axis.title = "Episodes per station", "episodes"
    bar.add_data(Reference(ws, min_col=5, min_row=st_first, max_row=st_last), titles_from_data=True)
    bar.set_categories(Reference(ws, min_col=1, min_row=st_first + 1, max_row=st_last))
    bar.width, bar.height = 18, 8
    ws.add_chart(bar, "L2")


def _trend_sheet(
    tr: Worksheet, store: Store, f: HistoryFilter, lines: list[tuple[str, str]]
) -> None:
    """Compliance, episodes and minutes per day, with a line and a bar chart."""
    _header(tr, "Daily trend", lines[:4])
    days = h.trend(store, f, "day")
    tr_first, tr_last = add_table(
        tr,
        ("Day", "Compliance", "Episodes", "Critical", "Minutes monitored"),
        [(s.key[0], s.compliance, s.episodes, s.critical, round(s.minutes, 1)) for s in days],
        pct_cols=(2,),
    )
    fit_columns(tr)
    categories = Reference(tr, min_col=1, min_row=tr_first + 1, max_row=tr_last)
    line = LineChart()
    line.title, line.y_axis.title = "Compliance per day (gaps: no hands seen)", "compliance"
    line.y_axis.number_format = "0%"
    line.y_axis.scaling.min = 0
    line.y_axis.scaling.max = 1
    line.add_data(
        Reference(tr, min_col=2, min_row=tr_first, max_row=tr_last), titles_from_data=True
    )
    line.set_categories(categories)
    line.width, line.height = 24, 9
    tr.add_chart(line, "H2")
    eps_chart = BarChart()
    eps_chart.title = "Episodes per day"
    eps_chart.add_data(
        Reference(tr, min_col=3, min_row=tr_first, max_row=tr_last), titles_from_data=True
    )
    eps_chart.set_categories(categories)
    eps_chart.width, eps_chart.height = 24, 9
    tr.add_chart(eps_chart, "H22")


def _episodes_sheet(
    es: Worksheet,
    store: Store,
    f: HistoryFilter,
    lines: list[tuple[str, str]],
    max_episodes: int,
    max_thumbnails: int,
) -> None:
    """The worst episodes first (critical, then longest), the first ones with a thumbnail."""
    total_eps = h.count_episodes(store, f)
    shown = min(total_eps, max_episodes)
    rows_line = (
        "Rows",
        f"{shown} of {total_eps} episodes (critical first, then longest); "
        f"thumbnails for the first {min(shown, max_thumbnails)}",
    )
    _header(es, "Episodes", [*lines[:4], rows_line])
    first, _ = add_table(es, ("thumbnail", *EPISODE_HEADER), [])
    es.column_dimensions["A"].width = 14
    for i, ep in enumerate(h.episodes(store, f, limit=max_episodes, order="critical first")):
        row = append_row(es, ["", *_episode_values(ep)])
        png = thumbnail_png(ep, 72) if i < max_thumbnails else None
        if png:
            es.add_image(XLImage(io.BytesIO(png)), f"A{row}")
            es.row_dimensions[row].height = 58
        elif i < max_thumbnails:
            es.cell(row=row, column=1, value="no image")
    es.freeze_panes = es.cell(row=first + 1, column=2)


def _coverage_sheet(
    cs: Worksheet, store: Store, f: HistoryFilter, lines: list[tuple[str, str]]
) -> None:
    """Minutes monitored and compliance per station and day ("no coverage" without a camera)."""
    note = ("Note", "A day with 0 minutes had no camera running: it has no compliance figure.")
    _header(cs, "Coverage per station and day", [*lines[:4], note])
    add_table(
        cs,
        ("Station", "Day", "Minutes monitored", "Compliance", "Basis", "Episodes"),
        [
            (
                c.station,
                c.day,
                round(c.stats.minutes, 1),
                _pct(c.stats.compliance) if c.stats.watched_s or c.stats.basis else "no coverage",
                c.stats.basis or "",
                c.stats.episodes,
            )
            for c in h.coverage(store, f)
        ],
        pct_cols=(4,),
    )
    fit_columns(cs)


def write_history_xlsx(
    path: Path, store: Store, f: HistoryFilter, max_episodes: int = 5000, max_thumbnails: int = 200
) -> Path:
    """Write the compliance report of filter ``f`` to ``path``; at most ``max_episodes``
    episode rows (worst first: critical, then longest), the first ``max_thumbnails`` with an
    embedded thumbnail."""
    k = h.kpis(store, f)
    lines = _report_lines(store, f, k)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    _summary_sheet(ws, store, f, k, lines)
    _trend_sheet(wb.create_sheet("Trend"), store, f, lines)
    _episodes_sheet(wb.create_sheet("Episodes"), store, f, lines, max_episodes, max_thumbnails)
    _coverage_sheet(wb.create_sheet("Coverage"), store, f, lines)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path
