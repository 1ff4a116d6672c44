"""The overview page under AppTest: today's figures from a real batch, the active model and
its classes, and a broken active model explained."""

from __future__ import annotations

from core.pipeline.batch import BatchInput, run_batch
from core.vision.detector import InferenceParams
from tests.helpers import open_page
from tests.pages.support import metrics, plain, values


def test_home_empty_store(gw_home):
    at = open_page()
    m = metrics(at)
    assert set(m) == {"Compliance", "Episodes", "Images checked", "Time monitored"}
    assert (m["Compliance"], m["Episodes"], m["Time monitored"]) == ("no data", "0", "0 s")
    assert all(el.proto.help for el in at.get("metric"))  # each says what it counts
    assert any("Nothing recorded today" in i for i in values(at.info))
    classes = at.dataframe[0].value
    assert {"glove", "hand"} <= set(classes["class"])  # the shipped model's classes and roles
    assert {"a gloved hand", "a bare hand"} <= set(classes["what it means"])
    model = [plain(m) for m in values(at.markdown) if "shipped default" in m]
    assert len(model) == 1 and "shipped default gloves-yolo11n-wide.pt" in model[0]
    assert any("sha256" in c for c in values(at.caption))  # under Details
    scores = [plain(c) for c in values(at.caption) if "mAP50" in c]  # from the model's card
    assert len(scores) == 1 and "AP50 hand" in scores[0], values(at.caption)
    links = {p.proto.page for p in at.get("page_link")}
    assert {"Live", "Batch", "History", "Training", "Stations", "Admin"} <= links


def test_home_shows_todays_figures(gw_home, store, default_weights, bare_images):
    run_batch(
        [BatchInput.from_path(p) for p in bare_images[:2]],
        default_weights,
        InferenceParams(),
        backend="pytorch",
        store=store,
    )
    at = open_page()
    m = metrics(at)
    assert m["Images checked"] == "2" and m["Time monitored"] == "0 s"
    assert int(m["Episodes"]) >= 1
    assert m["Compliance"].endswith("%")
    assert not at.info


def test_home_with_broken_active_model(gw_home, tmp_path, monkeypatch):
    bad = tmp_path / "broken.pt"
    bad.write_text("not a model")
    monkeypatch.setenv("GLOVEWATCH_WEIGHTS", str(bad))
    at = open_page()
    assert not at.exception
    assert any("cannot be loaded" in e for e in values(at.error))
    assert "Compliance" in metrics(at)  # the rest of the overview still shows


def test_a_broken_model_is_named_as_typed(gw_home, tmp_path, monkeypatch):
    bad = tmp_path / "![x](http:evil.example).pt"  # its name is shown: no Markdown image
    bad.write_text("not a model")
    monkeypatch.setenv("GLOVEWATCH_WEIGHTS", str(bad))
    [error] = [e for e in values(open_page().error) if "cannot be loaded" in e]
    assert "](http:" not in error and bad.name in plain(error), error
