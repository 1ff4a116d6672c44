"""The Excel report and CSV, opened again: sheets, header, numbers, images, charts; user text is
never a formula; the file name says what it covers."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest

from core.analytics import history as h
from core.analytics import review
from core.analytics.reports import EPISODE_HEADER, episodes_csv, report_name, write_history_xlsx
from core.analytics.spreadsheet import FORMULA_STARTS, safe_text, write_workbook
from core.events.rules import Verdict
from core.pipeline.batch import (
    BatchReport,
    FileResult,
    TableRow,
    write_results_xlsx,
    write_table_csv,
)
from core.vision.detector import InferenceParams
from tests.analytics.conftest import record_saw
from tests.helpers import sheet_rows, sheet_table

RANGE = h.HistoryFilter(date(2026, 1, 4), date(2026, 1, 7))  # Sunday to Wednesday


@pytest.fixture
def two_stations(saw, bare_images):
    """The saw recording on Monday plus a second station's recording on Tuesday."""
    record_saw(saw.store, bare_images[1], station="Saw 02", started=datetime(2026, 1, 6, 23, 0, 0))
    return saw.store


def test_workbook_sheets_numbers_images_charts(two_stations, tmp_path):
    store, f = two_stations, RANGE
    path = write_history_xlsx(tmp_path / "r.xlsx", store, f)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Summary", "Trend", "Episodes", "Coverage"]
    summary = sheet_rows(wb["Summary"])
    head = {r[0]: r[1] for r in summary[:8] if r[0]}
    assert head["Period"] == "2026-01-04 to 2026-01-07"
    assert "stations: all" in head["Filters"]
    assert head["Models"] == "gloves-yolo11n-wide.pt (abababababab)"
    assert head["Rule versions"] == "Saw 01: v1, Saw 02: v1"
    assert "hand-time" in head["Compliance basis"]
    kv = {r[0]: r[1] for r in sheet_table(summary, ("KPI", "Value"))}
    k = h.kpis(store, f)
    assert kv["Compliance"] == pytest.approx(k.compliance)
    assert kv["Episodes (dismissed left out)"] == k.total.episodes == 4
    assert kv["Critical episodes"] == k.total.critical == 2
    assert kv["Minutes monitored"] == pytest.approx(round(k.total.minutes, 1))
    cells = {(r[0], r[1]): r for r in sheet_table(summary, ("Station", "Shift"))}
    assert set(cells) == {("Saw 01", "Early"), ("Saw 02", "Night")}
    for s in h.station_shift(store, f):
        assert cells[s.key][2] == pytest.approx(s.compliance)
        assert cells[s.key][8] == s.episodes
    es = wb["Episodes"]
    rows = sheet_table(sheet_rows(es), ("thumbnail", *EPISODE_HEADER[:3]))
    assert len(rows) == h.count_episodes(store, f) == 4
    assert [r[8] for r in rows[:2]] == ["critical", "critical"]  # critical first
    assert len(es._images) == 4  # every episode's evidence embedded
    cov = sheet_table(sheet_rows(wb["Coverage"]), ("Station", "Day"))
    assert len(cov) == 2 * 4
    idle = [r for r in cov if r[2] == 0]
    assert len(idle) == 6 and all(r[3] == "no coverage" for r in idle)  # never 100 %
    monday = next(r for r in cov if r[:2] == ("Saw 01", "2026-01-05"))
    assert monday[3] == pytest.approx(12 / 16.4) and monday[5] == 2
    assert len(wb["Summary"]._charts) == 1 and len(wb["Trend"]._charts) == 2
    trend = sheet_table(sheet_rows(wb["Trend"]), ("Day", "Compliance"))
    assert [r[0] for r in trend] == ["2026-01-04", "2026-01-05", "2026-01-06", "2026-01-07"]
    assert trend[0][1] is None and trend[1][1] == pytest.approx(12 / 16.4)


def test_episode_rows_and_thumbnails_are_capped(two_stations, tmp_path):
    wb = openpyxl.load_workbook(
        write_history_xlsx(
            tmp_path / "r.xlsx", two_stations, RANGE, max_episodes=3, max_thumbnails=1
        )
    )
    es = wb["Episodes"]
    head = {r[0]: r[1] for r in sheet_rows(es)[:8] if r[0]}
    assert head["Rows"].startswith("3 of 4 episodes")
    assert len(sheet_table(sheet_rows(es), ("thumbnail", "id"))) == 3 and len(es._images) == 1


