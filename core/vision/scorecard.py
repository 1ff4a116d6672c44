"""One model scored on every split of every data set at hand, two-class and class-agnostic.

A set that labels only one class (``extra/ppe-gloves-osamah`` labels gloves, not the bare
hands in its pictures) is scored only on the classes it labels: its unlabelled hands would
count as false boxes. Its class-agnostic AP is still printed, marked as a lower bound, and
its hand recall (labelled hands found by a box of any class) is exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from core.vision.evaluate import EvalResult, evaluate
from core.vision.yolo_data import read_images_dir, read_layout, readme_labelled

SPLITS = ("test", "val")


@dataclass(frozen=True)
class ScoreRow:
    """The scores of one model on one split of one data set."""

    data_set: str
    split: str
    images: int
    labelled: tuple[str, ...]  # the classes this set labels
    map50: float  # over the labelled classes
    per_class_ap50: dict[str, float]
    agnostic_ap50: float
    hand_recall: float  # any-class matches at the operating point
    partial: bool  # the set leaves a class of the model unlabelled

    @property
    def note(self) -> str:
        """What a reader must know about this row."""
        return "agnostic AP is a lower bound: a class is unlabelled" if self.partial else ""


def labelled_classes(data: Path) -> tuple[str, ...]:
    """The classes a data set labels: what its README says ("What is labelled: glove."),
    else those with at least one box in any of its splits."""
    layout = read_layout(data)
    said = readme_labelled(data, layout.names)
    if said is not None:
        return said
    seen: set[int] = set()
    for split in layout.splits:
        for folder in layout.folders(split):
            for item in read_images_dir(folder):
                seen.update(b.class_id for b in item.boxes)
    return tuple(n for i, n in enumerate(layout.names) if i in seen)


def find_data_sets(roots: Iterable[Path]) -> list[Path]:
    """Every YOLO data set (a folder with data.yaml) at or up to two levels under each root,
    each once, in order."""
    found: dict[Path, None] = {}
    for root in roots:
        for pattern in ("data.yaml", "*/data.yaml", "*/*/data.yaml"):
            found.update((p.parent.resolve(), None) for p in sorted(root.glob(pattern)))
    return list(found)


def score_split(weights: Path, data: Path, split: str, imgsz: int | None = None) -> ScoreRow:
    """Two-class and class-agnostic scores of ``weights`` on one split of ``data``."""
    labelled = labelled_classes(data)
    two: EvalResult = evaluate(weights, data, split=split, imgsz=imgsz)
    one: EvalResult = evaluate(weights, data, split=split, imgsz=imgsz, agnostic=True)
    per_class = {c: ap for c, ap in two.per_class_ap50.items() if c in labelled}
    names = read_layout(data).names
    return ScoreRow(
        data_set=data.name,
        split=split,
        images=two.images,
        labelled=labelled,
        map50=sum(per_class.values()) / len(per_class) if per_class else 0.0,
        per_class_ap50=per_class,
        agnostic_ap50=next(iter(one.per_class_ap50.values()), 0.0),
        hand_recall=two.hand_recall,
        partial=len(labelled) < len(names),
    )


def scorecard(
    weights: Path,
    data_sets: Iterable[Path],
    imgsz: int | None = None,
    progress: Callable[[ScoreRow], None] | None = None,
) -> list[ScoreRow]:
    """Score ``weights`` on the test and val splits of every data set that has them;
    ``progress`` gets each row as soon as it is scored (a full scorecard takes minutes)."""
    rows = []
    for data in data_sets:
        layout = read_layout(data)
        for split in SPLITS:
            if split not in layout.splits or not layout.images(split):
                continue
            rows.append(score_split(weights, data, split, imgsz))
            if progress:
                progress(rows[-1])
    return rows
