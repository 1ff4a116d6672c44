"""The process that trains one run: ``python -m core.train_worker RUN_ID``.

Started by :mod:`core.training` in its own session with stdout/stderr going to the run's
``train.log``. It reads its arguments from the store, applies the recipe, trains with
Ultralytics, writes the outcome back and then starts the next queued run.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import signal
import sys
import traceback
from pathlib import Path

import core  # noqa: F401  (offline environment before ultralytics)
from core import store, training
from core.config import MODELS_DIR


def _register_project_modules() -> None:
    """Let Ultralytics build the project's own layers (models/__init__.py ``register()``)."""
    if not (MODELS_DIR / "__init__.py").is_file():
        return
    sys.path.insert(0, str(MODELS_DIR.parent))
    module = importlib.import_module("models")
    if hasattr(module, "register"):
        module.register()


def _apply_recipe(args: dict, run: training.Run) -> dict:
    """Arguments with the recipe's data and overrides; what the user set explicitly wins."""
    name = args.pop("recipe", None)
    explicit = args.pop("explicit", sorted(training.EXPLICIT_ARGS))
    if not name or name == "default":
        return args
    recipe = training.available_recipes()[name]
    data = recipe.prepare(Path(args["data"]), run.run_dir / "recipe")
    return {**args, **recipe.train_overrides, **{k: args[k] for k in explicit if k in args},
            "data": str(data)}


def _epoch_callback(conn, run_id: int):
    def on_fit_epoch_end(trainer) -> None:
        run = training.get_run(conn, run_id)
        best = training.best_scores(training.read_metrics(run))
        conn.execute("UPDATE runs SET best_json=? WHERE id=?", (json.dumps(best), run_id))
    return on_fit_epoch_end


def _failure_message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return ("The disk is full: training stopped while writing. Free some space and resume "
                "the run.")
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"[:500]


def train(run_id: int) -> int:
    """Train run ``run_id`` to the end; returns the process exit code."""
    conn = store.connect()
    # Claim the run: the starter marks it 'running' in the same transaction that spawned us
    # (this write waits for that commit). Anything else means it was not ours to train.
    claimed = conn.execute("UPDATE runs SET pid=? WHERE id=? AND status='running'",
                           (os.getpid(), run_id)).rowcount
    if not claimed:
        print(f"run {run_id} is not marked running; nothing to do", file=sys.stderr)
        conn.close()
        return 3
    run = training.get_run(conn, run_id)
    # SIGTERM (stop) ends the process quietly; the store already says 'stopped'.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = dict(run.args)
    model_src = args.pop("model")
    resume = bool(args.pop("resume", False))
    try:
        _register_project_modules()
        from ultralytics import YOLO

        if resume:
            model = YOLO(str(run.last_pt))
        else:
            args = _apply_recipe(args, run)
            model = YOLO(model_src)
        model.add_callback("on_fit_epoch_end", _epoch_callback(conn, run_id))
        if resume:
            model.train(resume=True, device=args["device"])
        else:
            model.train(**args)
        best = training.best_scores(training.read_metrics(run))
        conn.execute("UPDATE runs SET status='finished', ended_at=?, best_json=?, message=?"
                     " WHERE id=? AND status='running'",
                     (store.now(), json.dumps(best), "Finished.", run_id))
        code = 0
    except SystemExit:
        raise
    except BaseException as exc:  # every failure must reach the store, not only Exceptions
        traceback.print_exc()
        conn.execute("UPDATE runs SET status='failed', ended_at=?, message=?, best_json=?"
                     " WHERE id=? AND status='running'",
                     (store.now(), _failure_message(exc),
                      json.dumps(training.best_scores(training.read_metrics(run))), run_id))
        code = 1
    training.start_next(conn)
    conn.close()
    return code


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: python -m core.train_worker RUN_ID")
    sys.exit(train(int(sys.argv[1])))
