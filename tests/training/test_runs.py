"""Training runs: option checks, refusals, and real tiny CPU trainings in their own worker
processes (metrics, kill, queue, resume, stop, CLI)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from core.errors import TrainingError
from core.training import datasets, options, registry, runs
from core.vision.detector import Detector
from core.vision.modelcard import read_card
from tests.conftest import ROOT
from tests.training.zips import SIX, segmentation_zip

TINY = dict(imgsz=160, batch=8, extra={"plots": False, "workers": 0, "val": True})


def _spec(ds: datasets.Dataset, **kw) -> options.TrainSpec:
    args = {
        **TINY,
        "data": str(ds.yaml_path),
        "model": "yolo11n.yaml",
        "epochs": 1,
        "device": "cpu",
        "dataset": ds.name,
        **kw,
    }
    return options.TrainSpec(**args)


def _until(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.3)


@pytest.fixture
def tiny_dataset(store, tiny_gloves) -> datasets.Dataset:
    """The fixture set (12 train, 6 val images), registered."""
    return datasets.import_dataset(store, tiny_gloves, name="tiny")


@pytest.fixture
def no_leftover_workers(store):
    """A failing test must not leave training processes behind."""
    yield
    for run in runs.list_runs(store, reconcile_first=False):
        if run.status in runs.ACTIVE:
            runs.stop(store, run.id, timeout=5)


def test_refusals_are_clear_and_queue_nothing(store, tiny_dataset, monkeypatch):
    with pytest.raises(TrainingError, match="Unknown model"):
        runs.submit(store, _spec(tiny_dataset, model="yolo99z.yaml"))
    with pytest.raises(TrainingError, match="polygon labels"):
        runs.submit(store, _spec(tiny_dataset, model="yolo11n-seg.yaml"))
    with pytest.raises(TrainingError, match="Unknown recipe"):
        runs.submit(store, _spec(tiny_dataset, recipe="turbo"))
    with pytest.raises(TrainingError, match="not allowed here: cfg"):
        runs.submit(store, _spec(tiny_dataset, extra={"cfg": "/etc/x.yaml"}))
    with pytest.raises(TrainingError, match="not found"):
        runs.submit(store, _spec(tiny_dataset, data="/nowhere/data.yaml"))
    if options.default_device() == "cpu":
        with pytest.raises(TrainingError, match="no GPU"):
            runs.submit(store, _spec(tiny_dataset, device="0"))
    monkeypatch.setenv("GLOVEWATCH_TRAIN_MIN_FREE_MB", str(1 << 40))
    with pytest.raises(TrainingError, match="Not enough disk space"):
        runs.submit(store, _spec(tiny_dataset))
    assert runs.list_runs(store) == []


def test_progress_is_wall_clock_from_start_to_end(store, tiny_dataset, tmp_path):
    """Elapsed time is the run's own start to end (what a user waited), not the 'time'
    column of results.csv (training seconds only)."""
    run_id = store.runs.create(
        "timed",
        "tiny",
        "yolo11n.yaml",
        "cpu",
        None,
        lambda i: str(tmp_path / f"run{i}"),
        lambda folder: {"epochs": 4, "data": str(tiny_dataset.yaml_path)},
    )
    store.runs.set(
        run_id, status="finished", started_at="2026-01-05 08:00:00", ended_at="2026-01-05 08:03:20"
    )
    run = runs.get_run(store, run_id)
    run.results_csv.parent.mkdir(parents=True)
    run.results_csv.write_text(
        "epoch,time,metrics/mAP50(B),metrics/mAP50-95(B)\n1,20.5,0.1,0.05\n2,41.0,0.2,0.1\n"
    )
    prog = runs.progress(run)
    assert prog.elapsed_s == 200.0 and prog.epochs_done == 2 and prog.epochs == 4
    assert prog.remaining_s == 0.0  # it has ended
    assert (prog.elapsed_text, prog.remaining_text) == ("0:03:20", "0:00:00")
    assert runs.clock_text(None) == "–" and runs.clock_text(3725.9) == "1:02:05"
    assert runs.best_scores(runs.read_metrics(run))["epoch"] == 2.0
    # ended, but scored and promotable only once it has its best.pt
    assert not run.has_weights
    run.best_pt.parent.mkdir(parents=True)
    run.best_pt.write_bytes(b"weights")
    assert run.has_weights
    store.runs.set(run_id, status="running")
    assert not runs.get_run(store, run_id).has_weights  # still training


# ---------------------------------------------------------------------------- real runs


@pytest.mark.slow
def test_tiny_run_reaches_the_store_with_wall_clock_progress(
    store, tiny_dataset, no_leftover_workers
):
    started = time.monotonic()
    run = runs.submit(store, _spec(tiny_dataset, name="tiny-1"))
    assert run.status == "running" and run.pid and runs.process_alive(run.pid, run.id)
    run = runs.wait(store, run.id, timeout=600, poll=0.2)
    took = time.monotonic() - started
    assert run.status == "finished", (run.message, runs.log_tail(run))
    metrics = runs.read_metrics(run)
    assert len(metrics.rows) == 1 and metrics.has("metrics/mAP50-95(B)")
    assert run.best["epoch"] == 1.0 and "metrics/mAP50(B)" in run.best  # in the runs row
    assert "Epoch" in run.log_path.read_text(errors="replace")
    assert run.best_pt.is_file() and run.last_pt.is_file()

    prog = runs.progress(run)
    assert prog.epochs_done == prog.epochs == 1 and prog.remaining_s == 0.0
    assert prog.elapsed_s >= took - 2  # wall clock (second resolution, polling slack)
    assert prog.elapsed_s > metrics.series("time")[-1]  # not the training-only seconds

    # the run's state reads the same whichever way it is read
    assert {
        runs.get_run(store, run.id).status,
        runs.list_runs(store)[0].status,
        store.runs.get(run.id).status,
        runs.get_run(store, "tiny-1").status,
    } == {"finished"}

    entry = registry.promote(store, run.id, promoted_by="tester")
    assert entry.run_id == run.id and entry.roles == {"glove": "protected", "hand": "violation"}
    assert entry.scores["images"] == 6 and entry.scores["imgsz"] == 160
    assert read_card(entry.path).data == "tiny"
    det = Detector(entry.path, imgsz=160)  # through the safe loader
    assert det.info.names == {0: "glove", 1: "hand"}


@pytest.mark.slow
def test_sigkill_marks_failed_queue_moves_on_resume_and_stop(
    store, tiny_dataset, no_leftover_workers
):
    first = runs.submit(store, _spec(tiny_dataset, name="long", epochs=300))
    with pytest.raises(TrainingError, match="already running"):
        runs.submit(store, _spec(tiny_dataset, name="long", epochs=300))
    second = runs.submit(store, _spec(tiny_dataset, name="queued", epochs=300))
    assert second.status == "queued"  # one run at a time per device

    # an epoch has ended (its callback runs after last.pt is written): kill between saves
    _until(lambda: runs.get_run(store, first.id).best.get("epoch"), 600, "first checkpoint")
    assert first.last_pt.is_file()
    os.killpg(first.pid, signal.SIGKILL)
    _until(lambda: not runs.process_alive(first.pid), 30, "the killed process to end")
    assert store.runs.get(first.id).status == "running"  # nobody has looked yet
    epochs_before = len(runs.read_metrics(first).rows)
    dead = runs.reconcile(store)
    assert [d.id for d in dead] == [first.id]
    first = runs.get_run(store, first.id)
    assert first.status == "failed" and "killed" in first.message
    assert first.ended_at and runs.progress(first).remaining_s is not None
    second = runs.get_run(store, second.id)
    assert second.status == "running" and second.pid  # the queue moved on
    listed = {r.id: r.status for r in runs.list_runs(store)}
    assert listed == {first.id: "failed", second.id: "running"}

    second = runs.stop(store, second.id)
    assert second.status == "stopped" and not runs.process_alive(second.pid)
    assert runs.list_runs(store)[0].status == "stopped"  # reconcile does not revive it
    resumed = runs.resume(store, first.id)
    assert resumed.status == "running" and resumed.pid != first.pid
    _until(
        lambda: (
            len(runs.read_metrics(resumed).rows) > epochs_before
            or runs.get_run(store, first.id).status not in runs.ACTIVE
        ),
        600,
        "a resumed epoch",
    )
    resumed = runs.get_run(store, first.id)
    assert resumed.status == "running", (resumed.message, runs.log_tail(resumed))
    assert "Resuming training" in resumed.log_path.read_text(errors="replace")
    assert runs.stop(store, first.id).status == "stopped"
    with pytest.raises(TrainingError, match="not running or queued"):
        runs.stop(store, first.id)


@pytest.mark.slow
def test_segmentation_zip_trains_with_mask_metrics(
    store, tmp_path, default_weights, no_leftover_workers
):
    ds = datasets.import_dataset(store, segmentation_zip(tmp_path / "bandsaw.zip"))
    run = runs.submit(store, _spec(ds, model="yolo11n-seg.yaml"))
    run = runs.wait(store, run.id, timeout=600, poll=0.5)
    assert run.status == "finished", (run.message, runs.log_tail(run))
    assert "metrics/mAP50-95(M)" in run.best  # mask metrics, not only boxes
    assert runs.fitness_column(runs.read_metrics(run)) == "metrics/mAP50-95(M)"
    promoted = registry.promote(store, run.id, promoted_by="tester")
    assert list(promoted.roles) == SIX
    assert promoted.roles["head"] == "context" and promoted.roles["glove_steel_b"] == "protected"

    # 2-class weights fine-tuned on the 6-class set: said, not hidden
    tune = runs.submit(store, _spec(ds, model=str(default_weights), name="tune"))
    assert "rebuilt" in tune.message
    runs.stop(store, tune.id, timeout=5)


@pytest.mark.slow
def test_project_variant_trains_through_the_worker(store, tiny_dataset, no_leftover_workers):
    """A models/ variant trains in a worker process (which registers the project's layers)
    and its best.pt loads through the safe loader."""
    variant = options.project_variants()[0]
    run = runs.submit(store, _spec(tiny_dataset, model=variant.name, name="variant"))
    assert run.args["model"] == str(variant.resolve())
    run = runs.wait(store, run.id, timeout=600, poll=0.5)
    assert run.status == "finished", (run.message, runs.log_tail(run))
    det = Detector(run.best_pt, imgsz=160)
    assert det.info.names == {0: "glove", 1: "hand"}


@pytest.mark.slow
def test_wide_recipe_prepares_training_data_and_user_choices_win(
    store, tiny_dataset, no_leftover_workers
):
    spec = _spec(
        tiny_dataset, name="wide", recipe="wide", extra={**TINY["extra"], "translate": 0.05}
    )
    run = runs.wait(store, runs.submit(store, spec).id, timeout=600, poll=0.5)
    assert run.status == "finished", (run.message, runs.log_tail(run))
    prepared = run.run_dir / "recipe" / "data.yaml"
    used = yaml.safe_load((run.save_dir / "args.yaml").read_text())
    assert used["data"] == str(prepared)  # trained on the composites
    assert used["imgsz"] == 160 and used["translate"] == 0.05  # the user's choices won
    assert used["close_mosaic"] == 10  # the recipe's own override applied


@pytest.mark.slow
def test_cli_train_detached_runs_promote_rollback(gw_home, tiny_gloves, capfd):
    """The CLI starts a run whose worker outlives the command (like a closed tab), then
    lists, promotes and rolls back."""
    from core.cli import main
    from core.storage import open_store

    assert main(["import-dataset", str(tiny_gloves), "--name", "tiny"]) == 0
    started = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "train",
            "--data",
            "tiny",
            "--model",
            "yolo11n.yaml",
            "--epochs",
            "1",
            "--imgsz",
            "160",
            "--batch",
            "8",
            "--device",
            "cpu",
            "--name",
            "cli-run",
            "--extra",
            "{plots: false, workers: 0}",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout.strip().splitlines()[-1])
    store = open_store()
    run = runs.get_run(store, info["id"])
    assert run.status in ("running", "finished")  # its starter is gone already
    run = runs.wait(store, run.id, timeout=600, poll=0.5)
    assert run.status == "finished", (run.message, runs.log_tail(run))
    capfd.readouterr()

    assert main(["runs", "--json"]) == 0
    listed = json.loads(capfd.readouterr().out)
    assert [(r["name"], r["status"]) for r in listed] == [("cli-run", "finished")]
    assert main(["promote", "cli-run", "--by", "cli"]) == 0
    assert "is the active model" in capfd.readouterr().out
    assert main(["registry", "--json"]) == 0
    reg = json.loads(capfd.readouterr().out)
    assert reg["entries"][0]["run"] == run.id and reg["entries"][0]["active"]
    assert main(["rollback"]) == 0
    assert "shipped default" in capfd.readouterr().out
    assert main(["stop", "cli-run"]) == 2  # a finished run cannot be stopped: clear refusal
    assert "finished" in capfd.readouterr().err
    assert main(["train", "--data", "nope", "--model", "yolo11n.yaml"]) == 2
    assert (
        main(["train", "--data", "tiny", "--model", "yolo11n.yaml", "--extra", "{project: /tmp}"])
        == 2
    )
    assert "project" in capfd.readouterr().err
    assert Path(run.best_pt).is_file()
