"""Training runs as their own processes, with a queue, stop/resume and live metrics.

A run is a row in the store's ``runs`` table plus a folder under ``Settings.runs_dir``
(``train.log``, and Ultralytics' ``train/results.csv`` and ``train/weights``). The training
itself happens in ``python -m core.training.worker RUN_ID``, started in its own session so that
Streamlit reruns, closed tabs or a restarted app do not touch it. One run at a time per device;
further runs wait as ``queued`` and the worker starts the next one when it ends.
:func:`reconcile` marks runs whose process died (SIGKILL, OOM, reboot) as failed, so the store
never says "running" for a dead process.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from core.config import PROJECT_ROOT, ensure_home, settings
from core.errors import TrainingError
from core.processes import running_argv
from core.storage import Store, now
from core.storage.training import RunRecord
from core.text import slug
from core.training.options import EXPLICIT_ARGS, TrainSpec, check_spec, checked_device, train_args

STATUSES = ("queued", "running", "finished", "failed", "stopped")
ACTIVE = ("queued", "running")


@dataclass(frozen=True)
class Run(RunRecord):
    """One training run as stored, with the places of its files."""

    @property
    def save_dir(self) -> Path:
        return self.run_dir / "train"

    @property
    def log_path(self) -> Path:
        return self.run_dir / "train.log"

    @property
    def results_csv(self) -> Path:
        return self.save_dir / "results.csv"

    @property
    def best_pt(self) -> Path:
        return self.save_dir / "weights" / "best.pt"

    @property
    def last_pt(self) -> Path:
        return self.save_dir / "weights" / "last.pt"

    @property
    def epochs(self) -> int:
        return int(self.args.get("epochs", 0))

    @property
    def has_weights(self) -> bool:
        """Ended (finished, stopped or failed) with a best.pt: a run that can be scored and
        promoted."""
        return self.status not in ACTIVE and self.best_pt.is_file()


@dataclass(frozen=True)
class Metrics:
    """Ultralytics' per-epoch results.csv: column names and one row of floats per epoch."""

    columns: tuple[str, ...]
    rows: tuple[tuple[float, ...], ...]

    def series(self, column: str) -> list[float]:
        i = self.columns.index(column)
        return [r[i] for r in self.rows]

    def has(self, column: str) -> bool:
        return column in self.columns


@dataclass(frozen=True)
class Progress:
    """How far a run is: epochs done of planned, seconds elapsed and (estimated) remaining."""

    epochs_done: int
    epochs: int
    elapsed_s: float
    remaining_s: float | None

    @property
    def elapsed_text(self) -> str:
        """Wall-clock time since the start as h:mm:ss."""
        return clock_text(self.elapsed_s)

    @property
    def remaining_text(self) -> str:
        """The estimated time left as h:mm:ss ('–' before the first epoch ends)."""
        return clock_text(self.remaining_s)


def clock_text(seconds: float | None) -> str:
    """Seconds as h:mm:ss; '–' when unknown."""
    if seconds is None:
        return "–"
    m, sec = divmod(int(seconds), 60)
    hrs, m = divmod(m, 60)
    return f"{hrs}:{m:02d}:{sec:02d}"


# ---------------------------------------------------------------------------- runs


def _run(rec: RunRecord) -> Run:
    return Run(**vars(rec))


def get_run(store: Store, ref: int | str) -> Run:
    """A run by id or by name (the newest with that name)."""
    rec = store.runs.get(ref)
    if rec is None:
        raise TrainingError(f"No training run '{ref}'.")
    return _run(rec)


def list_runs(store: Store, reconcile_first: bool = True) -> list[Run]:
    """All runs, newest first (after :func:`reconcile`, so states are true)."""
    if reconcile_first:
        reconcile(store)
    return [_run(r) for r in store.runs.all()]


def process_alive(pid: int | None, run_id: int | None = None) -> bool:
    """Whether ``pid`` is a live GloveWatch training worker (of run ``run_id``): a zombie is
    dead, and another program with a recycled pid is not our worker."""
    argv = running_argv(pid) if pid else None
    if argv is None:
        return False
    if not argv:  # no /proc: alive, program unknown
        return True
    return b"core.training.worker" in argv and (run_id is None or str(run_id).encode() in argv)


def _spawn(rec: RunRecord) -> int:
    run = _run(rec)
    check_disk(run.run_dir.parent)
    run.run_dir.mkdir(parents=True, exist_ok=True)
    with open(run.log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core.training.worker", str(run.id)],
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "YOLO_VERBOSE": "true"},
        )
    # Reap it when it ends so a long-lived parent (Streamlit) keeps no zombies.
    threading.Thread(target=proc.wait, daemon=True).start()
    return proc.pid


