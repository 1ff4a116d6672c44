"""Model registry: which weights file is the active model, and the history of promotions.

Promoting a training run copies its ``best.pt`` into ``<home>/models`` (content-addressed, so
a later cleanup of runs cannot pull the active model away), writes its model card (scores
with the data set, split, image count and image size they come from) and records who
promoted it, when, with which scores and class roles. Exactly one entry is active; rolling back
re-activates an earlier one or the shipped default. A candidate that scores lower than the
active model on the same split is only promoted with an explicit confirmation.
"""

from __future__ import annotations

import getpass
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import ensure_home, settings
from core.errors import GloveWatchError, RegistryError
from core.storage import Store
from core.storage.training import RegistryRecord
from core.training.runs import ACTIVE, Run, best_metric, get_run
from core.vision.detector import file_sha256, model_names
from core.vision.evaluate import EvalResult, evaluate
from core.vision.modelcard import ModelCard, read_card, write_card
from core.vision.roles import ClassRoles, Role
from core.vision.yolo_data import read_layout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegistryEntry(RegistryRecord):
    """One promotion."""

    def score_source(self) -> str:
        s = self.scores
        if "split" not in s:
            return "best training epoch (validation split)"
        return (
            f"{s.get('dataset') or self.dataset or 'data set'} {s['split']} split "
            f"({s.get('images', '?')} images, imgsz {s.get('imgsz', '?')})"
        )


def _entry(rec: RegistryRecord) -> RegistryEntry:
    return RegistryEntry(**vars(rec))


@dataclass(frozen=True)
class ActiveModel:
    """The model the app runs now, and where its scores come from."""

    path: Path
    entry: RegistryEntry | None  # None: the shipped default
    card: ModelCard | None

    @property
    def label(self) -> str:
        if self.entry is None:
            return f"shipped default {self.path.name}"
        run = f"run {self.entry.run_id}, " if self.entry.run_id else ""
        where = f" for {self.entry.station}" if self.entry.station else ""
        return (
            f"{self.path.name} ({run}promoted{where} by {self.entry.promoted_by} on "
            f"{self.entry.promoted_at[:10]})"
        )


def active_weights(store: Store | None = None, station: str | None = None) -> Path:
    """The model that judges ``station`` (or the plant-wide one): see :func:`active_model`."""
    return active_model(store, station).path


def active_model(store: Store | None = None, station: str | None = None) -> ActiveModel:
    """The model that judges ``station``: its own promoted model, else the plant-wide
    promoted one, else the shipped default (a missing weights file is skipped)."""
    s = settings()
    try:
        from core.storage import open_store

        registry = (store or open_store()).registry
        recs = [registry.active(station)] if station else []
        recs.append(registry.active())
    except GloveWatchError as exc:  # unreadable store: fall back, never fail here
        log.warning("model registry unavailable (%s); using the shipped model", exc)
        recs = []
    for rec in recs:
        if rec is not None and rec.path.exists():
            return ActiveModel(rec.path, _entry(rec), read_card(rec.path))
    return ActiveModel(s.default_weights, None, read_card(s.default_weights))


def history(store: Store) -> list[RegistryEntry]:
    """Every promotion, newest first."""
    return [_entry(r) for r in store.registry.all()]


@dataclass(frozen=True)
class Comparison:
    """A run's best weights and the active model scored on the same data set split.

    ``active`` is None when the active model has other classes than the run (its scores on
    this data set would mean nothing); ``note`` then says why.
    """

    candidate: EvalResult
    active: EvalResult | None
    active_path: Path
    note: str = ""

    @property
    def candidate_is_worse(self) -> bool:
        return self.active is not None and self.candidate.map50 < self.active.map50


def splits_of(store: Store, run_ref: int | str) -> list[str]:
    """Splits of a run's data set that exist (only those can be offered)."""
    run = get_run(store, run_ref)
    return [s for s in ("val", "test", "train") if s in read_layout(run.args["data"]).splits]


def compare(
    store: Store, run_ref: int | str, split: str = "val", imgsz: int | None = None
) -> Comparison:
    """Score a run's ``best.pt`` and the active model on the run's data set ``split``.

    ``imgsz`` None scores each model at the size it was trained at.
    """
    run = get_run(store, run_ref)
    if not run.best_pt.is_file():
        raise RegistryError(f"Run {run.id} has no best.pt yet (status {run.status}).")
    data = run.args["data"]
    candidate = evaluate(run.best_pt, data, split=split, imgsz=imgsz)
    current = active_weights(store)
    if model_names(current) != model_names(run.best_pt):
        return Comparison(
            candidate,
            None,
            current,
            note=f"The active model ({current.name}) has other classes than this "
            "run, so it cannot be scored on this data set.",
        )
    return Comparison(candidate, evaluate(current, data, split=split, imgsz=imgsz), current)


def eval_scores(res: EvalResult, dataset: str) -> dict[str, Any]:
    """The scores a promotion records, naming their source."""
    return {
        "dataset": dataset,
        "split": res.split,
        "images": res.images,
        "imgsz": res.imgsz,
        "mAP50": res.map50,
        "mAP50-95": res.map50_95,
        "per_class_ap50": res.per_class_ap50,
    }


