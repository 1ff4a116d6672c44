"""Training runs as their own processes, with a queue, stop/resume and live metrics.

A run is a row in the store's ``runs`` table plus a folder under ``Settings.runs_dir``
(``train.log``, and Ultralytics' ``train/results.csv`` and ``train/weights``). The training
itself happens in ``python -m core.train_worker RUN_ID``, started in its own session so that
Streamlit reruns, closed tabs or a restarted app do not touch it. One run at a time per device;
further runs wait as ``queued`` and the worker starts the next one when it ends.
:func:`reconcile` marks runs whose process died (SIGKILL, OOM, reboot) as failed, so the store
never says "running" for a dead process.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from core.config import MODELS_DIR, PROJECT_ROOT, ensure_home, settings
from core.store import now, row_by_ref, transaction

STATUSES = ("queued", "running", "finished", "failed", "stopped")
ACTIVE = ("queued", "running")
SIZES = ("n", "s", "m", "l", "x")
# Built-in Ultralytics architectures, trained from scratch (no pretrained download offline).
ARCHITECTURES = tuple(f"yolo11{s}{t}.yaml" for t in ("", "-seg") for s in SIZES)


class TrainingError(ValueError):
    """A run that cannot be started, stopped or resumed, with a message for the user."""


@dataclass(frozen=True)
class TrainSpec:
    """What the user asked for. ``extra`` holds advanced Ultralytics overrides."""

    data: str  # normalized data.yaml (absolute)
    model: str  # architecture yaml name/path or a .pt weights file
    epochs: int = 50
    imgsz: int = 640
    batch: int = 16
    patience: int = 50
    augment: float = 1.0  # 0 = no augmentation, 1 = Ultralytics defaults, 2 = strong
    device: str = ""  # '' = GPU 0 when available, else cpu
    name: str = ""
    recipe: str | None = None
    dataset: str = ""  # registered data set label for display
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    """One training run as stored."""

    id: int
    name: str
    dataset: str
    model: str
    args: dict
    device: str
    status: str
    pid: int | None
    run_dir: Path
    created_at: str
    started_at: str | None
    ended_at: str | None
    message: str | None
    best: dict

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


# ---------------------------------------------------------------------------- models


def project_variants() -> list[Path]:
    """The project's own architecture YAMLs in ``models/``."""
    return sorted(MODELS_DIR.glob("*.yaml")) if MODELS_DIR.is_dir() else []


