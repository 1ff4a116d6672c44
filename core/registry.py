"""Model registry: which weights file is the active model, and the history of promotions.

Promoting a training run copies its ``best.pt`` into ``<home>/models`` (content-addressed, so
a later cleanup of runs cannot pull the active model away), writes its model card and records
who promoted it, when, with which scores, data set, file hash and class roles. Exactly one
entry is active; rolling back re-activates an earlier one or the shipped default.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from core import store as st
from core.compliance import ClassRoles
from core.config import ensure_home, settings
from core.evaluate import EvalResult, evaluate

log = logging.getLogger(__name__)


class RegistryError(ValueError):
    """A promotion or rollback that cannot be done, with a message for the user."""


@dataclass(frozen=True)
class RegistryEntry:
    """One promotion."""

    id: int
    path: Path
    sha256: str
    run_id: int | None
    dataset: str | None
    roles: dict[str, str]
    scores: dict
    promoted_by: str
    promoted_at: str
    active: bool


@dataclass(frozen=True)
class Comparison:
    """A run's best weights and the active model evaluated on the same data set split.

    ``active`` is None when the active model has other classes than the run (its scores on
    this data set would mean nothing); ``note`` then says why.
    """

    candidate: EvalResult
    active: EvalResult | None
    active_path: Path
    note: str = ""


def _row(row: sqlite3.Row) -> RegistryEntry:
    return RegistryEntry(id=row["id"], path=Path(row["path"]), sha256=row["sha256"],
                         run_id=row["run_id"], dataset=row["dataset"],
                         roles=json.loads(row["roles_json"] or "{}"),
                         scores=json.loads(row["scores_json"] or "{}"),
                         promoted_by=row["promoted_by"], promoted_at=row["promoted_at"],
                         active=bool(row["active"]))


def active_weights(conn: sqlite3.Connection | None = None) -> Path:
    """The promoted model if one is active and its file exists, else the shipped default."""
    s = settings()
    try:
        own = conn is None
        conn = conn or st.connect()
        row = conn.execute("SELECT path FROM model_registry WHERE active=1"
                           " ORDER BY id DESC LIMIT 1").fetchone()
        if own:
            conn.close()
    except (sqlite3.Error, OSError) as exc:  # unreadable store: fall back, never fail here
        log.warning("model registry unavailable (%s); using the shipped model", exc)
        return s.default_weights
    if row and Path(row["path"]).exists():
        return Path(row["path"])
    return s.default_weights


def active_entry(conn: sqlite3.Connection) -> RegistryEntry | None:
    """The active promotion, or None while the shipped default is in use."""
    row = conn.execute("SELECT * FROM model_registry WHERE active=1 ORDER BY id DESC"
                       " LIMIT 1").fetchone()
    return _row(row) if row else None


def history(conn: sqlite3.Connection) -> list[RegistryEntry]:
    """Every promotion, newest first."""
    return [_row(r) for r in conn.execute("SELECT * FROM model_registry ORDER BY id DESC")]


def _names(weights: Path) -> dict[int, str]:
    from core.detector import inspect_model

    return dict(inspect_model(weights).names)


def compare(conn: sqlite3.Connection, run_ref: int | str, split: str = "val",
            imgsz: int | None = None) -> Comparison:
    """Evaluate a run's ``best.pt`` and the active model on the run's data set ``split``."""
    from core.training import get_run

    run = get_run(conn, run_ref)
    if not run.best_pt.is_file():
        raise RegistryError(f"Run {run.id} has no best.pt yet (status {run.status}).")
    data = run.args["data"]
    imgsz = imgsz or int(run.args.get("imgsz", 640))
    candidate = evaluate(run.best_pt, data, split=split, imgsz=imgsz)
    current = active_weights(conn)
    if _names(current) != _names(run.best_pt):
        return Comparison(candidate, None, current,
                          note=f"The active model ({current.name}) has other classes than this "
                               "run, so it cannot be scored on this data set.")
    return Comparison(candidate, evaluate(current, data, split=split, imgsz=imgsz), current)


def promote(conn: sqlite3.Connection, run_ref: int | str, promoted_by: str | None = None,
            scores: dict | None = None, roles: dict[str, str] | None = None) -> RegistryEntry:
    """Make a run's ``best.pt`` the active model and record the promotion.

    ``scores`` defaults to the run's best epoch scores; ``roles`` overrides the class roles
    implied by the class names (``{class name: protected|violation|context}``).
    """
    from core.detector import file_sha256
    from core.modelcard import ModelCard, write_card
    from core.training import ACTIVE, get_run

    run = get_run(conn, run_ref)
    if run.status in ACTIVE:
        raise RegistryError(f"Run {run.id} is still {run.status}; promote it when it ends.")
    if not run.best_pt.is_file():
        raise RegistryError(f"Run {run.id} has no best.pt to promote (status {run.status}).")
    sha = file_sha256(run.best_pt)
    models_dir = ensure_home().home / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / f"run{run.id:04d}-{sha[:12]}.pt"
    if not target.exists():
        tmp = target.with_suffix(".part")
        shutil.copyfile(run.best_pt, tmp)
        os.replace(tmp, target)  # never leave a half-copied active model
    role_map = ClassRoles.from_names(_names(target), roles).as_dict()
    scores = scores if scores is not None else dict(run.best)
    by = promoted_by or settings().user or getpass.getuser()
    write_card(target, ModelCard(
        title=f"Run {run.id} '{run.name}' ({Path(run.model).name})", data=run.args["data"],
        split=str(scores.get("split", "val")), map50=_pick(scores, "mAP50"),
        map50_95=_pick(scores, "mAP50-95"),
        roles=role_map, notes=f"Promoted by {by} from {run.best_pt}."))
    with st.transaction(conn):
        conn.execute("UPDATE model_registry SET active=0 WHERE active=1")
        cur = conn.execute(
            "INSERT INTO model_registry (path, sha256, run_id, dataset, roles_json, scores_json,"
            " promoted_by, promoted_at, active) VALUES (?,?,?,?,?,?,?,?,1)",
            (str(target), sha, run.id, run.dataset, json.dumps(role_map), json.dumps(scores),
             by, st.now()))
    log.info("run %s promoted to the active model by %s", run.id, by)
    return _row(conn.execute("SELECT * FROM model_registry WHERE id=?",
                             (cur.lastrowid,)).fetchone())


def _pick(scores: dict, metric: str) -> float | None:
    """``mAP50`` from a results.csv-keyed score dict (masks before boxes) or an eval dict."""
    for key in (f"metrics/{metric}(M)", f"metrics/{metric}(B)", metric):
        if key in scores:
            return float(scores[key])
    return None


def rollback(conn: sqlite3.Connection, to_id: int | None = None) -> RegistryEntry | None:
    """Re-activate entry ``to_id``, or the promotion before the active one.

    Returns the now active entry, or None when the shipped default model is active again.
    """
    current = active_entry(conn)
    if to_id is not None:
        row = conn.execute("SELECT * FROM model_registry WHERE id=?", (to_id,)).fetchone()
        if row is None:
            raise RegistryError(f"No registry entry {to_id}.")
    else:
        below = current.id if current else 1 << 62
        row = next((r for r in conn.execute(
            "SELECT * FROM model_registry WHERE id<? ORDER BY id DESC", (below,))
            if Path(r["path"]).exists()), None)
    if row is not None and not Path(row["path"]).exists():
        raise RegistryError(f"The weights of entry {row['id']} are gone: {row['path']}.")
    with st.transaction(conn):
        conn.execute("UPDATE model_registry SET active=0 WHERE active=1")
        if row is not None:
            conn.execute("UPDATE model_registry SET active=1 WHERE id=?", (row["id"],))
    return active_entry(conn)
