from core import store as st
from tests.helpers import open_page


def _batch_page():
    return open_page("pages/2_Batch.py", timeout=300)


def test_batch_page_uploads_and_results(gw_home, bare_images, gloved_images):
    at = _batch_page()
    assert at.button(key="batch-run").disabled  # nothing uploaded yet
    at.text_input(key="batch-station").set_value("bandsaw-3")
    at.slider(key="batch-conf").set_value(0.3)
    at.file_uploader(key="batch-files").set_value([
        (bare_images[0].name, bare_images[0].read_bytes(), "image/jpeg"),
        (gloved_images[0].name, gloved_images[0].read_bytes(), "image/jpeg"),
        ("notes.jpg", b"plain text", "image/jpeg"),
    ])
    at.run()
    at.button(key="batch-run").click().run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Files"] == "3" and metrics["Violations"] == "1"
    assert metrics["Compliant"] == "1" and metrics["Failed"] == "1"
    assert any("notes.jpg" in e.value and "not an image" in e.value for e in at.error)
    table = at.dataframe[0].value
    assert set(table["file"]) == {bare_images[0].name, gloved_images[0].name}
    assert {"hand", "glove"} <= set(table["class"])
    labels = [b.label for b in at.get("download_button")]
    assert "Download Excel" in labels and "Download CSV" in labels
    conn = st.connect()
    row = conn.execute("SELECT station, conf FROM sessions").fetchone()
    assert (row["station"], row["conf"]) == ("bandsaw-3", 0.3)


def test_batch_page_rejects_bad_weights(gw_home):
    at = _batch_page()
    at.radio(key="batch-src").set_value("Upload weights (.pt)").run()
    at.file_uploader(key="batch-upload").set_value(("fake.pt", b"not a model", "application/octet-stream"))
    at.run()
    assert not at.exception
    assert any("cannot be used" in e.value for e in at.error)
    assert at.button(key="batch-run").disabled


def test_batch_page_with_unwritable_data_folder(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    monkeypatch.setenv("GLOVEWATCH_HOME", str(blocker))
    at = _batch_page()
    assert any("not writable" in e.value and "GLOVEWATCH_HOME" in e.value for e in at.error)
    assert at.button(key="batch-run").disabled
    assert blocker.read_text().startswith("a file")  # nothing overwritten
