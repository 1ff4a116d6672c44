"""CSV/Excel injection (OWASP): hostile user text in every CSV and workbook GloveWatch writes
stays text for readers of every separator, with leading blanks, line breaks or full-width
formula characters."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import date

import openpyxl
import pytest

from core.analytics import history as h
from core.analytics import review
from core.analytics.reports import episodes_csv, write_history_xlsx
from core.analytics.spreadsheet import FORMULA_STARTS, looks_like_formula, safe_text
from core.pipeline.batch import TableRow, write_table_csv
from core.storage.events import EventRow

# What an attacker types as a station, a comment or a file name.
HOSTILE = [
    "=1+1",
    "+SUM(1,1)",
    "-2+3",
    "@SUM(A1)",
    "\tcmd",
    "\r=cmd",
    "=cmd|' /C calc'!A0",
    "|cmd",
    "%0A=1",
    "\uff1dSUM(1,1)",  # full-width =
    "\uff0b1",  # full-width +
    "\uff0d1",  # full-width -
    "\uff20A1",  # full-width @
    '   =HYPERLINK("http://evil.example","x")',
    "\n\n=1+1",
    "Saw 3;=1+1",  # a ';' locale starts a new cell here
    "Saw 3|=1+1",
    "Saw 3\t@SUM(A1)",
    "Saw 3\n+1",
    'x; "=1+1"',
    "a;  \uff1d1",
]
# Cell separators some spreadsheet uses to read a CSV, whatever the writer meant.
SEPARATORS = [",", ";", "|", "\t"]
_BLANKS = ' \t\r\n\u00a0\u3000"'  # and the CSV quote


def _cells_a_reader_sees(text: str) -> list[str]:
    """Every cell of ``text`` as spreadsheets of every locale would split it."""
    out = []
    for sep in SEPARATORS:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=sep):
            for cell in row:
                out += re.split(r"[\r\n]", cell)
    return out


def _dangerous(cells: list[str]) -> list[str]:
    return [c for c in cells if c.lstrip(_BLANKS).startswith(FORMULA_STARTS)]


@pytest.mark.parametrize("value", HOSTILE)
def test_safe_text_leaves_no_cell_that_starts_a_formula(value):
    out = safe_text(value)
    assert out.replace("'", "") == value.replace("'", "")  # only quotes were added
    buf = io.StringIO()
    csv.writer(buf).writerow(["ok", out, 3])
    assert _dangerous(_cells_a_reader_sees(buf.getvalue())) == []
    assert looks_like_formula(value) or not value.lstrip(_BLANKS).startswith(FORMULA_STARTS)


def test_plain_text_is_left_as_typed():
    for value in ("Saw 01", "glove seen", "2026-01-05", "", "a=b", "ok - fine", "3 + 4"):
        assert safe_text(value) == value


@pytest.fixture
def hostile_store(store):
    """Episodes at hostile station names, reviewed with hostile comments and reviewer names."""
    for i, name in enumerate(HOSTILE):
        store.events.insert(
            EventRow(
                station=name,
                started_at=f"2026-01-05 08:{i:02d}:00",
                ended_at=f"2026-01-05 08:{i:02d}:30",
                duration_s=30.0,
                class_name=name,
                severity="warning",
                zone=name,
            )
        )
    f = h.HistoryFilter(date(2026, 1, 5), date(2026, 1, 5))
    for i, ep in enumerate(h.episodes(store, f)):
        review.set_review(store, ep.id, "confirmed", HOSTILE[i], HOSTILE[-1 - i])
    return store, f


def test_the_episode_csv_is_inert_in_every_locale(hostile_store):
    store, f = hostile_store
    text = episodes_csv(store, f)
    assert len(list(csv.DictReader(io.StringIO(text)))) == len(HOSTILE)
    assert _dangerous(_cells_a_reader_sees(text)) == []


def test_the_batch_csv_is_inert_in_every_locale(tmp_path):
    rows = [TableRow(v, 0, "hand", "violation", "violating", 0.9, 1, 2, 3, 4) for v in HOSTILE]
    text = write_table_csv(tmp_path / "results.csv", rows).read_text()
    assert _dangerous(_cells_a_reader_sees(text)) == []


def test_the_history_workbook_holds_no_formula(hostile_store, tmp_path):
    store, f = hostile_store
    path = write_history_xlsx(tmp_path / "r.xlsx", store, f)
    wb = openpyxl.load_workbook(path)
    cells = [c for ws in wb for row in ws.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    found = {c.value for c in cells if isinstance(c.value, str)}
    assert {v for v in HOSTILE if not v.startswith(("\r", "\n"))} <= found  # shown as typed
    with zipfile.ZipFile(path) as zf:
        sheets = [n for n in zf.namelist() if n.startswith("xl/worksheets/sheet")]
        assert sheets and not any("<f>" in zf.read(n).decode() for n in sheets)
