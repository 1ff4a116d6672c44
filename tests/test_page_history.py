"""The History page under AppTest, over a real store: core.synth history plus real detections
of the shipped model (batch session), and the bad inputs the page must explain."""

from __future__ import annotations

import sqlite3
from datetime import date

from streamlit.testing.v1 import AppTest

from core import store as st
from tests.conftest import ROOT
from tests.helpers import open_page


def _history_page() -> AppTest:
    return open_page("pages/3_History.py")


def _texts(elements) -> list[str]:
    return [e.value for e in elements]


def test_empty_store_says_so(gw_home):
    at = _history_page()
    assert any("no monitoring data yet" in t for t in _texts(at.info))
    assert not at.metric


def test_page_over_synth_and_real_detections(history_home):
    at = _history_page()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Compliance"].endswith("%") and int(metrics["Episodes"].replace(",", "")) > 3
    assert len(at.get("plotly_chart")) == 5
    captions = " ".join(_texts(at.caption))
    assert "hand-time" in captions and "Deleted stations keep their history: Saw 03" in captions
    assert "station-days had no camera running" in captions
    table = at.dataframe[0].value
    real = table[table["station"] == "Saw 01"].head(3)
    assert real["thumbnail"].str.startswith("data:image/png;base64,").all()
    # the newest episode is a real batch one: its evidence frame is shown
    images = at.get("image")
    assert images and images[0].captions[0].endswith(".jpg") and not at.warning
    labels = [b.label for b in at.get("download_button")]
    assert "Download episodes CSV" in labels

    # dismiss it as a false alarm: it leaves the figures
    eid = at.selectbox(key="episode").value
    before = int(metrics["Episodes"].replace(",", ""))
    at.radio[1].set_value("dismissed")
    at.text_input[0].set_value("glove seen on zoom")
    at.text_input[1].set_value("Ana")
    at.button[0].click()  # the form's submit button
    at.run()
    assert not at.exception
    assert any(f"#{eid} marked dismissed" in t for t in _texts(at.success))
    conn = st.connect()
    row = conn.execute("SELECT review, review_comment, reviewed_by FROM events WHERE id=?",
                       (eid,)).fetchone()
    assert tuple(row) == ("dismissed", "glove seen on zoom", "Ana")
    at.run()
    after = {m.label: m.value for m in at.metric}
    assert int(after["Episodes"].replace(",", "")) == before - 1

    # Excel report: built on request, then offered for download
    next(b for b in at.button if b.label == "Build Excel report").click().run()
    assert not at.exception
    assert "Download Excel report" in [b.label for b in at.get("download_button")]
    assert list((history_home / "exports").glob("glovewatch-report-*.xlsx"))


def test_range_without_data_and_filters(history_home):
    at = _history_page()
    at.sidebar.date_input(key="range").set_value((date(2001, 1, 1), date(2001, 1, 31))).run()
    assert not at.exception
    assert any("No data from 2001-01-01 to 2001-01-31" in t for t in _texts(at.warning))
    at.sidebar.date_input(key="range").set_value((date.today(), date.today()))
    at.sidebar.multiselect(key="severities").set_value(["critical"])
    at.run()
    assert not at.exception
    assert any("severity: critical" in t for t in _texts(at.caption))


def test_corrupt_evidence_is_explained(history_home):
    conn = st.connect()
    path = conn.execute("SELECT evidence_path FROM events WHERE evidence_path IS NOT NULL"
                        " ORDER BY started_at DESC, id DESC LIMIT 1").fetchone()[0]
    with open(path, "wb") as fh:
        fh.write(b"\xff\xd8\xff garbage")
    at = _history_page()
    assert any("unreadable" in t for t in _texts(at.warning))


def test_retention_from_the_page(history_home):
    at = _history_page()
    at.number_input(key="keep_days").set_value(3).run()
    button = next(b for b in at.button if b.label == "Run retention now")
    assert button.disabled  # not without the confirmation
    at.checkbox(key="retention_sure").check().run()
    next(b for b in at.button if b.label == "Run retention now").click().run()
    assert not at.exception
    assert any("Removed data older than" in t for t in _texts(at.success))
    assert any("kept 3 days" in t for t in _texts(at.caption))


def test_store_from_a_newer_version_is_refused(gw_home):
    gw_home.mkdir(parents=True)
    conn = sqlite3.connect(gw_home / "glovewatch.sqlite")
    conn.execute(f"PRAGMA user_version = {st.SCHEMA_VERSION + 5}")
    conn.close()
    at = AppTest.from_file(str(ROOT / "pages" / "3_History.py"), default_timeout=120).run()
    assert not at.exception
    assert any("newer than this GloveWatch" in t for t in _texts(at.error))
