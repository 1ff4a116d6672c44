"""Writing workbooks and CSV safely: user text is always text, never a formula.

File names, station names, comments and reviewer names come from users; a cell starting with
a formula character (OWASP's ``= + - @``, tab and carriage return, plus ``|`` and ``%`` for
DDE, and the full-width ``＝ ＋ － ＠ ｜ ％`` that East Asian spreadsheets also accept) would be
run as a formula when a manager opens the file, even after leading spaces or line breaks.
Every sheet GloveWatch writes goes through :func:`append_row`, which stores such text as an
explicit string, so Excel and LibreOffice show it as typed. In CSV
(:func:`safe_text`) a quote goes before the formula character; and because a spreadsheet in
a ``;`` locale splits a line at ``;`` (and some at ``|`` or tabs) where a ``,`` CSV keeps one
value, every place where such a reader could start a new cell inside a value is made inert too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

FORMULA_STARTS = tuple("=+-@|%\t\r\n") + tuple("\uff1d\uff0b\uff0d\uff20\uff5c\uff05\u2212")
# Blanks a spreadsheet skips before it decides whether a cell is a formula.
_BLANKS = " \t\r\n\u00a0\u3000\ufeff"
_FORMULA_CHARS = re.escape("".join(c for c in FORMULA_STARTS if c not in _BLANKS))
# The start of a value, or of a cell a reader with another separator (, ; | tab) or a line
# break would begin inside it, then blanks or quotes, then a formula character.
_CELL_START = re.compile(rf"(^|[,;|\t\r\n])([{_BLANKS}\"']*)(?=[{_FORMULA_CHARS}])")


def looks_like_formula(value: str) -> bool:
    """Whether a spreadsheet could read ``value`` (after leading blanks) as a formula."""
    return value.lstrip(_BLANKS).startswith(FORMULA_STARTS) or value.startswith(FORMULA_STARTS)


def safe_text(value: str) -> str:
    """``value`` made inert for CSV readers of any separator: a quote before every formula
    character that could start a cell (at the start, after blanks, or after ``, ; |``, a tab
    or a line break inside the value)."""
    out = _CELL_START.sub(lambda m: f"{m.group(1)}{m.group(2)}'", value)
    return "'" + out if out.startswith(("\t", "\r")) else out  # OWASP: these lead off too


def append_row(ws: Worksheet, values: Sequence[Any]) -> int:
    """Append ``values`` as a row; text that looks like a formula stays text. Returns the
    row number."""
    risky = [isinstance(v, str) and looks_like_formula(v) for v in values]
    ws.append([None if r else v for v, r in zip(values, risky)])
    # the row append just wrote; ws.max_row scans every cell (a year's report: 56 s of max())
    row: int = ws._current_row
    for col, (v, r) in enumerate(zip(values, risky), start=1):
        if r:
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
