"""The Training page under AppTest: import a data set, train a real tiny run from the page,
follow it, evaluate it against the active model, promote it (with a confirmation when it scores
lower), roll back; and a booby-trapped weights upload refused."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from core.config import settings
from core.training import registry, runs
from core.training.datasets import import_dataset
from tests.helpers import open_page
from tests.pages.support import finished_run, malicious_pt, metrics, plain, values


def _page() -> Any:
    return open_page("pages/4_Training.py")


def _without_test_split(root: Path) -> Path:
    """The copied fixture set without its test split (folders and data.yaml line)."""
    shutil.rmtree(root / "images" / "test")
    shutil.rmtree(root / "labels" / "test")
    yaml = root / "data.yaml"
    yaml.write_text(
        "".join(
            line
            for line in yaml.read_text().splitlines(keepends=True)
            if not line.startswith("test:")
        )
    )
    return yaml


def _runs_table(at: Any):
    return next(d.value for d in at.dataframe if "status" in d.value.columns)


def _active_caption(at: Any) -> str:
    [caption] = [plain(c) for c in values(at.caption) if plain(c).startswith("Active model: ")]
    return caption


def test_malicious_weights_upload_says_one_sentence_and_keeps_nothing(
    gw_home, store, tiny_gloves, tmp_path
):
    import_dataset(store, tiny_gloves, name="tiny")
    at = _page()
    at.radio(key="new-src").set_value("Fine-tune local weights").run()
    assert at.selectbox(key="new-weights").options[0].startswith("Active model")
    at.selectbox(key="new-weights").set_value("Upload a .pt file").run()
    marker = tmp_path / "payload-ran"
    trap = malicious_pt(tmp_path / "yolo-best.pt", marker)
    at.file_uploader(key="new-pt").set_value(
        ("yolo-best.pt", trap.read_bytes(), "application/octet-stream")
    ).run()
    assert not at.exception
    [error] = [plain(e) for e in values(at.error)]
    assert error.startswith("This weights file cannot be used: yolo-best.pt was refused")
    assert "could run that code" in error
    assert len(re.findall(r"[.!?](?:\s|$)", error)) == 1, error  # one sentence
    assert "Traceback" not in error and str(gw_home) not in error
    assert not marker.exists()  # nothing was unpickled
    assert not list(settings().uploads_dir.iterdir())  # nothing kept
    assert at.button(key="new-train").disabled


def test_runs_table_panel_splits_and_rollback(gw_home, store, tiny_gloves):
    """Over a finished run (a copy of the shipped model) on a data set without a test split."""
    run = finished_run(store, _without_test_split(tiny_gloves))
    at = _page()
    table = _runs_table(at)
    assert table.set_index("id").loc[run.id, "status"] == metrics(at)["Status"] == "finished"
    assert at.selectbox(key="eval-split").options == ["val", "train"]
    assert _active_caption(at) == "Active model: shipped default gloves-yolo11n-wide.pt"
    assert "Without an evaluation" in " ".join(values(at.caption))
    assert "No model promoted yet." in values(at.caption)  # the registry, still empty

    at.button(key="promote").click().run()
    assert not at.exception and not at.error
    entry = registry.history(store)[0]
    assert entry.active and entry.run_id == run.id
    assert _active_caption(at).startswith(f"Active model: {entry.path.name} (run {run.id}, ")
    assert any(f"Run {run.id} is now the active model" in plain(s) for s in values(at.success))
    assert "No model promoted yet." not in values(at.caption)

    at.button(key="rollback").click().run()
    assert not at.exception and not at.error
    assert registry.active_model(store).entry is None
    assert _active_caption(at) == "Active model: shipped default gloves-yolo11n-wide.pt"
    assert any(
        plain(s) == "Rolled back: the active model is now shipped default gloves-yolo11n-wide.pt."
        for s in values(at.success)
    )


@pytest.mark.slow
def test_training_page_run_evaluate_promote_lower_and_roll_back(gw_home, store, tiny_gloves):
    _without_test_split(tiny_gloves)
    at = _page()
    assert any("No data set imported yet" in i for i in values(at.info))
    at.text_input(key="ds-folder").set_value(str(tiny_gloves))
    at.text_input(key="ds-name").set_value("tiny").run()
    at.button(key="ds-import").click().run()
    assert not at.exception
    assert any("Imported data set" in plain(s) for s in values(at.success))
    m = metrics(at)
    assert m["train images"] == "12" and m["val images"] == "6" and "test images" not in m
    at.checkbox(key="ds-samples").check().run()
    assert len(at.image) >= 1 and not at.exception  # images with their labels drawn

    at.radio(key="new-src").set_value("YOLO11 from scratch").run()
    at.number_input(key="new-epochs").set_value(1)
    at.select_slider(key="new-imgsz").set_value(160)
    at.number_input(key="new-batch").set_value(8)
    at.selectbox(key="new-device").set_value("cpu")
    at.text_input(key="new-name").set_value("from-page")
    at.text_area(key="new-extra").set_value("plots: false\nworkers: 0")
    at.button(key="new-train").click().run()
    assert not at.exception
    assert any("from-page" in plain(s) for s in values(at.success)), values(at.error)
    at.run()  # the Runs table and the run's panel read one state
    status = _runs_table(at).set_index("name").loc["from-page", "status"]
    assert status == metrics(at)["Status"] and status in runs.STATUSES

    run = runs.wait(store, "from-page", timeout=600)
    assert run.status == "finished", run.message
    at.run()
    assert not at.exception
    m = metrics(at)
    assert m["Status"] == "finished" == _runs_table(at).set_index("name").loc["from-page", "status"]
    assert m["Epoch"] == "1 / 1" and len(at.get("plotly_chart")) >= 2

    # evaluate: only the splits the data set has; the caption names the image sizes
    assert at.selectbox(key="eval-split").options == ["val", "train"]
    at.button(key="eval-go").click().run()
    assert not at.exception and not at.error
    scores = next(d.value for d in at.dataframe if "mAP50" in d.value.columns)
    candidate, active = scores["imgsz"]
    assert len(scores) == 2 and candidate == 160
    scored = next(plain(c) for c in values(at.caption) if c.startswith("Scored on"))
    assert "val split (6 images, imgsz 160)" in scored
    assert f"active model at imgsz {active}" in scored

    # a run that scores lower is promoted only with an explicit confirmation
    assert any("scores lower than the active model" in w for w in values(at.warning))
    assert at.button(key="promote").disabled
    at.checkbox(key="promote-accept").check().run()
    assert not at.button(key="promote").disabled
    at.button(key="promote").click().run()
    assert not at.exception and not at.error
    entry = registry.history(store)[0]
    assert entry.active and entry.run_id == run.id and entry.scores["split"] == "val"
    assert _active_caption(at).startswith(f"Active model: {entry.path.name} (run {run.id}, ")
    promoted = next(r for r in store.audit.recent(50) if r.action == "model.promote")
    assert promoted.details["accepted_lower"] is True

    at.button(key="rollback").click().run()
    assert _active_caption(at) == "Active model: shipped default gloves-yolo11n-wide.pt"
