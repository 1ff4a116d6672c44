"""Real tiny trainings through core: runs in their own processes, metrics, kill, queue, promote.

A few real gloves images, imgsz 160, CPU, offline. Each run is a real ``core.train_worker``
process.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from core import datasets, registry, training
from core.detector import file_sha256

pytestmark = pytest.mark.slow

TINY = dict(imgsz=160, batch=8, extra={"plots": False, "workers": 0, "val": True})


@pytest.fixture
def tiny_dataset(store, tiny_gloves) -> datasets.Dataset:
    """8 training and 4 validation gloves images, registered."""
    return datasets.import_dataset(store, tiny_gloves, name="tiny")


@pytest.fixture(autouse=True)
def _no_leftover_workers(store):
    """A failing test must not leave training processes behind."""
    yield
    for run in training.list_runs(store, reconcile_first=False):
        if run.status in training.ACTIVE:
            training.stop(store, run.id, timeout=5)


def _spec(ds: datasets.Dataset, **kw) -> training.TrainSpec:
    args = {**TINY, "data": str(ds.yaml_path), "model": "yolo11n.yaml", "epochs": 1,
            "device": "cpu", "dataset": ds.name, **kw}
    return training.TrainSpec(**args)


def _until(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.3)


def test_tiny_run_metrics_reach_store_and_promote(store, tiny_dataset):
    run = training.submit(store, _spec(tiny_dataset, name="tiny-1"))
    assert run.status == "running" and run.pid
    run = training.wait(store, run.id, timeout=120)
    assert run.status == "finished", (run.message, training.log_tail(run))
    metrics = training.read_metrics(run)
    assert len(metrics.rows) == 1 and metrics.has("metrics/mAP50-95(B)")
    assert run.best["epoch"] == 1.0 and "metrics/mAP50(B)" in run.best  # stored in the runs row
    assert training.progress(run).epochs_done == 1
    assert "Epoch" in run.log_path.read_text(errors="replace")
    assert run.best_pt.is_file()

    entry = registry.promote(store, run.id, promoted_by="tester")
    assert entry.active and entry.run_id == run.id and entry.promoted_by == "tester"
    assert entry.path.parent == Path(os.environ["GLOVEWATCH_HOME"]) / "models"
    assert entry.sha256 == file_sha256(run.best_pt) == file_sha256(entry.path)
    assert entry.roles == {"glove": "protected", "hand": "violation"}
    assert registry.active_weights(store) == entry.path
    assert [e.id for e in registry.history(store)] == [entry.id]
    assert registry.rollback(store) is None  # back to the shipped default
    assert registry.active_weights(store) == registry.settings().default_weights


def test_sigkill_marks_failed_queue_moves_on_and_resume(store, tiny_dataset):
    first = training.submit(store, _spec(tiny_dataset, name="long", epochs=300))
    with pytest.raises(training.TrainingError, match="already running"):
        training.submit(store, _spec(tiny_dataset, name="long", epochs=300))
    second = training.submit(store, _spec(tiny_dataset, name="queued", epochs=300))
    assert second.status == "queued"  # one run at a time per device

    _until(lambda: training.get_run(store, first.id).last_pt.is_file(), 90, "first checkpoint")
    os.killpg(first.pid, signal.SIGKILL)
    _until(lambda: not training.process_alive(first.pid), 10, "the killed process to end")
    epochs_before = len(training.read_metrics(first).rows)
    dead = training.reconcile(store)
    assert [d.id for d in dead] == [first.id]
    first = training.get_run(store, first.id)
    assert first.status == "failed" and "killed" in first.message
    second = training.get_run(store, second.id)
    assert second.status == "running"  # the queue moved on

    second = training.stop(store, second.id)
    assert second.status == "stopped" and not training.process_alive(second.pid)
    resumed = training.resume(store, first.id)
    assert resumed.status == "running" and resumed.pid != first.pid
    _until(lambda: len(training.read_metrics(resumed).rows) > epochs_before, 90,
           "a resumed epoch")
    assert "Resuming training" in resumed.log_path.read_text(errors="replace")
    assert training.stop(store, first.id).status == "stopped"


def test_refusals_are_clear(store, tiny_dataset, monkeypatch, tmp_path):
    with pytest.raises(training.TrainingError, match="Unknown model"):
        training.submit(store, _spec(tiny_dataset, model="yolo99z.yaml"))
    with pytest.raises(training.TrainingError, match="polygon labels"):
        training.submit(store, _spec(tiny_dataset, model="yolo11n-seg.yaml"))
    with pytest.raises(training.TrainingError, match="Unknown training option"):
        training.parse_extra("lr0: 0.01\nwarp_speed: 9")
    if training.default_device() == "cpu":
        with pytest.raises(training.TrainingError, match="no GPU"):
            training.submit(store, _spec(tiny_dataset, device="0"))
    monkeypatch.setenv("GLOVEWATCH_TRAIN_MIN_FREE_MB", str(1 << 40))
    with pytest.raises(training.TrainingError, match="Not enough disk space"):
        training.submit(store, _spec(tiny_dataset))
    assert training.list_runs(store) == []


def test_six_class_segmentation_zip_trains(store, gloves_dir, tmp_path):
    from tests.test_datasets import SIX, make_roboflow_zip

    ds = datasets.import_dataset(store, make_roboflow_zip(gloves_dir, tmp_path / "bandsaw.zip"))
    run = training.submit(store, _spec(ds, model="yolo11n-seg.yaml"))
    run = training.wait(store, run.id, timeout=120)
    assert run.status == "finished", (run.message, training.log_tail(run))
    assert "metrics/mAP50-95(M)" in run.best  # mask metrics, not only boxes
    assert training.fitness_column(training.read_metrics(run)) == "metrics/mAP50-95(M)"
    promoted = registry.promote(store, run.id, promoted_by="tester")
    assert list(promoted.roles) == SIX
    assert promoted.roles["head"] == "context" and promoted.roles["glove_steel_b"] == "protected"


def test_project_variant_and_fine_tune_with_other_classes(store, tiny_dataset, default_weights,
                                                          gloves_dir, tmp_path):
    variant = training.project_variants()
    if not variant:
        pytest.skip("no model variants in models/")
    run = training.submit(store, _spec(tiny_dataset, model=variant[0].name, name="variant"))
    run = training.wait(store, run.id, timeout=120)
    assert run.status == "finished", (run.message, training.log_tail(run))

    from tests.test_datasets import make_roboflow_zip

    six = datasets.import_dataset(store, make_roboflow_zip(gloves_dir, tmp_path / "six.zip"))
    tune = training.submit(store, _spec(six, model=str(default_weights), name="tune"))
    assert "rebuilt" in tune.message  # 2-class weights on a 6-class data set: said, not hidden
    tune = training.wait(store, tune.id, timeout=120)
    assert tune.status == "finished", (tune.message, training.log_tail(tune))


def test_cli_import_train_runs_promote(gw_home, tiny_gloves, capfd):
    from core.cli import main

    assert main(["import-dataset", str(tiny_gloves), "--name", "tiny"]) == 0
    assert main(["train", "--data", "tiny", "--model", "yolo11n.yaml", "--epochs", "1",
                 "--imgsz", "160", "--batch", "8", "--device", "cpu", "--name", "cli-run",
                 "--extra", "{plots: false, workers: 0}", "--wait"]) == 0
    assert main(["runs"]) == 0
    out = capfd.readouterr().out
    assert "cli-run" in out and "finished" in out
    assert main(["promote", "cli-run", "--by", "cli"]) == 0
    assert "is the active model" in capfd.readouterr().out
    assert main(["stop", "cli-run"]) == 2  # a finished run cannot be stopped: clear refusal
    assert main(["train", "--data", "nope", "--model", "yolo11n.yaml"]) == 2


def test_run_outlives_the_process_that_started_it(gw_home, tiny_gloves):
    """Like a closed tab or a restarted app: the starter exits, the run goes on and ends."""
    import subprocess
    import sys

    from core import store as st
    from tests.conftest import ROOT

    started = subprocess.run(
        [sys.executable, "-m", "core", "train", "--data", str(tiny_gloves), "--model",
         "yolo11n.yaml", "--epochs", "2", "--imgsz", "160", "--batch", "8", "--device", "cpu",
         "--name", "detached", "--extra", "{plots: false, workers: 0}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    conn = st.connect()
    run = training.get_run(conn, "detached")
    assert run.status in ("running", "finished")  # its starter is gone already
    run = training.wait(conn, run.id, timeout=120)
    assert run.status == "finished" and len(training.read_metrics(run).rows) == 2


def test_recipe_prepares_training_data(store, tiny_dataset):
    if "wide" not in training.recipe_names():
        pytest.skip("no 'wide' recipe in core/recipes.py")
    spec = _spec(tiny_dataset, name="wide", recipe="wide")
    spec = training.TrainSpec(**{**spec.__dict__, "extra": {**spec.extra, "translate": 0.05}})
    run = training.submit(store, spec)
    run = training.wait(store, run.id, timeout=120)
    assert run.status == "finished", (run.message, training.log_tail(run))
    prepared = run.run_dir / "recipe" / "data.yaml"
    assert prepared.is_file()
    assert str(prepared) in (run.save_dir / "args.yaml").read_text()  # trained on it
    used = (run.save_dir / "args.yaml").read_text()
    assert "imgsz: 160" in used and "translate: 0.05" in used  # the user's choices won
    assert "close_mosaic: 10" in used  # the recipe's own override applied
