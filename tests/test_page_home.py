from streamlit.testing.v1 import AppTest

from core.batch import BatchInput, run_batch
from core.detector import InferenceParams
from tests.conftest import ROOT

HOME = ROOT / "Home.py"


def test_home_empty_store(gw_home):
    at = AppTest.from_file(str(HOME), default_timeout=120).run()
    assert not at.exception
    labels = [m.label for m in at.metric]
    assert "Violation events" in labels
    assert any("Nothing recorded today" in i.value for i in at.info)
    assert any("glove" in str(df.value) for df in at.dataframe)  # class/role table
    assert any("mAP50" in c.value for c in at.caption)


def test_home_shows_todays_figures(gw_home, default_weights, bare_images):
    run_batch([BatchInput.from_path(p) for p in bare_images[:2]], default_weights,
              InferenceParams())
    at = AppTest.from_file(str(HOME), default_timeout=120).run()
    assert not at.exception
    values = {m.label: m.value for m in at.metric}
    assert values["Sessions"] == "1"
    assert values["Images / frames checked"] == "2"
    assert int(values["Violation events"]) >= 1


def test_home_with_broken_active_model(gw_home, tmp_path, monkeypatch):
    bad = tmp_path / "broken.pt"
    bad.write_text("not a model")
    monkeypatch.setenv("GLOVEWATCH_WEIGHTS", str(bad))
    at = AppTest.from_file(str(HOME), default_timeout=120).run()
    assert not at.exception
    assert any("cannot be loaded" in e.value for e in at.error)
