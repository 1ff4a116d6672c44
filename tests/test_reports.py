"""The Excel report and CSV, opened again with openpyxl: sheets, header, numbers, images, charts."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta

import openpyxl
import pytest

from core import history as h
from core import store as st
from core.reports import episodes_csv, write_history_xlsx


@pytest.fixture
def conn(history_home):
    """A small synthetic history ending yesterday plus today's real batch episodes."""
    c = st.connect()
    yield c
    c.close()


def _rows(ws):
    return list(ws.iter_rows(values_only=True))


def test_workbook_sheets_numbers_images_charts(conn, tmp_path):
    f = h.HistoryFilter(date.today() - timedelta(days=8), date.today())
    path = write_history_xlsx(tmp_path / "r.xlsx", conn, f)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Summary", "Trend", "Episodes", "Coverage"]
    summary = _rows(wb["Summary"])
    head = {r[0]: r[1] for r in summary[:8] if r[0]}
    assert head["Period"] == f"{f.start} to {f.end}"
    assert "stations: all" in head["Filters"]
    assert "gloves-yolo11n.pt" in head["Models"]
    assert "Saw 01: v" in head["Rule versions"]
    assert "hand-time" in head["Compliance basis"]
    kv = {r[0]: r[1] for r in summary if r[0] and r[1] is not None}
    k = h.kpis(conn, f)
    assert kv["Compliance"] == pytest.approx(k.compliance)
    assert kv["Episodes (dismissed left out)"] == k.total.episodes
    assert kv["Critical episodes"] == k.total.critical
    # per station and shift table matches the query
    hdr = next(i for i, r in enumerate(summary) if r[:2] == ("Station", "Shift"))
    cells = {(r[0], r[1]): r for r in summary[hdr + 1:] if r[0] and r[1]
             and r[0] != "Station"}
    for s in h.station_shift(conn, f):
        row = cells[s.key]
        assert row[8] == s.episodes
        if s.compliance is not None:
            assert row[2] == pytest.approx(s.compliance)
    # episodes: every one listed, real evidence embedded as thumbnails
    es = wb["Episodes"]
    ids = [r[1] for r in _rows(es) if isinstance(r[1], int)]
    assert len(ids) == h.count_episodes(conn, f)
    assert len(es._images) == 3  # the three real batch episodes have evidence images
    # coverage: a day without a camera says so, never 100 %
    cov = _rows(wb["Coverage"])
    idle = [r for r in cov if r[0] in ("Saw 01", "Saw 02") and r[2] == 0 and not r[4]]
    assert idle and all(r[3] == "no coverage" for r in idle)  # Sundays are off in synth
    today = [r for r in cov if r[0] == "Saw 01" and r[1] == date.today().isoformat()]
    assert today and today[0][3] == pytest.approx(
        h.coverage(conn, h.HistoryFilter(date.today(), date.today(), stations=("Saw 01",))
                   )[0].stats.compliance)
    assert len(wb["Summary"]._charts) == 1 and len(wb["Trend"]._charts) == 2
    trend = [r for r in _rows(wb["Trend"]) if r[0] and str(r[0]).startswith("20")]
    assert len(trend) == 9


def test_empty_range_report_and_csv(conn, tmp_path):
    f = h.HistoryFilter(date(2001, 1, 1), date(2001, 1, 2))
    wb = openpyxl.load_workbook(write_history_xlsx(tmp_path / "e.xlsx", conn, f))
    kv = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True) if r[0]}
    assert kv["Compliance"] == "no data" and kv["Episodes (dismissed left out)"] == 0
    assert kv["Models"] == "none recorded in this period"
    text = episodes_csv(conn, f)
    assert text.strip() == ",".join(next(csv.reader(io.StringIO(text))))


def test_csv_matches_filter(conn):
    f = h.HistoryFilter(date.today(), date.today(), stations=("Saw 01",))
    rows = list(csv.DictReader(io.StringIO(episodes_csv(conn, f))))
    assert len(rows) == 3 and {r["station"] for r in rows} == {"Saw 01"}
    assert all(r["evidence_path"].endswith(".jpg") for r in rows)


def test_report_cli(conn, tmp_path, capfd):
    from core.cli import main

    out = tmp_path / "cli.xlsx"
    today = date.today().isoformat()
    assert main(["report", "--from", today, "--to", today, "--station", "Saw 01",
                 "--out", str(out), "--csv", str(tmp_path / "e.csv"), "--json"]) == 0
    res = json.loads(capfd.readouterr().out.strip().splitlines()[-1])
    assert res["xlsx"] == str(out) and "stations: Saw 01" in res["filter"]
    wb = openpyxl.load_workbook(out)
    assert len(wb["Episodes"]._images) == 3
    assert main(["report", "--from", "2026-13-01", "--to", today, "--out", str(out)]) == 2
