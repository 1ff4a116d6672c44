"""The process that trains one run: ``python -m core.training.worker RUN_ID``.

Started by :mod:`core.training.runs` in its own session with stdout/stderr going to the run's
``train.log``. It reads its arguments from the store, applies the recipe, trains with
Ultralytics, writes the outcome back and then starts the next queued run.
"""

from __future__ import annotations

import errno
import importlib
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from core.config import MODELS_DIR, apply_offline_environment, settings
from core.storage import Store, now, open_store
from core.training import options, runs
from core.training.recipes import RECIPES


def register_project_modules() -> None:
    """Let Ultralytics build the project's own layers (``models.register()``)."""
    if not (MODELS_DIR / "__init__.py").is_file():
        return
    if str(MODELS_DIR.parent) not in sys.path:
        sys.path.insert(0, str(MODELS_DIR.parent))
    module = importlib.import_module("models")
    if hasattr(module, "register"):
        module.register()
    # Ultralytics reloads best.pt / last.pt with the safe unpickler during the run
    from core.vision.weights import allow_project_layers

    allow_project_layers()


def _apply_recipe(args: dict[str, Any], run: runs.Run) -> dict[str, Any]:
    """Arguments with the recipe's data and overrides; what the user set explicitly wins."""
    name = args.pop("recipe", None)
    explicit = args.pop("explicit", sorted(options.EXPLICIT_ARGS))
    if not name or name == "default":
        return args
    recipe = RECIPES[name]
    data = recipe.prepare(Path(args["data"]), run.run_dir / "recipe")
    return {
        **args,
        **recipe.train_overrides,
        **{k: args[k] for k in explicit if k in args},
        "data": str(data),
    }


def _epoch_callback(store: Store, run_id: int) -> Any:
    def on_fit_epoch_end(trainer: Any) -> None:
        run = runs.get_run(store, run_id)
        store.runs.set(run_id, best=runs.best_scores(runs.read_metrics(run)))

    return on_fit_epoch_end


def _failure_message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return (
            "The disk is full: training stopped while writing. Free some space and resume the run."
        )
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"[:500]


def train(run_id: int) -> int:
    """Train run ``run_id`` to the end; returns the process exit code."""
    store = open_store()
    # Claim the run: the starter marks it 'running' in the same transaction that spawned us
    # (this write waits for that commit). Anything else means it was not ours to train.
    if not store.runs.set(run_id, only_if=("running",), pid=os.getpid()):
        print(f"run {run_id} is not marked running; nothing to do", file=sys.stderr)
        return 3
    run = runs.get_run(store, run_id)
    # SIGTERM (stop) ends the process quietly; the store already says 'stopped'.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = dict(run.args)
    model_src = args.pop("model")
    resume = bool(args.pop("resume", False))
    try:
        register_project_modules()
        from ultralytics import YOLO

        if resume:
            model = YOLO(str(run.last_pt))
        else:
            args = _apply_recipe(args, run)
            model = YOLO(model_src)
        model.add_callback("on_fit_epoch_end", _epoch_callback(store, run_id))
        model.add_callback("on_pretrain_routine_start", _use_all_cores)
        if resume:
            model.train(resume=True, device=args["device"])
        else:
            model.train(**args)
        store.runs.set(
            run_id,
            only_if=("running",),
            status="finished",
            ended_at=now(),
            best=runs.best_scores(runs.read_metrics(run)),
            message="Finished.",
        )
        code = 0
    except SystemExit:
        raise
    except BaseException as exc:  # every failure must reach the store, not only Exceptions
        traceback.print_exc()
        store.runs.set(
            run_id,
            only_if=("running",),
            status="failed",
            ended_at=now(),
            message=_failure_message(exc),
            best=runs.best_scores(runs.read_metrics(run)),
        )
        code = 1
    runs.start_next(store)
    return code


def _use_all_cores(_trainer: Any) -> None:
    """Train on every core. Ultralytics' device set-up leaves PyTorch at cpu_count - 1
    threads (one on a 2-core machine: half its speed); ``GLOVEWATCH_TORCH_THREADS`` still
    decides where it is set."""
    import torch

    torch.set_num_threads(settings().torch_threads or os.cpu_count() or 1)


def main(argv: list[str]) -> int | str:
    """The process's entry point: the offline environment and the safe weights loader before
    Ultralytics is imported, then the run ``argv[0]``; returns the exit status."""
    apply_offline_environment()
    if len(argv) != 1 or not argv[0].isdigit():
        return "usage: python -m core.training.worker RUN_ID"
    return train(int(argv[0]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
