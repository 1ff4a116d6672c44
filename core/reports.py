"""Excel and CSV exports for plant managers."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.drawing.image import Image as XLImage
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from core import history as h
from core.review import thumbnail_png
from core.store import now


def _fit_columns(ws, widths: Sequence[int] | None = None) -> None:
    for i, col in enumerate(ws.iter_cols(min_row=1, max_row=min(ws.max_row, 200)), start=1):
        width = max((len(str(c.value)) for c in col if c.value is not None), default=8)
        ws.column_dimensions[get_column_letter(i)].width = min(max(width + 2, 8), 60)


def write_table_xlsx(path: Path, header: Sequence[str], rows: Iterable[Sequence],
                     sheet: str = "Detections", title: str | None = None) -> Path:
    """Write one table (e.g. a batch session's detections) as a formatted workbook."""
    wb = Workbook()
    ws = wb.active
    ws.title = sheet[:31]
    if title:
        ws.append([title])
        ws["A1"].font = Font(bold=True, size=12)
        ws.append([])
    ws.append(list(header))
    header_row = ws.max_row
    for cell in ws[header_row]:
        cell.font = Font(bold=True)
    for r in rows:
        ws.append(list(r))
    ws.freeze_panes = ws.cell(row=header_row + 1, column=1)
    ws.auto_filter.ref = f"A{header_row}:{get_column_letter(len(header))}{ws.max_row}"
    _fit_columns(ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


# --- history report ---------------------------------------------------------------------------
# The full workbook of the History page and `python -m core report`: a summary sheet (KPIs per
# station and shift, native charts), the daily trend, the episodes with embedded thumbnails and
# the coverage per station and day. Every sheet starts with the period, filters, models and rule
# versions it covers.

EPISODE_HEADER = ("id", "started_at", "ended_at", "station", "duration_s", "class", "severity",
                  "peak_conf", "review", "review_comment", "reviewed_by", "reviewed_at",
                  "model_hash", "rule_version", "zone", "evidence_path")


def _episode_values(ep) -> list:
    return [ep.id, ep.started_at, ep.ended_at, ep.station, ep.duration_s, ep.class_name,
            ep.severity, ep.peak_conf, ep.review, ep.review_comment, ep.reviewed_by,
            ep.reviewed_at, (ep.model_hash or "")[:12] or None, ep.rule_version, ep.zone,
            ep.evidence_path]


def episodes_csv(conn, f: h.HistoryFilter, limit: int = 1_000_000) -> str:
    """The filtered episode table as CSV text (newest first)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(EPISODE_HEADER)
    w.writerows(_episode_values(ep) for ep in h.episodes(conn, f, limit=limit))
    return buf.getvalue()


def _pct(v: float | None):
    return v if v is not None else "no data"


def _bold_row(ws, row: int) -> None:
    for cell in ws[row]:
        cell.font = Font(bold=True)


def _header(ws, title: str, lines: Sequence[tuple[str, str]]) -> int:
    """Title plus 'label: value' lines; returns the next free row."""
    ws.append([title])
    ws.cell(row=ws.max_row, column=1).font = Font(bold=True, size=13)
    for label, value in lines:
        ws.append([label, value])
        ws.cell(row=ws.max_row, column=1).font = Font(bold=True)
    ws.append([])
    return ws.max_row + 1


def _table(ws, header: Sequence[str], rows: Iterable[Sequence], pct_cols: Sequence[int] = ()
           ) -> tuple[int, int]:
    """Append a bold header and rows; percent format on ``pct_cols`` (1-based); returns
    (header row, last row)."""
    ws.append(list(header))
    first = row = ws.max_row  # ws.max_row scans every row: count instead inside the loop
    _bold_row(ws, first)
    for r in rows:
        ws.append(list(r))
        row += 1
        for c in pct_cols:
            cell = ws.cell(row=row, column=c)
            if isinstance(cell.value, float):
                cell.number_format = "0.0%"
    return first, row


def write_history_xlsx(path: Path, conn, f: h.HistoryFilter, max_episodes: int = 5000,
                       max_thumbnails: int = 200) -> Path:
    """Write the compliance report of filter ``f`` (a :class:`core.history.HistoryFilter`)
    to ``path``; at most ``max_episodes`` episode rows (worst first: critical, then longest),
    the first ``max_thumbnails`` with an embedded thumbnail."""
    k = h.kpis(conn, f)
    prov = h.provenance(conn, f)
    total_eps = h.count_episodes(conn, f)
    lines = [
        ("Period", f"{f.start.isoformat()} to {f.end.isoformat()}"),
        ("Filters", f.describe()),
        ("Models", ", ".join(prov.models) or "none recorded in this period"),
        ("Rule versions", ", ".join(prov.rule_versions) or "none recorded in this period"),
        ("Compliance basis", k.basis_note),
        ("Generated", now()),
    ]
    wb = Workbook()
    ws = wb.active
    ws.title = "Summary"
    _header(ws, "GloveWatch compliance report", lines)
    t = k.total
    _table(ws, ("KPI", "Value"), [
        ("Compliance", _pct(t.compliance)),
        ("Episodes (dismissed left out)", t.episodes),
        ("Critical episodes", t.critical),
        ("Dismissed as false alarm", t.dismissed),
        ("Minutes monitored", round(t.minutes, 1)),
    ], pct_cols=(2,))
    ws.append([])
    ws.append(["Per station and shift"])
    ws.cell(row=ws.max_row, column=1).font = Font(bold=True, size=12)
    _table(ws, ("Station", "Shift", "Compliance", "Basis", "Minutes monitored",
                "Gloved hand-s", "Bare hand-s", "Hand detections", "Episodes", "Critical"),
           [(*s.key, _pct(s.compliance), s.basis or "no hands seen", round(s.minutes, 1),
             s.gloved_s, s.bare_s, s.gloved_n + s.bare_n, s.episodes, s.critical)
            for s in h.station_shift(conn, f)], pct_cols=(3,))
    ws.append([])
    ws.append(["Per station"])
    ws.cell(row=ws.max_row, column=1).font = Font(bold=True, size=12)
    stations = h.per_station(conn, f)
    st_first, st_last = _table(
        ws, ("Station", "Compliance", "Basis", "Minutes monitored", "Episodes", "Critical"),
        [(s.key[0], _pct(s.compliance), s.basis or "no hands seen", round(s.minutes, 1),
          s.episodes, s.critical) for s in stations], pct_cols=(2,))
    _fit_columns(ws)
    if stations:
        bar = BarChart()
        bar.title, bar.y_axis.title = "Episodes per station", "episodes"
        bar.add_data(Reference(ws, min_col=5, min_row=st_first, max_row=st_last),
                     titles_from_data=True)
        bar.set_categories(Reference(ws, min_col=1, min_row=st_first + 1, max_row=st_last))
        bar.width, bar.height = 18, 8
        ws.add_chart(bar, "L2")

    tr = wb.create_sheet("Trend")
    _header(tr, "Daily trend", lines[:4])
    days = h.trend(conn, f, "day")
    tr_first, tr_last = _table(
        tr, ("Day", "Compliance", "Episodes", "Critical", "Minutes monitored"),
        [(s.key[0], s.compliance, s.episodes, s.critical, round(s.minutes, 1)) for s in days],
        pct_cols=(2,))
    _fit_columns(tr)
    line = LineChart()
    line.title, line.y_axis.title = "Compliance per day (gaps: no hands seen)", "compliance"
    line.y_axis.number_format = "0%"
    line.add_data(Reference(tr, min_col=2, min_row=tr_first, max_row=tr_last),
                  titles_from_data=True)
    line.set_categories(Reference(tr, min_col=1, min_row=tr_first + 1, max_row=tr_last))
    line.width, line.height = 24, 9
    tr.add_chart(line, "H2")
    eps_chart = BarChart()
    eps_chart.title = "Episodes per day"
    eps_chart.add_data(Reference(tr, min_col=3, min_row=tr_first, max_row=tr_last),
                       titles_from_data=True)
    eps_chart.set_categories(Reference(tr, min_col=1, min_row=tr_first + 1, max_row=tr_last))
    eps_chart.width, eps_chart.height = 24, 9
    tr.add_chart(eps_chart, "H22")

    es = wb.create_sheet("Episodes")
    shown = min(total_eps, max_episodes)
    _header(es, "Episodes", lines[:4] + [
        ("Rows", f"{shown} of {total_eps} episodes (critical first, then longest); "
                 f"thumbnails for the first {min(shown, max_thumbnails)}")])
    first, _ = _table(es, ("thumbnail", *EPISODE_HEADER), [])
    es.column_dimensions["A"].width = 14
    for i, ep in enumerate(h.episodes(conn, f, limit=max_episodes, order="critical first")):
        es.append(["", *_episode_values(ep)])
        row = first + 1 + i
        png = thumbnail_png(ep, 72) if i < max_thumbnails else None
        if png:
            img = XLImage(io.BytesIO(png))
            es.add_image(img, f"A{row}")
            es.row_dimensions[row].height = 58
        elif i < max_thumbnails:
            es.cell(row=row, column=1, value="no image")
    es.freeze_panes = es.cell(row=first + 1, column=2)

    cs = wb.create_sheet("Coverage")
    _header(cs, "Coverage per station and day", lines[:4] + [
        ("Note", "A day with 0 minutes had no camera running: it has no compliance figure.")])
    _table(cs, ("Station", "Day", "Minutes monitored", "Compliance", "Basis", "Episodes"),
           [(c.station, c.day, round(c.stats.minutes, 1),
             _pct(c.stats.compliance) if c.stats.watched_s or c.stats.basis else "no coverage",
             c.stats.basis or "", c.stats.episodes) for c in h.coverage(conn, f)],
           pct_cols=(4,))
    _fit_columns(cs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path