def min_free_bytes() -> int:
    """Free space a run needs to start (``GLOVEWATCH_TRAIN_MIN_FREE_MB``, default 1024)."""
    return settings().train_min_free_mb << 20


def check_disk(folder: Path) -> None:
    """Raise :class:`TrainingError` when ``folder`` has too little free space for a run."""
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < min_free_bytes():
        raise TrainingError(
            f"Not enough disk space to train: {free >> 20} MB free, a run needs at least "
            f"{min_free_bytes() >> 20} MB (GLOVEWATCH_TRAIN_MIN_FREE_MB). Free some space "
            "(old runs, exports) and try again."
        )


def start_next(store: Store) -> list[Run]:
    """Start the oldest queued run of every device that has none running; returns those."""
    return [get_run(store, i) for i in store.runs.start_queued(_spawn)]


def reconcile(store: Store) -> list[Run]:
    """Mark 'running' runs whose process is gone as failed, then start queued runs.

    Returns the runs that were marked failed.
    """
    dead = []
    for rec in store.runs.with_status("running"):
        run = _run(rec)
        if process_alive(run.pid, run.id):
            continue
        msg = (
            f"The training process (pid {run.pid}) ended without reporting: it was killed "
            "or crashed (out of memory?). See the log below."
        )
        if store.runs.set(
            run.id,
            only_if=("running",),
            status="failed",
            ended_at=now(),
            message=msg,
            best=best_scores(read_metrics(run)),
        ):
            dead.append(get_run(store, run.id))
    if store.runs.with_status("queued"):
        start_next(store)
    return dead


def submit(store: Store, spec: TrainSpec, by: str | None = None) -> Run:
    """Queue a run (and start it at once when its device is free).

    Checks first (:func:`core.training.options.check_spec`): the data set file, the model,
    the recipe, the options, a segmentation model on box-only labels; then disk space and
    the device. A fine-tune whose class names differ from the data set's is allowed (the
    head is rebuilt); the run's message says so.
    """
    s = ensure_home()
    checked = check_spec(store, spec, s.datasets_dir)
    check_disk(s.runs_dir)
    device = checked_device(spec)
    model = checked.model
    name = spec.name or f"{Path(model).stem}-{spec.dataset or checked.data.parent.name}"

    def folder_for(run_id: int) -> str:
        return str(s.runs_dir / f"{run_id:04d}-{slug(name, 60, 'run')}")

    def args_for(folder: str) -> dict[str, Any]:
        return {
            **train_args(spec, Path(folder), device),
            "model": model,
            "recipe": spec.recipe,
            "explicit": sorted(EXPLICIT_ARGS | set(spec.extra)),
        }

    run_id = store.runs.create(
        name,
        spec.dataset or str(checked.data),
        model,
        device,
        " ".join(checked.notes) or None,
        folder_for,
        args_for,
    )
    store.audit.add(
        by or "-", "training.submit", f"run {run_id}", {"name": name, "model": Path(model).name}
    )
    start_next(store)
    return get_run(store, run_id)