def describe_variant(path: Path) -> str:
    """The leading comment block of a variant YAML (what it changes and why)."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").rstrip())
    return " ".join(lines)


def resolve_model(model: str) -> str:
    """The model argument for Ultralytics: a built-in YAML name, a project YAML or a .pt path."""
    if model in ARCHITECTURES:
        return model
    local = MODELS_DIR / model
    if local.suffix in (".yaml", ".yml") and local.is_file():
        return str(local.resolve())
    path = Path(model).expanduser()
    if path.is_file() and path.suffix in (".pt", ".yaml", ".yml"):
        return str(path.resolve())
    raise TrainingError(
        f"Unknown model '{model}': give one of {', '.join(ARCHITECTURES)}, a YAML from "
        "models/, or a local .pt weights file (no downloads happen here).")


def _model_task(model: str) -> str:
    if model.endswith((".yaml", ".yml")):
        text = Path(model).read_text() if Path(model).is_file() else model
        return "segment" if "seg" in Path(model).stem or "Segment" in text else "detect"
    from core.detector import inspect_model

    return inspect_model(model).task


def _weights_names(model: str) -> tuple[str, ...] | None:
    if not model.endswith(".pt"):
        return None
    from core.detector import inspect_model

    info = inspect_model(model)
    return tuple(info.names[i] for i in sorted(info.names))


# ---------------------------------------------------------------------------- arguments


def augmentation(strength: float) -> dict:
    """Ultralytics augmentation hyper-parameters scaled from its defaults (1.0)."""
    s = max(0.0, min(2.0, float(strength)))
    return {"hsv_h": round(0.015 * s, 4), "hsv_s": min(1.0, 0.7 * s),
            "hsv_v": min(1.0, 0.4 * s), "translate": min(0.9, 0.1 * s),
            "scale": min(0.9, 0.5 * s), "fliplr": 0.5 if s > 0 else 0.0,
            "mosaic": 1.0 if s > 0 else 0.0}


def parse_extra(text: str) -> dict:
    """The advanced-options YAML box: a mapping of Ultralytics train arguments."""
    if not text or not text.strip():
        return {}
    try:
        extra = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TrainingError(f"The advanced options are not valid YAML: {exc}") from exc
    if not isinstance(extra, dict):
        raise TrainingError("The advanced options must be 'key: value' lines.")
    from ultralytics.cfg import DEFAULT_CFG_DICT

    unknown = sorted(k for k in extra if k not in DEFAULT_CFG_DICT)
    if unknown:
        raise TrainingError(f"Unknown training option(s): {', '.join(unknown)}.")
    return extra


def default_device() -> str:
    """GPU 0 when torch sees one, else the CPU."""
    import torch

    return "0" if torch.cuda.is_available() else "cpu"


def available_recipes() -> dict:
    """``core.recipes.RECIPES`` (name -> Recipe), or empty when that module does not exist."""
    if importlib.util.find_spec("core.recipes") is None:
        return {}
    from core.recipes import RECIPES

    return RECIPES


def recipe_names() -> list[str]:
    """Training recipes offered by core/recipes.py (empty when it does not exist)."""
    return sorted(available_recipes())


def recipe_help() -> str:
    """One line per recipe with its description (for tooltips and ``--help``)."""
    return "\n\n".join(f"{name}: {getattr(r, 'description', '')}"
                         for name, r in sorted(available_recipes().items()))


# Arguments the user always sets explicitly (a recipe's overrides never replace them).
EXPLICIT_ARGS = frozenset({"data", "epochs", "imgsz", "batch", "patience", "device", "project",
                           "name", "exist_ok"})


def train_args(spec: TrainSpec, run_dir: Path, device: str) -> dict:
    """The full Ultralytics ``train()`` keyword arguments of a run."""
    args = {**augmentation(spec.augment), **spec.extra}
    args.update(data=spec.data, epochs=int(spec.epochs), imgsz=int(spec.imgsz),
                batch=int(spec.batch), patience=int(spec.patience), device=device,
                project=str(run_dir), name="train", exist_ok=True, verbose=True)
    return args


# ---------------------------------------------------------------------------- store rows


def _row_to_run(row: sqlite3.Row) -> Run:
    return Run(id=row["id"], name=row["name"], dataset=row["dataset"], model=row["model"],
               args=json.loads(row["args_json"]), device=row["device"], status=row["status"],
               pid=row["pid"], run_dir=Path(row["run_dir"]), created_at=row["created_at"],
               started_at=row["started_at"], ended_at=row["ended_at"], message=row["message"],
               best=json.loads(row["best_json"] or "{}"))


def get_run(conn: sqlite3.Connection, ref: int | str) -> Run:
    """A run by id or by name (the newest with that name)."""
    row = row_by_ref(conn, "runs", ref)
    if row is None:
        raise TrainingError(f"No training run '{ref}'.")
    return _row_to_run(row)


def list_runs(conn: sqlite3.Connection, reconcile_first: bool = True) -> list[Run]:
    """All runs, newest first (after :func:`reconcile`, so states are true)."""
    if reconcile_first:
        reconcile(conn)
    return [_row_to_run(r) for r in conn.execute("SELECT * FROM runs ORDER BY id DESC")]


def _set(conn: sqlite3.Connection, run_id: int, only_if: tuple[str, ...] | None = None,
         **cols) -> bool:
    sets = ", ".join(f"{k}=?" for k in cols)
    sql, params = f"UPDATE runs SET {sets} WHERE id=?", [*cols.values(), run_id]
    if only_if:
        sql += f" AND status IN ({','.join('?' * len(only_if))})"
        params += list(only_if)
    return conn.execute(sql, params).rowcount > 0


# ---------------------------------------------------------------------------- processes


def process_alive(pid: int | None, run_id: int | None = None) -> bool:
    """Whether ``pid`` is a live (not zombie) GloveWatch training worker (of run ``run_id``)."""
    if not pid:
        return False
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, IndexError):
            return False
        # A zombie is dead; another program with a recycled pid is not our worker.
        argv = cmdline.split(b"\0")
        return (state not in ("Z", "X") and b"core.train_worker" in argv
                and (run_id is None or str(run_id).encode() in argv))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _spawn(run: Run) -> int:
    run.run_dir.mkdir(parents=True, exist_ok=True)
    with open(run.log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core.train_worker", str(run.id)],
            cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "YOLO_VERBOSE": "true"})
    # Reap it when it ends so a long-lived parent (Streamlit) keeps no zombies.
    threading.Thread(target=proc.wait, daemon=True).start()
    return proc.pid


def min_free_bytes() -> int:
    """Free space a run needs to start (``GLOVEWATCH_TRAIN_MIN_FREE_MB``, default 1024)."""
    return settings().train_min_free_mb << 20


def check_disk(folder: Path) -> None:
    """Raise :class:`TrainingError` when ``folder`` has too little free space for a run."""
    free = shutil.disk_usage(folder).free
    if free < min_free_bytes():
        raise TrainingError(
            f"Not enough disk space to train: {free >> 20} MB free in {folder}, a run needs at "
            f"least {min_free_bytes() >> 20} MB (GLOVEWATCH_TRAIN_MIN_FREE_MB). Free some space "
            "(old runs, exports) and try again.")


def start_next(conn: sqlite3.Connection) -> list[Run]:
    """Start the oldest queued run of every device that has none running; returns those."""
    started = []
    with transaction(conn):
        busy = {r[0] for r in conn.execute("SELECT device FROM runs WHERE status='running'")}
        queued = conn.execute("SELECT * FROM runs WHERE status='queued' ORDER BY id").fetchall()
        for row in queued:
            run = _row_to_run(row)
            if run.device in busy:
                continue
            try:
                check_disk(run.run_dir.parent)
                pid = _spawn(run)
            except (TrainingError, OSError) as exc:
                _set(conn, run.id, status="failed", ended_at=now(), message=str(exc))
                continue
            _set(conn, run.id, status="running", pid=pid, started_at=run.started_at or now())
            busy.add(run.device)
            started.append(get_run(conn, run.id))
    return started


def reconcile(conn: sqlite3.Connection) -> list[Run]:
    """Mark 'running' runs whose process is gone as failed, then start queued runs.

    Returns the runs that were marked failed.
    """
    dead = []
    for row in conn.execute("SELECT * FROM runs WHERE status='running'").fetchall():
        run = _row_to_run(row)
        if process_alive(run.pid, run.id):
            continue
        msg = (f"The training process (pid {run.pid}) ended without reporting: it was killed "
               f"or crashed (out of memory?). See {run.log_path}.")
        if _set(conn, run.id, only_if=("running",), status="failed", ended_at=now(),
                message=msg, best_json=json.dumps(best_scores(read_metrics(run)))):
            dead.append(get_run(conn, run.id))
    if conn.execute("SELECT 1 FROM runs WHERE status='queued' LIMIT 1").fetchone():
        start_next(conn)
    return dead


# ---------------------------------------------------------------------------- public API


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:60] or "run"


def submit(conn: sqlite3.Connection, spec: TrainSpec) -> Run:
    """Queue a run (and start it at once when its device is free).

    Checks first: the data set file, the model, the recipe, disk space, a segmentation model
    on box-only labels, and an identical run already queued or running. A fine-tune whose
    class names differ from the data set's is allowed (the head is rebuilt); the run's message
    says so.
    """
    s = ensure_home()
    data = Path(spec.data)
    if not data.is_file():
        raise TrainingError(f"Data set file not found: {data}")
    try:
        ds_cfg = yaml.safe_load(data.read_text()) or {}
    except yaml.YAMLError as exc:
        raise TrainingError(f"{data.name} is not valid YAML: {exc}") from exc
    names = ds_cfg.get("names") or {}
    ds_names = tuple(names.values()) if isinstance(names, dict) else tuple(names)
    model = resolve_model(spec.model)
    if spec.recipe and spec.recipe != "default" and spec.recipe not in available_recipes():
        raise TrainingError(f"Unknown recipe '{spec.recipe}'; available: "
                            f"{', '.join(recipe_names()) or 'none'}.")
    notes = []
    from core.datasets import ValidationReport, detect_layout, validate

    known = conn.execute("SELECT report_json FROM datasets WHERE path=? ORDER BY id DESC"
                         " LIMIT 1", (str(data),)).fetchone()
    try:  # a registered data set was validated on import; anything else is checked now
        report = (ValidationReport.from_json(known[0]) if known
                  else validate(detect_layout(data)))
    except ValueError as exc:
        raise TrainingError(str(exc)) from exc
    if report.errors:
        raise TrainingError(" ".join(report.errors))
    if _model_task(model) == "segment" and report.task != "segment":
        raise TrainingError("A segmentation model needs polygon labels, but this data set has "
                            "boxes. Pick a detection model (without -seg).")
    weight_names = _weights_names(model)
    if weight_names is not None and weight_names != ds_names:
        notes.append(f"The weights' classes ({', '.join(weight_names)}) differ from the data "
                     f"set's ({', '.join(ds_names)}): the output layer is rebuilt for the data "
                     "set and the rest of the network is fine-tuned.")
    check_disk(s.runs_dir)
    device = spec.device or default_device()
    if device != "cpu" and default_device() == "cpu":
        raise TrainingError(f"Device '{device}' was asked for, but no GPU is visible here; "
                            "use 'cpu' or leave the device empty.")
    name = spec.name or f"{Path(model).stem}-{spec.dataset or data.parent.name}"
    with transaction(conn):
        clash = conn.execute(
            "SELECT id, status FROM runs WHERE status IN ('queued','running') AND name=?",
            (name,)).fetchone()
        if clash:
            raise TrainingError(f"A run named '{name}' is already {clash['status']} (run "
                                f"{clash['id']}); stop it first or choose another name.")
        cur = conn.execute(
            "INSERT INTO runs (name, dataset, model, args_json, device, status, run_dir,"
            " created_at, message) VALUES (?,?,?,?,?,'queued','',?,?)",
            (name, spec.dataset or str(data), model, "{}", device, now(),
             " ".join(notes) or None))
        run_id = int(cur.lastrowid)
        run_dir = s.runs_dir / f"{run_id:04d}-{_slug(name)}"
        args = train_args(spec, run_dir, device)
        payload = {**args, "model": model, "recipe": spec.recipe,
                   "explicit": sorted(EXPLICIT_ARGS | set(spec.extra))}
        _set(conn, run_id, run_dir=str(run_dir), args_json=json.dumps(payload))
    start_next(conn)
    return get_run(conn, run_id)


def _wait_dead(pid: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not process_alive(pid):
            return True
        time.sleep(0.2)
    return not process_alive(pid)


def stop(conn: sqlite3.Connection, ref: int | str, timeout: float = 15.0) -> Run:
    """Stop a queued or running run (SIGTERM to its process group, SIGKILL after ``timeout``).

    A stopped run keeps its last epoch's checkpoint and can be resumed.
    """
    run = get_run(conn, ref)
    if run.status not in ACTIVE:
        raise TrainingError(f"Run {run.id} is {run.status}, not running or queued.")
    _set(conn, run.id, only_if=ACTIVE, status="stopped", ended_at=now(),
         message="Stopped by the user.")
    if run.status == "running" and process_alive(run.pid):
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(run.pid, sig)
            except (ProcessLookupError, PermissionError):
                break
            if _wait_dead(run.pid, wait):
                break
    start_next(conn)
    return get_run(conn, run.id)


def resume(conn: sqlite3.Connection, ref: int | str) -> Run:
    """Queue a stopped or failed run again, continuing from its last checkpoint."""
    run = get_run(conn, ref)
    if run.status in ACTIVE:
        raise TrainingError(f"Run {run.id} is already {run.status}.")
    if run.status == "finished":
        raise TrainingError(f"Run {run.id} has finished; start a new run to train further.")
    if not run.last_pt.is_file():
        raise TrainingError(f"Run {run.id} has no checkpoint to resume from (it stopped before "
                            "its first epoch ended); start it again instead.")
    check_disk(run.run_dir.parent)
    with transaction(conn):
        clash = conn.execute("SELECT id FROM runs WHERE status IN ('queued','running') AND "
                             "name=? AND id!=?", (run.name, run.id)).fetchone()
        if clash:
            raise TrainingError(f"Another run named '{run.name}' is active (run {clash[0]}).")
        _set(conn, run.id, status="queued", pid=None, ended_at=None, message="Resuming.",
             args_json=json.dumps({**run.args, "resume": True}))
    start_next(conn)
    return get_run(conn, run.id)


def wait(conn: sqlite3.Connection, ref: int | str, timeout: float | None = None,
         poll: float = 1.0) -> Run:
    """Block until a run is no longer queued or running (or ``timeout`` seconds pass)."""
    end = None if timeout is None else time.monotonic() + timeout
    while True:
        reconcile(conn)
        run = get_run(conn, ref)
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


def best_scores(metrics: Metrics) -> dict:
    """Scores of the best epoch so far (by mAP50-95), keyed by results.csv column."""
    col = fitness_column(metrics)
    if col is None or not metrics.rows:
        return {}
    i = metrics.columns.index(col)
    row = max(metrics.rows, key=lambda r: r[i])
    keep = ("epoch",) + tuple(c for c in metrics.columns if c.startswith("metrics/"))
    return {c: row[metrics.columns.index(c)] for c in keep if metrics.has(c)}


def progress(run: Run, metrics: Metrics | None = None) -> Progress:
    """Epochs done, elapsed and estimated remaining time of a run."""
    metrics = metrics if metrics is not None else read_metrics(run)
    done = len(metrics.rows)
    elapsed = metrics.series("time")[-1] if done and metrics.has("time") else 0.0
    if run.status == "running" and not done and run.started_at:
        from datetime import datetime

        started = datetime.strptime(run.started_at, "%Y-%m-%d %H:%M:%S")
        elapsed = (datetime.now() - started).total_seconds()
    remaining = elapsed / done * max(0, run.epochs - done) if done else None
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
