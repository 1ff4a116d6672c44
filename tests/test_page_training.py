"""Training page under AppTest: import a data set, start a real tiny run from the page, see its
curves, evaluate it against the active model and promote it."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core import registry, store as st, training
from tests.helpers import open_page

pytestmark = pytest.mark.slow


def _page() -> AppTest:
    return open_page("pages/4_Training.py")


def test_training_page_run_curves_and_promotion(gw_home, tiny_gloves):
    at = _page()
    assert any("Import a data set first" in i.value for i in at.info)
    at.text_input(key="ds-folder").set_value(str(tiny_gloves))
    at.text_input(key="ds-name").set_value("tiny").run()
    at.button(key="ds-import").click().run()
    assert not at.exception
    assert any("Imported data set" in s.value for s in at.success)
    assert {m.label: m.value for m in at.metric}["train images"] == "8"
    at.checkbox(key="ds-samples").check().run()
    assert len(at.image) >= 1 and not at.exception  # images with labels drawn

    at.radio(key="new-src").set_value("Fine-tune local weights").run()
    assert not at.exception and at.selectbox(key="new-weights").options[0].startswith("Active")
    at.radio(key="new-src").set_value("Project variant (models/)").run()
    assert not at.exception
    if training.project_variants():
        assert any("variant" in c.value for c in at.caption)
    at.radio(key="new-src").set_value("YOLO11 from scratch").run()
    at.number_input(key="new-epochs").set_value(2)
    at.select_slider(key="new-imgsz").set_value(160)
    at.number_input(key="new-batch").set_value(8)
    at.selectbox(key="new-device").set_value("cpu")
    at.text_input(key="new-name").set_value("from-page")
    at.text_area(key="new-extra").set_value("plots: false\nworkers: 0")
    at.button(key="new-train").click().run()
    assert not at.exception
    assert any("from-page" in s.value for s in at.success), [e.value for e in at.error]

    conn = st.connect()
    run = training.wait(conn, "from-page", timeout=120)
    assert run.status == "finished", run.message

    at.run()  # the page comes back to a finished run: its curves are drawn
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Status"] == "finished" and metrics["Epoch"] == "2 / 2"
    charts = at.get("plotly_chart")
    assert len(charts) >= 2
    runs_table = next(d.value for d in at.dataframe if "status" in d.value.columns)
    assert "from-page" in set(runs_table["name"])

    at.button(key="eval-go").click().run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "mAP50" in d.value.columns)
    assert len(table) == 2  # the run and the active model side by side
    at.selectbox(key=f"role-{run.id}-hand").set_value("context")
    at.text_input(key="promote-by").set_value("tester").run()
    at.button(key="promote").click().run()
    assert not at.exception
    assert any("active model" in s.value for s in at.success)
    entry = registry.active_entry(conn)
    assert entry.run_id == run.id and entry.promoted_by == "tester"
    assert entry.scores["split"] == "val"
    assert entry.roles == {"glove": "protected", "hand": "context"}  # the override was kept
