"""The History page under AppTest over a real store: synthetic history plus real detections of
the shipped model (``history_home``), reviews that show at once, chart axes, exports, the demo
year, and user text that must stay text."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from streamlit.runtime.memory_media_file_storage import _calculate_file_id

from core.analytics import history as h
from core.analytics.review import set_review
from core.analytics.synth import generate
from core.config import settings
from core.events.rules import StationRule
from core.events.stations import delete_station, save_rule
from core.pipeline.batch import BatchInput, run_batch
from core.storage import close_store, open_store
from core.text import slug
from core.vision.detector import InferenceParams
from tests.conftest import saw01_batch
from tests.helpers import open_page
from tests.pages.support import episode_picker, metrics, texts, values
from ui.text import md

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EVIL = "![x](http://evil.example/x.png)"
EVIL_STATION = f"Saw **bold** {EVIL}"


@pytest.fixture(scope="module")
def _built_history(tmp_path_factory, bare_images, gloved_images, default_weights):
    home = tmp_path_factory.mktemp("history") / "gw-home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GLOVEWATCH_HOME", str(home))
        mp.delenv("GLOVEWATCH_DB_URL", raising=False)
        store = open_store()
        generate(store, stations=3, days=8, seconds_rows=10_000, seed=1)
        saw01_batch(store, bare_images, gloved_images, default_weights)
    yield home
    close_store(store)


@pytest.fixture
def history_view(_built_history, monkeypatch):
    """The history of ``history_home`` (8 synthetic days, 3 stations, one real batch session),
    built once for this module: for tests that only look (tests that change it use
    ``history_home``)."""
    monkeypatch.setenv("GLOVEWATCH_HOME", str(_built_history))
    monkeypatch.delenv("GLOVEWATCH_DB_URL", raising=False)
    return _built_history


def _page() -> Any:
    return open_page("pages/3_History.py")


def _count(at: Any) -> int:
    return int(metrics(at)["Episodes"].replace(",", ""))


def _charts(at: Any) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _table(at: Any):
    return next(d.value for d in at.dataframe if "review" in d.value.columns)


def _review_form(at: Any, state: str, comment: str = "") -> None:
    review = next(r for r in at.radio if r.label == "Review")
    review.set_value(state)
    next(t for t in at.text_input if t.label == "Comment").set_value(comment)
    at.button(key="FormSubmitter:review-Save review").click().run()


def test_empty_store_says_so(gw_home):
    at = _page()
    assert any("no monitoring data yet" in t for t in values(at.info))
    assert not at.metric and not at.get("plotly_chart")


def test_page_over_synth_and_real_detections(history_view):
    at = _page()
    assert not at.exception and not at.error
    m = metrics(at)
    assert m["Compliance"].endswith("%") and _count(at) > 3
    assert len(at.get("plotly_chart")) == 5
    captions = " ".join(values(at.caption))
    assert "hand-time" in captions and "Hidden stations keep their history: Saw 03" in captions
    assert "station-days had no camera running" in captions
    table = _table(at)
    real = table[table["station"] == "Saw 01"].head(3)
    assert real["thumbnail"].str.startswith("data:image/png;base64,").all()
    # the newest episode is a real batch one: its redacted evidence frame is shown
    images = at.get("image")
    assert images and "evidence frame" in images[0].proto.imgs[0].caption and not at.warning
    assert "Download episodes CSV" in [b.label for b in at.get("download_button")]


def test_evidence_caption_names_no_server_path(history_view):
    at = _page()
    captions = [img.caption for el in at.get("image") for img in el.proto.imgs]
    assert captions and all(c for c in captions)
    for c in captions:
        assert str(history_view) not in c and "/" not in c and ".jpg" not in c, c
    for t in texts(at):
        assert str(history_view) not in t and str(settings().evidence_dir) not in t, t


def test_dismissed_review_shows_in_table_picker_and_kpis_at_once(history_home, store):
    at = _page()
    eid = list(_table(at)["id"])[1]  # not the newest: the picker must keep it
    episode_picker(at).set_value(eid).run()
    before = _count(at)
    assert _table(at).set_index("id").loc[eid, "review"] == "unreviewed"
    _review_form(at, "dismissed", "glove seen on zoom")
    # the very next render, without another run
    assert not at.exception and not at.error
    assert any(f"#{eid} marked dismissed" in s for s in values(at.success))
    assert _count(at) == before - 1
    assert _table(at).set_index("id").loc[eid, "review"] == "dismissed"
    picker = episode_picker(at)
    assert picker.value == eid  # still the episode just reviewed
    label = next(o for o in picker.options if o.startswith(f"#{eid} "))
    assert label.endswith("dismissed)"), label
    ep = store.events.get(eid)
    assert (ep.review, ep.review_comment, ep.reviewed_by) == (
        "dismissed",
        "glove seen on zoom",
        "local",
    )
    assert any("dismissed by local" in c for c in values(at.caption))  # the review trail


def test_one_day_range_trends_per_hour(history_view):
    at = _page()
    day = date.today() - timedelta(days=1)
    at.sidebar.date_input(key="range").set_value((day, day)).run()
    assert not at.exception
    assert "One day is shown per hour." in values(at.caption)
    trend = _charts(at)[0]
    xs = trend["data"][0]["x"]
    assert xs == [f"{h:02d}:00" for h in range(24)], xs
    assert trend["layout"]["xaxis"]["type"] == "category"
    assert trend["layout"]["xaxis"]["title"]["text"] == "hour"


def test_compliance_axis_starts_at_zero_unless_zoomed(history_view):
    at = _page()
    for fig in (_charts(at)[0], _charts(at)[2]):  # trend and hour-of-day profile
        axis = fig["layout"]["yaxis"]
        assert axis["range"] == [0, 1.02] and axis["title"]["text"] == "compliance"
    at.toggle(key="zoom").set_value(True).run()
    for fig in (_charts(at)[0], _charts(at)[2]):
        axis = fig["layout"]["yaxis"]
        assert "range" not in axis and "zoomed" in axis["title"]["text"]


def test_episode_count_axes_have_whole_number_ticks(history_view):
    at = _page()
    trend, _, hours, top, _ = _charts(at)
    for fig in (trend, hours):
        axis = fig["layout"]["yaxis2"]
        assert axis["title"]["text"] == "episodes" and axis["tickformat"] == "d"
        assert isinstance(axis["dtick"], int) and axis["dtick"] >= 1
    assert top["layout"]["xaxis"]["tickformat"] == "d"
    assert top["layout"]["xaxis"]["title"]["text"] == "episodes"


def test_range_without_data_and_filters(history_view):
    at = _page()
    at.sidebar.date_input(key="range").set_value((date(2001, 1, 1), date(2001, 1, 31))).run()
    assert not at.exception
    assert any("No data from 2001-01-01 to 2001-01-31" in t for t in values(at.warning))
    assert not at.metric
    at.sidebar.date_input(key="range").set_value((date.today(), date.today()))
    at.sidebar.multiselect(key="severities").set_value(["critical"])
    at.run()
    assert not at.exception
    assert any(md("severity: critical") in t for t in values(at.caption))


def test_excel_report_is_named_after_the_filters(history_view):
    at = _page()
    at.sidebar.multiselect(key="stations").set_value(["Saw 01"])
    at.sidebar.multiselect(key="severities").set_value(["warning"]).run()
    next(b for b in at.button if b.label == "Build Excel report").click().run()
    assert not at.exception
    name, data = at.session_state["xlsx"]
    assert name.startswith("glovewatch-report-") and name.endswith(".xlsx")
    assert "saw" in name.lower() and "01" in name and "warning" in name, name
    start, end = at.sidebar.date_input(key="range").value
    assert start.isoformat() in name and end.isoformat() in name
    button = next(b for b in at.get("download_button") if b.label == "Download Excel report")
    # the download's file id is the hash of its bytes, type and file name: the name is this one
    assert button.proto.url.split("/")[-1].split(".")[0] == _calculate_file_id(data, XLSX, name)
    assert md(name) in values(at.caption)
    assert (settings().exports_dir / slug(name, 180)).is_file()


@pytest.mark.slow
def test_corrupt_evidence_is_explained(history_home, store):
    at = _page()
    eid = episode_picker(at).value
    path = store.events.get(eid).evidence_path
    with open(path, "wb") as fh:
        fh.write(b"\xff\xd8\xff garbage")
    at.run()
    assert any("unreadable" in t for t in values(at.warning))
    assert not any(path in t for t in texts(at))


@pytest.mark.slow
def test_retention_from_the_page(history_home):
    at = _page()
    at.number_input(key="keep_days").set_value(3).run()
    button = next(b for b in at.button if b.label == "Run retention now")
    assert button.disabled  # not without the confirmation
    at.checkbox(key="retention_sure").check().run()
    next(b for b in at.button if b.label == "Run retention now").click().run()
    assert not at.exception
    assert any("Removed data older than" in t for t in values(at.success))
    assert any("kept 3 days" in t for t in values(at.caption))


def test_store_from_a_newer_version_is_refused(gw_home):
    import sqlite3

    from core.storage.migrations import SCHEMA_VERSION

    gw_home.mkdir(parents=True)
    conn = sqlite3.connect(gw_home / "glovewatch.sqlite")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    at = _page()
    assert any("newer than this GloveWatch" in t for t in values(at.error))
    assert not at.metric


def test_demo_switch_shows_the_demo_year(gw_home, store, monkeypatch):
    from core.analytics import demo

    monkeypatch.setattr(demo, "DEMO_STATIONS", 3)
    monkeypatch.setattr(demo, "DEMO_DAYS", 20)
    monkeypatch.setattr(demo, "DEMO_SECONDS_ROWS", 2_000)
    at = _page()
    assert any("no monitoring data yet" in t for t in values(at.info))
    at.sidebar.toggle(key="demo").set_value(True).run()
    assert not at.exception and not at.error
    assert any("Showing **demo data**" in t for t in values(at.info))
    assert any("Demo year generated" in t for t in values(at.sidebar.success))
    yesterday = date.today() - timedelta(days=1)
    first = yesterday - timedelta(days=19)
    assert any(f"Data in the store: {first} to {yesterday}" in c for c in values(at.caption))
    demo_stations = {s.name for s in h.stations(open_store(str(demo.demo_path())))}
    assert len(demo_stations) == 3 + 1  # and the bench where batch photos were checked
    options = at.sidebar.multiselect(key="stations-demo").options
    assert {o.removesuffix(" (hidden)") for o in options} == demo_stations
    assert _count(at) > 0 and len(at.get("plotly_chart")) == 5
    at.run()  # generated once only
    assert not at.sidebar.success and _count(at) > 0
    assert store.bulk.is_empty()  # nothing mixed into the plant's store
    at.sidebar.toggle(key="demo").set_value(False).run()
    assert any("no monitoring data yet" in t for t in values(at.info))


@pytest.mark.slow
def test_user_text_is_shown_literally(history_home, store, bare_images, default_weights):
    save_rule(store, StationRule(EVIL_STATION), "test")
    run_batch(
        [BatchInput.from_path(bare_images[5])],
        default_weights,
        InferenceParams(),
        station=EVIL_STATION,
        backend="pytorch",
        store=store,
    )
    at = _page()
    eid = episode_picker(at).value
    assert store.events.get(eid).station == EVIL_STATION  # the newest episode
    comment = f"**bold** {EVIL}"
    set_review(store, eid, "confirmed", comment, "ana **x**")
    delete_station(store, EVIL_STATION, "test")  # hidden stations are named in a caption
    at.sidebar.multiselect(key="stations").set_value([EVIL_STATION]).run()
    assert not at.exception and not at.error
    shown = texts(at)
    for raw in (EVIL, "**bold**", "**x**"):
        assert not any(raw in t for t in shown), (raw, [t for t in shown if raw in t])
    assert any(md(EVIL_STATION) in t for t in values(at.markdown))  # the episode detail
    assert any(md(comment) in t and md("ana **x**") in t for t in values(at.caption))
    assert any(
        t.startswith("Hidden stations keep their history:") and md(EVIL_STATION) in t
        for t in values(at.caption)
    )
    assert any(md(EVIL_STATION) in t for t in values(at.caption))  # the filter line
    urls = [img.url for el in at.get("image") for img in el.proto.imgs]
    assert urls and not any("evil.example" in u for u in urls)
    # widget labels and options are plain text; the table holds the text as typed
    assert _table(at).set_index("id").loc[eid, "comment"] == comment


def test_home_history_excel_and_csv_show_the_same_figures(gw_home, store, tmp_path):
    """One store with camera time, photos, episodes and a dismissed one today: the four
    figures read the same on Home, History, the Excel summary and both CSVs."""
    import csv
    import io

    import openpyxl

    from core.analytics.reports import episodes_csv, summary_csv, write_history_xlsx
    from core.storage.sessions import ResultRow, SessionInfo
    from tests.helpers import sheet_rows, sheet_table

    f = h.today_filter()
    generate(store, stations=2, days=3, seconds_rows=2_000, seed=3, end=f.start)
    sid = store.sessions.start(
        SessionInfo("batch", "photos", "Saw 01", "m.pt", "ab" * 32, 0.25, 0.7, 640)
    )
    for i in range(3):
        store.sessions.add_result(sid, ResultRow(source=f"p{i}.jpg", compliant=1, violating=i % 2))
    today_eps = h.episodes(store, f)
    assert len(today_eps) > 2
    set_review(store, today_eps[0].id, "dismissed", "a glove", "ana")

    home = metrics(open_page())
    at = _page()
    at.sidebar.date_input(key="range").set_value((f.start, f.end)).run()
    history = metrics(at)
    labels = {"Compliance", "Episodes", "Images checked", "Time monitored"}
    assert {k: history[k] for k in labels} == {k: home[k] for k in labels}
    assert int(home["Images checked"]) == 3 and home["Time monitored"].endswith((" h", " min"))

    book = openpyxl.load_workbook(write_history_xlsx(tmp_path / "r.xlsx", store, f))
    excel = {r[0]: r[2] for r in sheet_table(sheet_rows(book["Summary"]), ("KPI", "Value"))}
    assert excel["Compliance"] == home["Compliance"]
    assert excel["Episodes (dismissed left out)"] == home["Episodes"]
    assert excel["Images checked"] == home["Images checked"]
    assert excel["Minutes monitored"] == home["Time monitored"]
    summary = {
        r["figure"]: r["shown as"] for r in csv.DictReader(io.StringIO(summary_csv(store, f)))
    }
    assert {k: summary[k] for k in labels} == {k: home[k] for k in labels}
    rows = list(csv.DictReader(io.StringIO(episodes_csv(store, f))))
    assert sum(r["review"] != "dismissed" for r in rows) == int(home["Episodes"].replace(",", ""))
    table_note = [c for c in values(at.caption) if c.startswith("Showing ")]
    assert any(f": {home['Episodes']} counted in the figures" in c for c in table_note)


def test_demo_switch_moves_the_range_into_the_demo_year(gw_home, store, monkeypatch):
    """The plant shows today; the demo year ends yesterday: switching shows its charts and its
    drawn evidence at once, without retyping dates, and switching back shows today again."""
    from core.analytics import demo
    from core.storage.sessions import ResultRow, SessionInfo

    monkeypatch.setattr(demo, "DEMO_STATIONS", 3)
    monkeypatch.setattr(demo, "DEMO_DAYS", 60)
    monkeypatch.setattr(demo, "DEMO_SECONDS_ROWS", 2_000)
    monkeypatch.setattr(demo, "DEMO_EVIDENCE", 20)
    sid = store.sessions.start(
        SessionInfo("batch", "photo", "Saw 01", "m.pt", "ab" * 32, 0.25, 0.7, 640)
    )
    store.sessions.add_result(sid, ResultRow(source="p.jpg", compliant=1))
    at = _page()
    today = h.today_filter().start
    assert at.sidebar.date_input(key="range").value == (today, today)
    at.sidebar.toggle(key="demo").set_value(True).run()
    assert not at.exception and not at.error and not at.warning
    yesterday = today - timedelta(days=1)
    demo_range = at.sidebar.date_input(key="range-demo").value  # its own picker, so the
    assert demo_range == (yesterday - timedelta(days=29), yesterday)  # browser shows it too
    assert len(at.get("plotly_chart")) == 5 and _count(at) > 0
    images = at.get("image")
    assert images and "evidence frame" in images[0].proto.imgs[0].caption  # drawn, not a person
    at.sidebar.toggle(key="demo").set_value(False).run()
    assert at.sidebar.date_input(key="range").value == (today, today)
    assert metrics(at)["Images checked"] == "1"