def _wait_dead(pid: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not process_alive(pid):
            return True
        time.sleep(0.2)
    return not process_alive(pid)


def stop(store: Store, ref: int | str, timeout: float = 15.0, by: str | None = None) -> Run:
    """Stop a queued or running run (SIGTERM to its process group, SIGKILL after ``timeout``).

    A stopped run keeps its last epoch's checkpoint and can be resumed.
    """
    run = get_run(store, ref)
    if run.status not in ACTIVE:
        raise TrainingError(f"Run {run.id} is {run.status}, not running or queued.")
    store.runs.set(
        run.id, only_if=ACTIVE, status="stopped", ended_at=now(), message="Stopped by the user."
    )
    if run.status == "running" and run.pid and process_alive(run.pid):
        for sig, wait_s in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(run.pid, sig)
            except (ProcessLookupError, PermissionError):
                break
            if _wait_dead(run.pid, wait_s):
                break
    store.audit.add(by or "-", "training.stop", f"run {run.id}")
    start_next(store)
    return get_run(store, run.id)


def resume(store: Store, ref: int | str, by: str | None = None) -> Run:
    """Queue a stopped or failed run again, continuing from its last checkpoint."""
    run = get_run(store, ref)
    if run.status in ACTIVE:
        raise TrainingError(f"Run {run.id} is already {run.status}.")
    if run.status == "finished":
        raise TrainingError(f"Run {run.id} has finished; start a new run to train further.")
    if not run.last_pt.is_file():
        raise TrainingError(
            f"Run {run.id} has no checkpoint to resume from (it stopped before "
            "its first epoch ended); start it again instead."
        )
    check_disk(run.run_dir.parent)
    clash = store.runs.rename_clash(run.id, run.name)
    if clash is not None:
        raise TrainingError(f"Another run named '{run.name}' is active (run {clash}).")
    store.runs.set(
        run.id,
        status="queued",
        pid=None,
        ended_at=None,
        message="Resuming.",
        args={**run.args, "resume": True},
    )
    store.audit.add(by or "-", "training.resume", f"run {run.id}")
    start_next(store)
    return get_run(store, run.id)


def wait(store: Store, ref: int | str, timeout: float | None = None, poll: float = 1.0) -> Run:
    """Block until a run is no longer queued or running (or ``timeout`` seconds pass)."""
    end = None if timeout is None else time.monotonic() + timeout
    while True:
        reconcile(store)
        run = get_run(store, ref)
        if run.status not in ACTIVE or (end is not None and time.monotonic() > end):
            return run
        time.sleep(poll)


# ---------------------------------------------------------------------------- metrics


def read_metrics(run: Run) -> Metrics:
    """The run's results.csv so far (empty before the first epoch ends)."""
    path = run.results_csv
    if not path.is_file():
        return Metrics((), ())
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return Metrics((), ())
    columns = tuple(c.strip() for c in rows[0])
    body = []
    for r in rows[1:]:
        try:
            body.append(tuple(float(v) for v in r))
        except ValueError:
            continue  # a line being written right now
    return Metrics(columns, tuple(b for b in body if len(b) == len(columns)))


def fitness_column(metrics: Metrics) -> str | None:
    """The mAP50-95 column runs are ranked by (masks for segmentation, else boxes)."""
    for col in ("metrics/mAP50-95(M)", "metrics/mAP50-95(B)"):
        if metrics.has(col):
            return col
    return None


def best_metric(scores: dict[str, Any], metric: str = "mAP50-95") -> float | None:
    """``metric`` from a score dict: results.csv columns (masks before boxes) or an
    evaluation's plain keys. The one lookup every page and command uses."""
    for key in (
        f"metrics/{metric}(M)",
        f"metrics/{metric}(B)",
        metric,
        metric.replace("-", "_").lower(),
    ):
        if key in scores and scores[key] is not None:
            return float(scores[key])
    return None


def best_scores(metrics: Metrics) -> dict[str, Any]:
    """Scores of the best epoch so far (by mAP50-95), keyed by results.csv column."""
    col = fitness_column(metrics)
    if col is None or not metrics.rows:
        return {}
    i = metrics.columns.index(col)
    row = max(metrics.rows, key=lambda r: r[i])
    keep = ("epoch",) + tuple(c for c in metrics.columns if c.startswith("metrics/"))
    return {c: row[metrics.columns.index(c)] for c in keep if metrics.has(c)}


def progress(run: Run, metrics: Metrics | None = None) -> Progress:
    """Epochs done, wall-clock time elapsed (start to end, or to now while it runs) and the
    estimated time remaining."""
    metrics = metrics if metrics is not None else read_metrics(run)
    done = len(metrics.rows)
    elapsed = 0.0
    if run.started_at:
        started = datetime.strptime(run.started_at, "%Y-%m-%d %H:%M:%S")
        ended = (
            datetime.strptime(run.ended_at, "%Y-%m-%d %H:%M:%S")
            if run.ended_at and run.status not in ACTIVE
            else datetime.now()
        )
        elapsed = max(0.0, (ended - started).total_seconds())
    remaining: float | None = elapsed / done * max(0, run.epochs - done) if done else None
    if run.status not in ACTIVE:
        remaining = 0.0 if done else None
    return Progress(done, run.epochs, elapsed, remaining)


def log_tail(run: Run, lines: int = 40) -> str:
    """The last ``lines`` lines of the run's log (progress bars collapsed)."""
    if not run.log_path.is_file():
        return ""
    with open(run.log_path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 64_000))
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", fh.read().decode(errors="replace"))
    # tqdm redraws with carriage returns: keep only the latest state of each line.
    cleaned = [part.rsplit("\r", 1)[-1] for part in text.split("\n")]
    kept = [line for line in cleaned if line.strip()]
    return "\n".join(kept[-lines:])
