"""Labelling a station's frames: pre-labels from its active model, corrections kept with who
and when, YOLO export and import, and completing a data set that lacks a class."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.config import settings
from core.errors import DatasetError, MediaError
from core.media import read_image
from core.storage import Store
from core.training import registry
from core.training.site.collect import CollectReport, collect
from core.training.site.frames import (
    MIN_HAMMING,
    Box,
    SiteFrame,
    boxes_of,
    check_boxes,
    class_names,
    dhash,
    frames,
    hamming,
    prelabel_image,
    write_label,
)
from core.vision.detector import DETECTORS, Detector, InferenceParams
from core.vision.yolo_data import images_in, label_path, read_labels, read_layout


def prelabel(
    store: Store, station: str, weights: Path | None = None, conf: float = 0.25, by: str = "-"
) -> int:
    """Pre-label the station's unlabelled frames with its active model; returns how many."""
    weights = weights or registry.active_weights(store, station)
    n = 0
    for fr in frames(store, station, status=("new",)):
        image = read_image(fr.path)
        dets, model = prelabel_image(image, weights, conf)
        store.site.set_labels(
            fr.id, boxes_of(dets, image.shape[:2]), by, "prelabel", "prelabelled", model
        )
        n += 1
    return n


def save_labels(
    store: Store,
    frame_id: int,
    boxes: Iterable[dict[str, Any]],
    by: str,
    done: bool,
    classes: int = 2,
) -> list[Box]:
    """Store corrected boxes of a frame (kept in its history with who and when)."""
    rec = store.site.get(frame_id)
    if rec is None:
        raise DatasetError(f"There is no site frame #{frame_id}.")
    clean = check_boxes(boxes, classes)
    store.site.set_labels(frame_id, clean, by, "done" if done else "edit", "done" if done else None)
    return clean


def save_edit(
    store: Store,
    fr: SiteFrame,
    boxes: list[dict[str, Any]] | None,
    done: bool,
    by: str,
    classes: int,
) -> bool:
    """What the box editor sent for a frame: changed boxes are stored (done or not), and
    "done" on unchanged boxes marks them done. Returns whether anything was stored."""
    if boxes is not None and boxes != fr.record.boxes:
        save_labels(store, fr.id, boxes, by, done=done, classes=classes)
        return True
    if done:
        save_labels(store, fr.id, fr.record.boxes, by, done=True, classes=classes)
        return True
    return False


