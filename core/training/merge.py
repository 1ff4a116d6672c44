"""Several YOLO data sets merged into one to train on, honest about what each one labels.

Public glove/hand sets often label one class only (``extra/ppe-gloves-osamah`` boxes the
gloves, not the bare hands beside them). Merged naively, such a set teaches the model that a
bare hand is background. Two ways to merge, to be compared by an ablation:

- ``naive``: every set as it is (the baseline the issue warns about);
- ``pseudo``: in the train split of a one-class set, a teacher model labels the missing
  class where it is confident (default 0.6), away from the hands the set does label.

Validation and test splits of a one-class set are left out of the merged set (they would score
the unlabelled class as false boxes); :mod:`core.vision.scorecard` scores them on the class
they label. Every bad input is refused in words: an unknown class name, a README that says a
class is unlabelled while boxes of it exist; unreadable images are skipped and counted.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.errors import DatasetError, MediaError
from core.media import read_image
from core.vision.detections import box_iou
from core.vision.detector import DETECTORS, InferenceParams
from core.vision.yolo_data import (
    LabelledImage,
    YoloBox,
    read_images_dir,
    read_layout,
    readme_labelled,
)

CLASSES = ("glove", "hand")
STRATEGIES = ("naive", "pseudo")
PSEUDO_CONF = 0.6
OVERLAP_IOU = 0.3  # a teacher box this close to a labelled hand is that hand, not another


@dataclass(frozen=True)
class Source:
    """One data set to merge and the classes it labels."""

    path: Path
    labelled: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def partial(self) -> bool:
        return set(self.labelled) != set(CLASSES)


@dataclass
class MergeReport:
    """What a merge wrote: images per split, pseudo boxes and skipped files per source."""

    out: str
    strategy: str
    images: dict[str, int] = field(default_factory=dict)
    boxes: dict[str, int] = field(default_factory=dict)  # class -> labelled boxes written
    pseudo: dict[str, int] = field(default_factory=dict)  # source -> teacher boxes added
    skipped: dict[str, list[str]] = field(default_factory=dict)  # source -> unreadable images
    sources: dict[str, list[str]] = field(default_factory=dict)  # source -> labelled classes

    @property
    def data_yaml(self) -> Path:
        return Path(self.out) / "data.yaml"


def inspect_source(folder: Path) -> Source:
    """A data set checked for merging: known class names, and the classes it labels (what its
    README says, else the classes that have boxes; a class the README leaves out must have
    no box)."""
    layout = read_layout(folder)
    unknown = [n for n in layout.names if n not in CLASSES]
    if unknown:
        raise DatasetError(
            f"{folder.name} names class(es) {', '.join(unknown)}, which GloveWatch does not "
            f"know (it trains {', '.join(CLASSES)}): rename or drop them in its data.yaml."
        )
    counts = dict.fromkeys(layout.names, 0)
    for split in layout.splits:
        for images_dir in layout.folders(split):
            for item in read_images_dir(images_dir):
                for b in item.boxes:
                    counts[layout.names[b.class_id]] += 1
    said = readme_labelled(folder, layout.names)
    clash = [c for c in CLASSES if said is not None and c not in said and counts.get(c)]
    if clash:
        raise DatasetError(
            f"{folder.name}'s README says {', '.join(clash)} is not labelled, yet its labels "
            f"hold {sum(counts[c] for c in clash)} such box(es): fix the README or the labels."
        )
    labelled = said if said is not None else tuple(c for c in CLASSES if counts.get(c))
    if not labelled or not any(counts.get(c) for c in labelled):
        raise DatasetError(f"{folder.name} has no labelled box at all: nothing to learn from.")
    return Source(path=folder, labelled=labelled)


def _boxes_to_pixels(boxes: list[YoloBox], w: int, h: int) -> np.ndarray:
    return np.array([b.xyxy(w, h) for b in boxes], dtype=float).reshape(-1, 4)


def _pseudo_boxes(
    teacher: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    image: np.ndarray,
    kept: list[YoloBox],
    missing: set[int],
) -> list[YoloBox]:
    """Teacher boxes of the ``missing`` classes that do not overlap a labelled box."""
    h, w = image.shape[:2]
    xyxy, cls = teacher(image)
    pick = np.isin(cls, list(missing))
    xyxy, cls = xyxy[pick], cls[pick]
    if kept and len(xyxy):
        far = box_iou(xyxy, _boxes_to_pixels(kept, w, h)).max(1) < OVERLAP_IOU
        xyxy, cls = xyxy[far], cls[far]
    return [
        YoloBox(int(c), (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h)
        for (x1, y1, x2, y2), c in zip(xyxy.tolist(), cls.tolist(), strict=True)
    ]


def _write_item(
    item: LabelledImage, boxes: list[YoloBox], split: str, prefix: str, out: Path
) -> None:
    name = f"{prefix}__{item.image.name}"
    (out / "images" / split).mkdir(parents=True, exist_ok=True)
    (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(item.image, out / "images" / split / name)
    lines = [f"{b.class_id} {b.cx:.6f} {b.cy:.6f} {b.w:.6f} {b.h:.6f}" for b in boxes]
    label = out / "labels" / split / f"{Path(name).stem}.txt"
    label.write_text("\n".join(lines) + ("\n" if lines else ""))


def _merge_source(
    src: Source,
    out: Path,
    report: MergeReport,
    teacher: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None,
) -> None:
    layout = read_layout(src.path)
    ids = {i: CLASSES.index(n) for i, n in enumerate(layout.names)}
    missing = {CLASSES.index(c) for c in CLASSES if c not in src.labelled}
    report.sources[src.name] = list(src.labelled)
    report.pseudo.setdefault(src.name, 0)
    for split in layout.splits:
        if src.partial and split != "train":
            continue  # would score the unlabelled class as false boxes
        for images_dir in layout.folders(split):
            for item in read_images_dir(images_dir):
                try:
                    image = read_image(item.image)
                except MediaError:
                    report.skipped.setdefault(src.name, []).append(item.image.name)
                    continue
                boxes = [YoloBox(ids[b.class_id], b.cx, b.cy, b.w, b.h) for b in item.boxes]
                if teacher is not None and missing:
                    extra = _pseudo_boxes(teacher, image, boxes, missing)
                    report.pseudo[src.name] += len(extra)
                    boxes += extra
                _write_item(item, boxes, split, src.name, out)
                report.images[split] = report.images.get(split, 0) + 1
                for b in boxes:
                    report.boxes[CLASSES[b.class_id]] = report.boxes.get(CLASSES[b.class_id], 0) + 1


def _teacher(weights: Path, conf: float) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    def run(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with DETECTORS.acquire(weights) as det:
            d = det.detect(image, InferenceParams(conf=conf, imgsz=det.imgsz)).detections
        return np.asarray(d.xyxy, dtype=float), np.asarray(d.class_id, dtype=int)

    return run


def merge_datasets(
    folders: list[Path],
    out: Path,
    strategy: str = "pseudo",
    teacher: Path | None = None,
    conf: float = PSEUDO_CONF,
) -> MergeReport:
    """Merge the data sets in ``folders`` into a new YOLO set at ``out`` (see the module)."""
    if strategy not in STRATEGIES:
        raise DatasetError(f"Unknown merge strategy {strategy!r} (use {', '.join(STRATEGIES)}).")
    if strategy == "pseudo" and teacher is None:
        raise DatasetError("The 'pseudo' merge needs a teacher model (--teacher WEIGHTS).")
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out.name} already holds files: merge into a new folder.")
    sources = [inspect_source(Path(f)) for f in folders]
    if not any(not s.partial for s in sources):
        raise DatasetError("At least one data set must label both classes (it gives val/test).")
    run = _teacher(teacher, conf) if strategy == "pseudo" and teacher else None
    report = MergeReport(out=str(out), strategy=strategy)
    for src in sources:
        _merge_source(src, out, report, run if src.partial else None)
    splits = {s: f"images/{s}" for s in ("train", "val", "test") if report.images.get(s)}
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(CLASSES))
    head = f"# merged by `core merge-datasets` ({strategy}) from {', '.join(report.sources)}\n"
    body = "".join(f"{k}: {v}\n" for k, v in splits.items())
    (out / "data.yaml").write_text(f"{head}path: .\n{body}names:\n{names}")
    (out / "merge.json").write_text(json.dumps(asdict(report), indent=2))
    return report
