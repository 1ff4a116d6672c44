"""The Batch page under AppTest: real images through the shipped model, bad files explained one
by one, the Excel download, the default backend, refused weights and an unusable data folder."""

from __future__ import annotations

from typing import Any

import openpyxl
from streamlit.runtime.memory_media_file_storage import _calculate_file_id

from core.analytics import history as h
from core.analytics.trials import TrialResults, trial_results
from core.config import TRIAL_STATION, settings
from core.events.rules import StationRule
from core.events.stations import save_rule
from tests.helpers import open_page
from tests.pages.support import malicious_pt, metrics, plain, texts, tiny_png, values

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _batch_page() -> Any:
    return open_page("pages/2_Batch.py", timeout=300)


def _uploader(at: Any) -> Any:
    """The page's file uploader (its key changes with every run)."""
    return next(u for u in at.get("file_uploader") if u.label == "Images and videos")


def _captions(at: Any) -> list[str]:
    """Every caption, alert and image caption the page shows."""
    return texts(at) + [i.caption for el in at.get("image") for i in el.proto.imgs]


def test_batch_page_verdicts_errors_and_excel(gw_home, store, bare_images, gloved_images):
    save_rule(store, StationRule("Bandsaw 3"), "test")
    at = _batch_page()
    assert at.button(key="batch-run").disabled  # nothing uploaded yet
    assert at.selectbox(key="batch-backend").value == "openvino"  # the fastest on a CPU
    at.selectbox(key="batch-backend").set_value("pytorch")
    at.selectbox(key="batch-station").set_value("Bandsaw 3")
    at.slider(key="batch-conf").set_value(0.3)
    bare, gloved = bare_images[0], gloved_images[0]
    _uploader(at).set_value(
        [
            (bare.name, bare.read_bytes(), "image/jpeg"),
            (gloved.name, gloved.read_bytes(), "image/jpeg"),
            ("notes.jpg", b"plain text, not a picture", "image/jpeg"),
            ("dot.png", tiny_png(), "image/png"),
        ]
    )
    at.run()
    at.button(key="batch-run").click().run()
    assert not at.exception

    m = metrics(at)
    assert (m["Files"], m["Compliant"], m["With a violation"], m["Failed"]) == ("4", "1", "1", "2")
    errors = [plain(e) for e in values(at.error)]
    assert len(errors) == 2, errors  # one for each bad file, nothing else
    assert any(e.startswith("notes.jpg: not an image") for e in errors), errors
    assert any(e.startswith("dot.png: 1x1 pixels is too small") for e in errors), errors
    verdicts = [plain(c) for c in values(at.caption)]
    assert f"⛔ {bare.name}: violation" in " ".join(verdicts)
    assert f"✅ {gloved.name}: compliant" in " ".join(verdicts)
    assert len(at.get("image")) == 2  # the two annotated pictures

    table = at.dataframe[0].value
    assert set(table["file"]) == {bare.name, gloved.name}
    assert {"hand", "glove"} <= set(table["class"])
    assert (table["confidence"] >= 0.3).all()  # the chosen threshold was applied

    report = at.session_state["batch-report"]
    assert report.station == "Bandsaw 3"
    session = store.sessions.get(report.session_id)
    assert (session.kind, session.station, session.status) == ("batch", "Bandsaw 3", "finished")
    excel = at.get("download_button")[0]
    assert excel.label == "Download Excel (summary, verdicts, detections)"
    data = report.table_xlsx.read_bytes()
    name = f"glovewatch-batch-{report.session_id}.xlsx"
    assert excel.proto.url.split("/")[-1].split(".")[0] == _calculate_file_id(data, XLSX, name)
    book = openpyxl.load_workbook(report.table_xlsx, read_only=True)
    assert {"Summary", "Verdicts", "Detections"} <= set(book.sheetnames)
    assert "Download CSV" in [b.label for b in at.get("download_button")]

    # what the page says names no server path
    for text in _captions(at):
        assert str(gw_home) not in text and str(settings().home) not in text, text
    assert not _uploader(at).value  # a new run starts with no files chosen


def test_trial_runs_are_kept_apart_and_can_be_deleted(gw_home, store, bare_images):
    at = _batch_page()
    assert at.selectbox(key="batch-station").value == TRIAL_STATION  # the default
    at.selectbox(key="batch-backend").set_value("pytorch")
    bare = bare_images[0]
    _uploader(at).set_value([(bare.name, bare.read_bytes(), "image/jpeg")])
    at.run()
    at.button(key="batch-run").click().run()
    assert not at.exception and not at.error
    assert metrics(at)["With a violation"] == "1"
    assert any("trial run (not counted)" in s for s in values(at.subheader))
    report = at.session_state["batch-report"]
    assert store.sessions.get(report.session_id).station == TRIAL_STATION
    assert store.events.for_session(report.session_id)  # its episode is recorded ...
    today = h.kpis(store, h.today_filter()).total
    assert (today.frames, today.episodes) == (0, 0)  # ... but counted nowhere in the plant
    assert TRIAL_STATION not in {s.name for s in h.stations(store)}
    home = metrics(open_page())
    assert (home["Images checked"], home["Episodes"]) == ("0", "0")
    assert trial_results(store) == TrialResults(images=1, episodes=1)
    assert "1 images or frames checked" in " ".join(values(at.sidebar.caption))

    at.button(key="batch-delete-trials").click().run()
    assert not at.exception
    assert any(s.startswith("Deleted 1 trial run:") for s in values(at.success))
    assert trial_results(store).empty and store.sessions.get(report.session_id) is None
    assert not report.files[0].annotated_path.exists()  # its files went too
    assert "batch-report" not in at.session_state
    assert at.button(key="batch-delete-trials").disabled


def test_refused_weights_are_explained_and_not_kept(gw_home, tmp_path):
    at = _batch_page()
    at.radio(key="batch-src").set_value("Upload weights (.pt)").run()
    marker = tmp_path / "payload-ran"
    trap = malicious_pt(tmp_path / "best.pt", marker)
    at.file_uploader(key="batch-upload").set_value(
        ("best.pt", trap.read_bytes(), "application/octet-stream")
    ).run()
    assert not at.exception
    errors = values(at.error)
    assert len(errors) == 1 and "cannot be used" in errors[0] and "refused" in errors[0], errors
    assert not marker.exists()  # nothing was unpickled
    assert at.button(key="batch-run").disabled
    assert not list(settings().uploads_dir.iterdir())
    at.file_uploader(key="batch-upload").set_value(
        ("fake.pt", b"not a model", "application/octet-stream")
    ).run()
    assert len(at.error) == 1 and "cannot be used" in at.error[0].value
    assert not list(settings().uploads_dir.iterdir())
    evil = "![x](http:evil.example).pt"  # a file name is user text: no Markdown image
    at.file_uploader(key="batch-upload").set_value(
        (evil, b"not a model", "application/octet-stream")
    ).run()
    [error] = values(at.error)
    assert "](http:" not in error and evil in plain(error), error


def test_batch_page_with_unwritable_data_folder(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    monkeypatch.setenv("GLOVEWATCH_HOME", str(blocker))
    at = _batch_page()
    assert any("not writable" in e and "GLOVEWATCH_HOME" in e for e in values(at.error))
    assert not at.get("file_uploader") and not at.button  # the page stops there
    assert blocker.read_text().startswith("a file")  # nothing overwritten
