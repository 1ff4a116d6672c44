"""Comparing and promoting per station: a fine-tune and the station's active model on the
station's held-out frames and on the base test split; a drop of more than ``MAX_BASE_DROP``
mAP50 on the base test split needs an explicit confirmation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.errors import RegistryError
from core.storage import Store
from core.training import registry, runs
from core.training.site.frames import class_names, frames, list_file, site_dir, write_label
from core.vision.evaluate import EvalResult, evaluate

MAX_BASE_DROP = 0.02  # mAP50 on the base test split a station model may lose unconfirmed


@dataclass(frozen=True)
class StationComparison:
    """A station fine-tune and the station's active model on the station's held-out frames
    and on the base test split."""

    station: str
    holdout: tuple[EvalResult, EvalResult] | None  # (candidate, active); None: no held-out
    base: tuple[EvalResult, EvalResult]
    active_path: Path

    @property
    def base_drop(self) -> float:
        """mAP50 the candidate loses on the base test split (negative: it gains)."""
        return self.base[1].map50 - self.base[0].map50

    @property
    def needs_confirmation(self) -> bool:
        """Whether promoting it needs an explicit confirmation."""
        return self.base_drop > MAX_BASE_DROP

    def rows(self) -> list[ScoreRow]:
        """One row per data set both models were scored on."""
        pairs = (("held-out frames of this station", self.holdout), ("base test split", self.base))
        return [
            ScoreRow(label, pair[0].images, round(pair[0].map50, 3), round(pair[1].map50, 3))
            for label, pair in pairs
            if pair is not None
        ]


@dataclass(frozen=True)
class ScoreRow:
    """Both models' mAP50 on one data set."""

    scored_on: str
    images: int
    candidate_map50: float
    active_map50: float


def holdout_data(store: Store, station: str) -> Path | None:
    """The station's labelled held-out frames as a data set to score on (None if none)."""
    import yaml

    held = frames(store, station, status=("done",), split="holdout")
    if not held:
        return None
    for fr in held:
        write_label(fr)
    out = site_dir(station) / "holdout"
    doc = {
        "path": str(out),
        "train": str(list_file(out / "holdout.txt", [fr.path for fr in held])),
        "val": str(out / "holdout.txt"),
        "test": str(out / "holdout.txt"),
        "names": dict(enumerate(class_names(store, station))),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "data.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return out / "data.yaml"


def compare_station(
    store: Store, station: str, run_ref: int | str, base_data: Path | str, imgsz: int | None = None
) -> StationComparison:
    """Score the run and the station's active model on its held-out frames and the base
    test split."""
    run = runs.get_run(store, run_ref)
    if not run.best_pt.is_file():
        raise RegistryError(f"Run {run.id} has no best.pt yet (status {run.status}).")
    active = registry.active_weights(store, station)
    hold = holdout_data(store, station)
    holdout = None
    if hold is not None:
        holdout = (
            evaluate(run.best_pt, hold, "test", imgsz),
            evaluate(active, hold, "test", imgsz),
        )
    base = (
        evaluate(run.best_pt, base_data, "test", imgsz),
        evaluate(active, base_data, "test", imgsz),
    )
    return StationComparison(station, holdout, base, active)


def promote_station(
    store: Store,
    station: str,
    run_ref: int | str,
    cmp: StationComparison,
    by: str,
    accept_drop: bool = False,
) -> registry.RegistryEntry:
    """Make a run the station's model; refused without ``accept_drop`` when it loses more
    than ``MAX_BASE_DROP`` mAP50 on the base test split."""
    if cmp.needs_confirmation and not accept_drop:
        raise RegistryError(
            f"The fine-tune loses {cmp.base_drop:.3f} mAP50 on the base test split (more than "
            f"{MAX_BASE_DROP}); confirm to promote it for {station} anyway."
        )
    return registry.promote(
        store,
        run_ref,
        promoted_by=by,
        station=station,
        comparison=registry.Comparison(cmp.base[0], cmp.base[1], cmp.active_path),
        accept_lower=True,
    )