def test_dismissed_episodes_are_reported_as_such(saw, tmp_path):
    f = h.HistoryFilter(saw.day, saw.day)
    eid = h.episodes(saw.store, f)[0].id
    review.set_review(saw.store, eid, "dismissed", "glove seen on zoom", "Ana")
    wb = openpyxl.load_workbook(write_history_xlsx(tmp_path / "r.xlsx", saw.store, f))
    kv = {r[0]: r[1] for r in sheet_table(sheet_rows(wb["Summary"]), ("KPI", "Value"))}
    assert kv["Episodes (dismissed left out)"] == 1 and kv["Dismissed as false alarm"] == 1
    assert kv["Compliance"] == pytest.approx(h.kpis(saw.store, f).compliance)
    row = next(
        r for r in sheet_table(sheet_rows(wb["Episodes"]), ("thumbnail", "id")) if r[1] == eid
    )
    assert row[10:13] == ("dismissed", "glove seen on zoom", "Ana")


def test_empty_range_report_and_csv(saw, tmp_path):
    f = h.HistoryFilter(date(2001, 1, 1), date(2001, 1, 2))
    wb = openpyxl.load_workbook(write_history_xlsx(tmp_path / "e.xlsx", saw.store, f))
    kv = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True) if r[0]}
    assert kv["Compliance"] == "no data" and kv["Episodes (dismissed left out)"] == 0
    assert kv["Models"] == "none recorded in this period"
    assert "no compliance" in kv["Compliance basis"]
    text = episodes_csv(saw.store, f)
    assert next(csv.reader(io.StringIO(text))) == list(EPISODE_HEADER)
    assert len(text.strip().splitlines()) == 1


def test_csv_matches_filter(two_stations):
    f = h.HistoryFilter(RANGE.start, RANGE.end, stations=("Saw 02",))
    rows = list(csv.DictReader(io.StringIO(episodes_csv(two_stations, f))))
    assert len(rows) == 2 and {r["station"] for r in rows} == {"Saw 02"}
    assert {r["severity"] for r in rows} == {"critical", "warning"}
    assert all(r["model"].startswith("gloves-yolo11n-wide.pt (") for r in rows)
    crit = h.HistoryFilter(RANGE.start, RANGE.end, severities=("critical",))
    assert len(list(csv.DictReader(io.StringIO(episodes_csv(two_stations, crit))))) == 2


INJECTIONS = [
    '=HYPERLINK("http://evil.example","click")',
    "+SUM(1,1)",
    "-2+3",
    "@SUM(A1)",
    "\tcmd",
    "=cmd|' /C calc'!A0",
]


def _text_cells(wb) -> dict[str, str]:
    """Every cell value that starts like a formula, with its data type."""
    return {
        c.value: c.data_type
        for ws in wb
        for row in ws.iter_rows()
        for c in row
        if isinstance(c.value, str) and c.value.startswith(FORMULA_STARTS)
    }


def test_user_text_in_the_history_report_stays_text(store, bare_images, tmp_path):
    stations = INJECTIONS[:4]
    for i, name in enumerate(stations):
        record_saw(store, bare_images[0], station=name, started=datetime(2026, 1, 5, 8 + i, 0, 0))
    f = h.HistoryFilter(date(2026, 1, 5), date(2026, 1, 5))
    eps = h.episodes(store, f)
    review.set_review(store, eps[0].id, "dismissed", "-1+2", "=evil reviewer")
    review.set_review(store, eps[1].id, "confirmed", INJECTIONS[5], "@bob")
    wb = openpyxl.load_workbook(write_history_xlsx(tmp_path / "r.xlsx", store, f))
    cells = _text_cells(wb)
    for value in [*stations, "-1+2", INJECTIONS[5], "=evil reviewer", "@bob"]:
        assert cells.get(value) == "s", value  # stored as typed, as a string
    assert not [c for ws in wb for row in ws.iter_rows() for c in row if c.data_type == "f"]
    per_station = [r[0] for r in sheet_table(sheet_rows(wb["Summary"]), ("Station", "Compliance"))]
    assert sorted(per_station) == sorted(stations)
    text = episodes_csv(store, f)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["station"] for r in rows} == {"'" + s for s in stations}
    assert {r["reviewed_by"] for r in rows} >= {"'=evil reviewer", "'@bob"}


def test_safe_text_quotes_only_formula_starts():
    for value in INJECTIONS:
        assert safe_text(value) == "'" + value
    for value in ("Saw 01", "glove seen", "2026-01-05", "", "a=b"):
        assert safe_text(value) == value


