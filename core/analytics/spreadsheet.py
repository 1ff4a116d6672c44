"""Writing workbooks safely: user text is always text, never a formula.

File names, station names, comments and reviewer names come from users; a cell starting with
``=``, ``+``, ``-``, ``@`` (or a tab / carriage return) would be run as a formula when a
manager opens the file. :func:`cell` stores such text as an explicit string, so Excel and
LibreOffice show it as typed. Every sheet GloveWatch writes goes through :func:`append_row`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: str) -> str:
    """``value`` made inert for CSV readers too: a leading quote before a formula start."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def append_row(ws: Worksheet, values: Sequence[Any]) -> int:
    """Append ``values`` as a row; text that looks like a formula stays text. Returns the
    row number."""
    ws.append([None if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v for v in values])
    row = ws.max_row
    for col, v in enumerate(values, start=1):
        if isinstance(v, str) and v.startswith(FORMULA_STARTS):
            c: Cell = ws.cell(row=row, column=col)
            c.value = v
            c.data_type = "s"  # a string cell, whatever it starts with
    return row


def bold_row(ws: Worksheet, row: int) -> None:
    for c in ws[row]:
        c.font = Font(bold=True)


def fit_columns(ws: Worksheet, max_rows: int = 200) -> None:
    for i, col in enumerate(ws.iter_cols(min_row=1, max_row=min(ws.max_row, max_rows)), start=1):
        width = max((len(str(c.value)) for c in col if c.value is not None), default=8)
        ws.column_dimensions[get_column_letter(i)].width = min(max(width + 2, 8), 60)


def add_table(
    ws: Worksheet,
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    title: str | None = None,
    pct_cols: Sequence[int] = (),
) -> tuple[int, int]:
    """A titled table with a bold, frozen, filterable header; percent format on
    ``pct_cols`` (1-based). Returns (header row, last row)."""
    if title:
        append_row(ws, [title])
        ws.cell(row=ws.max_row, column=1).font = Font(bold=True, size=12)
        ws.append([])
    first = append_row(ws, list(header))
    bold_row(ws, first)
    last = first
    for r in rows:
        last = append_row(ws, list(r))
        for c in pct_cols:
            cell = ws.cell(row=last, column=c)
            if isinstance(cell.value, float):
                cell.number_format = "0.0%"
    return first, last


def write_workbook(
    path: Path, sheets: Sequence[tuple[str, str | None, Sequence[str], Iterable[Sequence[Any]]]]
) -> Path:
    """A workbook of simple tables: ``(sheet name, title, header, rows)`` each."""
    wb = Workbook()
    for i, (name, title, header, rows) in enumerate(sheets):
        ws = wb.active if i == 0 else wb.create_sheet()
        assert ws is not None
        ws.title = name[:31]
        first, last = add_table(ws, header, rows, title)
        ws.freeze_panes = ws.cell(row=first + 1, column=1)
        ws.auto_filter.ref = f"A{first}:{get_column_letter(len(header))}{last}"
        fit_columns(ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path