def _split_images(run: Run, split: str) -> int | None:
    """Images in a split of the run's data set (None when it cannot be read any more)."""
    try:
        return len(read_layout(run.args["data"]).images(split))
    except (GloveWatchError, KeyError):
        return None


def _check_promotable(run: Run, comparison: Comparison | None, accept_lower: bool) -> None:
    if run.status in ACTIVE:
        raise RegistryError(f"Run {run.id} is still {run.status}; promote it when it ends.")
    if not run.best_pt.is_file():
        raise RegistryError(f"Run {run.id} has no best.pt to promote (status {run.status}).")
    if comparison is not None and comparison.candidate_is_worse and not accept_lower:
        assert comparison.active is not None
        raise RegistryError(
            f"Run {run.id} scores lower than the active model on {comparison.candidate.split} "
            f"(mAP50 {comparison.candidate.map50:.3f} vs {comparison.active.map50:.3f}); "
            "confirm to promote it anyway."
        )


def _copy_model(run: Run) -> tuple[Path, str]:
    """The run's best.pt copied into the data folder's models (named by its hash)."""
    sha = file_sha256(run.best_pt)
    models_dir = ensure_home().home / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / f"run{run.id:04d}-{sha[:12]}.pt"
    if not target.exists():
        tmp = target.with_suffix(".part")
        shutil.copyfile(run.best_pt, tmp)
        tmp.replace(target)  # never leave a half-copied active model
    return target, sha


def _promotion_scores(run: Run, comparison: Comparison | None) -> dict[str, Any]:
    """The evaluation's scores, or without one the run's best validation epoch."""
    if comparison is not None:
        return eval_scores(comparison.candidate, run.dataset)
    return {
        "dataset": run.dataset,
        "split": "val",
        "images": _split_images(run, "val"),
        "imgsz": run.args.get("imgsz"),
        "mAP50": best_metric(run.best, "mAP50"),
        "mAP50-95": best_metric(run.best, "mAP50-95"),
        "source": "best epoch",
    }


def _card(run: Run, scores: dict[str, Any], role_map: dict[str, str], by: str) -> ModelCard:
    return ModelCard(
        title=f"Run {run.id} '{run.name}' ({Path(run.model).name})",
        data=run.dataset,
        split=str(scores["split"]),
        images=scores.get("images"),
        imgsz=scores.get("imgsz"),
        map50=scores.get("mAP50"),
        map50_95=scores.get("mAP50-95"),
        per_class_ap50=scores.get("per_class_ap50", {}),
        roles=role_map,
        notes=f"Promoted by {by}.",
    )


def promote(
    store: Store,
    run_ref: int | str,
    promoted_by: str | None = None,
    comparison: Comparison | None = None,
    roles: dict[str, Role | str] | None = None,
    accept_lower: bool = False,
    station: str | None = None,
) -> RegistryEntry:
    """Make a run's ``best.pt`` the active model and record the promotion.

    Scores come from ``comparison`` (an evaluation on a named split) or, without one, the
    run's best validation epoch. A candidate that scores lower than the active model in the
    comparison needs ``accept_lower``. ``roles`` overrides the class roles implied by the
    class names (``{class name: protected|violation|context}``). With ``station`` the model
    judges only that station; the plant-wide model stays as it is.
    """
    run = get_run(store, run_ref)
    _check_promotable(run, comparison, accept_lower)
    target, sha = _copy_model(run)
    role_map = ClassRoles.from_names(dict(enumerate(model_names(target))), roles).as_dict()
    scores = _promotion_scores(run, comparison)
    by = promoted_by or settings().user or getpass.getuser()
    write_card(target, _card(run, scores, role_map, by))
    entry = _entry(
        store.registry.promote(str(target), sha, run.id, run.dataset, role_map, scores, by, station)
    )
    store.audit.add(
        by,
        "model.promote",
        target.name,
        {
            "run": run.id,
            "station": station,
            "scores": {k: v for k, v in scores.items() if k != "per_class_ap50"},
            "accepted_lower": bool(comparison and comparison.candidate_is_worse),
        },
    )
    log.info("run %s promoted to the active model by %s", run.id, by)
    return entry


def rollback(
    store: Store, to_id: int | None = None, by: str | None = None, station: str | None = None
) -> RegistryEntry | None:
    """Re-activate entry ``to_id``, or the promotion before the active one (of the plant, or
    of ``station``).

    Returns the now active entry, or None when no promotion is active in that scope any more
    (the shipped default, or at a station the plant-wide model, judges again).
    """
    current = store.registry.active(station)
    target: RegistryRecord | None
    if to_id is not None:
        target = store.registry.get(to_id)
        if target is None or target.station != station:
            raise RegistryError(
                f"No registry entry {to_id}"
                + (f" for {station}." if station else " for the plant.")
            )
        if not target.path.exists():
            raise RegistryError(f"The weights of entry {to_id} are gone.")
    else:
        below = current.id if current else 1 << 62
        target = next(
            (
                r
                for r in store.registry.all()
                if r.id < below and r.station == station and r.path.exists()
            ),
            None,
        )
    store.registry.activate(target.id if target else None, station)
    after = store.registry.active(station)
    store.audit.add(
        by or settings().user or getpass.getuser(),
        "model.rollback",
        after.path.name if after else "no promotion",
        {"station": station},
    )
    return _entry(after) if after else None