def test_batch_results_workbook_and_csv_keep_file_names_as_text(tmp_path):
    name = "=cmd|' /C calc'!A0.jpg"
    row = TableRow(name, 0, "hand", "violation", "violating", 0.91, 1, 2, 30, 40)
    report = BatchReport(
        7,
        tmp_path,
        "@station",
        "rule v1: gloves required (any glove)",
        "gloves-yolo11n-wide.pt",
        [
            FileResult(name, "image", Verdict.VIOLATION, 0, 1, [row]),
            FileResult("+plus.png", "image", error="+plus.png: unreadable"),
        ],
    )
    path = write_results_xlsx(tmp_path / "results.xlsx", report, InferenceParams())
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Summary", "Verdicts", "Detections"]
    cells = _text_cells(wb)
    for value in (name, "@station", "+plus.png", "+plus.png: unreadable"):
        assert cells.get(value) == "s", value
    assert not [c for ws in wb for r in ws.iter_rows() for c in r if c.data_type == "f"]
    verdicts = sheet_table(sheet_rows(wb["Verdicts"]), ("file", "kind"))
    assert [(r[0], r[2]) for r in verdicts] == [(name, "violation"), ("+plus.png", "error")]
    out = write_table_csv(tmp_path / "results.csv", report.rows)
    rows = list(csv.reader(out.open()))
    assert rows[1][0] == "'" + name and rows[1][4] == "violating"


def test_write_workbook_keeps_formula_like_text(tmp_path):
    path = write_workbook(
        tmp_path / "w.xlsx",
        [("Files", "=title", ("file", "n"), [("=1+1", 1), ("-5", 2), ("plain", 3)])],
    )
    ws = openpyxl.load_workbook(path)["Files"]
    values = {c.value: c.data_type for r in ws.iter_rows() for c in r if c.value is not None}
    assert values["=1+1"] == "s" and values["-5"] == "s" and values["=title"] == "s"
    assert values[1] == "n" and values["plain"] == "s"


def test_report_name_says_what_it_covers():
    plain = h.HistoryFilter(date(2026, 1, 5), date(2026, 1, 11))
    assert report_name(plain) == "glovewatch-report-2026-01-05_2026-01-11.xlsx"
    narrow = h.HistoryFilter(
        date(2026, 1, 5),
        date(2026, 1, 5),
        stations=("Saw 01", "Lathe"),
        shifts=("Night",),
        severities=("critical",),
        reviews=("confirmed",),
        classes=("hand",),
    )
    name = report_name(narrow)
    assert name.startswith("glovewatch-report-2026-01-05_2026-01-05") and name.endswith(".xlsx")
    for part in ("Saw 01", "Lathe", "Night", "critical", "confirmed", "hand"):
        assert part in name
    assert name != report_name(h.HistoryFilter(date(2026, 1, 5), date(2026, 1, 5)))
    long = h.HistoryFilter(
        date(2026, 1, 5), date(2026, 1, 5), stations=tuple(f"Station {i:03d}" for i in range(60))
    )
    assert len(report_name(long)) <= 180


def test_report_name_is_a_plain_file_name(tmp_path):
    """A station name with a slash must not turn the report's name into a path."""
    f = h.HistoryFilter(date(2026, 1, 5), date(2026, 1, 5), stations=("Band saw/3", "..\\x"))
    name = report_name(f)
    assert "/" not in name and "\\" not in name and "Band saw" in name
    assert Path(name).name == name
    (tmp_path / name).write_bytes(b"")  # usable as a file name as it is


@pytest.mark.slow
def test_report_of_synthetic_history_and_real_batch(history_home, store, tmp_path):
    """The original report check on a week of synthetic history plus today's real batch."""
    f = h.HistoryFilter(date.today() - timedelta(days=8), date.today())
    wb = openpyxl.load_workbook(write_history_xlsx(tmp_path / "r.xlsx", store, f))
    summary = sheet_rows(wb["Summary"])
    head = {r[0]: r[1] for r in summary[:8] if r[0]}
    assert "gloves-yolo11n-wide.pt" in head["Models"]
    assert "Saw 01: v" in head["Rule versions"]
    kv = {r[0]: r[1] for r in sheet_table(summary, ("KPI", "Value"))}
    k = h.kpis(store, f)
    assert kv["Compliance"] == pytest.approx(k.compliance)
    assert kv["Episodes (dismissed left out)"] == k.total.episodes
    cells = {(r[0], r[1]): r for r in sheet_table(summary, ("Station", "Shift"))}
    for s in h.station_shift(store, f):
        assert cells[s.key][8] == s.episodes
        if s.compliance is not None:
            assert cells[s.key][2] == pytest.approx(s.compliance)
    es = wb["Episodes"]
    assert len(sheet_table(sheet_rows(es), ("thumbnail", "id"))) == h.count_episodes(store, f)
    today = h.HistoryFilter(date.today(), date.today(), stations=("Saw 01",))
    assert len(es._images) == h.count_episodes(store, today)  # the batch's evidence images
    cov = sheet_table(sheet_rows(wb["Coverage"]), ("Station", "Day"))
    idle = [r for r in cov if r[2] == 0 and not r[4]]
    assert idle and all(r[3] == "no coverage" for r in idle)
    trend = sheet_table(sheet_rows(wb["Trend"]), ("Day", "Compliance"))
    assert len(trend) == 9