def export_yolo(store: Store, station: str, out_dir: Path, only_done: bool = True) -> Path:
    """The station's labelled frames as a YOLO data set: ``train`` the train blocks, ``val``
    the held-out blocks. Returns the data.yaml."""
    import yaml

    out_dir = Path(out_dir)
    status = ("done",) if only_done else ("done", "prelabelled")
    n = 0
    for fr in frames(store, station, status=status):
        split = "train" if fr.record.split == "train" else "val"
        img = out_dir / "images" / split / fr.path.name
        img.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fr.path, img)
        write_label(SiteFrame(fr.record, img))
        n += 1
    if not n:
        raise DatasetError(f"{station} has no labelled frames to export yet.")
    for split in ("train", "val"):
        (out_dir / "images" / split).mkdir(parents=True, exist_ok=True)
    doc = {
        "path": str(out_dir.resolve()),
        "train": "images/train",
        "val": "images/val",
        "names": dict(enumerate(class_names(store, station))),
    }
    (out_dir / "data.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return out_dir / "data.yaml"


def _label_boxes(img: Path, folder: Path, classes: int) -> list[Box]:
    """A YOLO label file's shapes as stored boxes (their bounding boxes)."""
    boxes = [
        {
            "class_id": s.class_id,
            "x1": float(s.points[:, 0].min()),
            "y1": float(s.points[:, 1].min()),
            "x2": float(s.points[:, 0].max()),
            "y2": float(s.points[:, 1].max()),
        }
        for s in read_labels(label_path(img, folder))
    ]
    return check_boxes(boxes, classes)


def import_yolo(
    store: Store, station: str, source: Path, by: str = "-", done: bool = True
) -> CollectReport:
    """Import labels (and images not collected yet) from a YOLO folder or data.yaml: a
    frame whose image name matches gets those labels; other images become new frames."""
    layout = read_layout(source)
    known = [(fr.record.phash, fr) for fr in frames(store, station)]
    rep = CollectReport()
    status = "done" if done else "prelabelled"
    for split_name, folders in layout.splits.items():
        # the source's own split is kept: its val/test images are held out
        split = "train" if split_name == "train" else "holdout"
        for folder in folders:
            for img in images_in(folder):
                boxes = _label_boxes(img, folder, len(layout.names))
                try:
                    image = read_image(img)
                except MediaError as exc:
                    rep.errors.append(str(exc))
                    continue
                # the same picture already collected (by content, whatever its file name)
                h = dhash(image)
                fr = next((f for ph, f in known if hamming(h, ph) < MIN_HAMMING), None)
                fid = fr.id if fr is not None else None
                if fid is None:
                    fid = collect(store, station, image, "import", by=by, split=split)
                if fid is None:
                    rep.near_copies += 1
                    continue
                store.site.set_labels(fid, boxes, by, "import", status)
                rep.added += 1
    return rep


@dataclass
class CompletionReport:
    """What :func:`complete_missing` copied, kept and added."""

    images: int = 0
    kept: int = 0  # labelled boxes kept as they were
    added: int = 0  # missing-class boxes added from the model


def _complete_image(
    det: Detector, img: Path, folder: Path, cid: int, conf: float, max_overlap: float
) -> tuple[list[str], int, int]:
    """An image's label lines with the model's ``cid`` boxes added where nothing labelled
    overlaps them; with how many were kept and added."""
    from core.vision.detections import box_iou

    image = read_image(img)
    h, w = image.shape[:2]
    shapes = read_labels(label_path(img, folder))
    truth = np.array([s.to_box().xyxy(w, h) for s in shapes]).reshape(-1, 4)
    found = det.detect(image, InferenceParams(conf=conf)).detections
    found = found[found.class_id == cid]
    if len(found) and len(truth):
        found = found[box_iou(found.xyxy, truth).max(1) < max_overlap]
    lines = [
        f"{s.class_id} {b.cx:.6f} {b.cy:.6f} {b.w:.6f} {b.h:.6f}\n"
        for s in shapes
        for b in [s.to_box()]
    ]
    lines += [
        f"{cid} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} "
        f"{(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}\n"
        for x1, y1, x2, y2 in found.xyxy.tolist()
    ]
    return lines, len(shapes), len(found)


def complete_missing(
    source: Path | str,
    missing: str,
    out_dir: Path,
    weights: Path | None = None,
    conf: float = 0.5,
    max_overlap: float = 0.3,
) -> CompletionReport:
    """Copy a data set whose labels lack class ``missing`` (e.g. industrial photos where only
    gloves are labelled), adding the model's ``missing`` boxes (confidence >= ``conf``) that
    do not overlap a labelled box: the pre-labels a person then checks on the Label page.
    The copy keeps the source's splits; its yaml says what was added."""
    import yaml

    layout = read_layout(source)
    if missing not in layout.names:
        raise DatasetError(f"The data set has no class '{missing}'.")
    cid = layout.names.index(missing)
    weights = weights or settings().default_weights
    rep = CompletionReport()
    out_dir = Path(out_dir)
    with DETECTORS.acquire(weights) as det:
        for split, folders in layout.splits.items():
            for folder in folders:
                for img in images_in(folder):
                    lines, kept, added = _complete_image(det, img, folder, cid, conf, max_overlap)
                    dst = out_dir / "images" / split / img.name
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(img, dst)
                    lab = out_dir / "labels" / split / f"{img.stem}.txt"
                    lab.parent.mkdir(parents=True, exist_ok=True)
                    lab.write_text("".join(lines))
                    rep.images, rep.kept, rep.added = (
                        rep.images + 1,
                        rep.kept + kept,
                        rep.added + added,
                    )
    doc = {
        "path": str(out_dir.resolve()),
        **{s: f"images/{s}" for s in layout.splits},
        "names": dict(enumerate(layout.names)),
    }
    (out_dir / "data.yaml").write_text(
        f"# {layout.yaml_path} with '{missing}' boxes added from {Path(weights).name} "
        f"(confidence >= {conf}, not overlapping a labelled box): {rep.added} added.\n"
        + yaml.safe_dump(doc, sort_keys=False)
    )
    return rep
