"""Score a model on a split of a YOLO data set: mAP50, mAP50-95, per-class AP, a confusion
matrix and speed, with full-frame or tiled inference.

One evaluator for every caller (the CLI's ``evaluate`` and ``evaluate-tiled``, Training's
compare and promote, the adaptation loop):

- full-frame scores are Ultralytics' own validator (``model.val``), so they are the numbers
  every YOLO user quotes for a data set;
- tiled scores run each image through :func:`~core.vision.tiling.detect_tiled` (there is no
  Ultralytics equivalent) and score with Ultralytics' ``ap_per_class`` over greedy,
  confidence-ordered matches at IoU 0.50:0.95, as its validator does;
- in both cases the confusion matrix and the time per image come from the app's own
  :class:`~core.vision.detector.Detector` at the operating point a user runs (confidence
  0.25, IoU 0.45), not at the 0.001 used for mAP.

Only classes the split labels are scored: a class a data set does not label is never counted.
``agnostic=True`` scores one class, "any hand" (glove or bare): whether the model *finds* the
hands at all, apart from telling a glove from skin.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import DatasetError, ModelError
from core.media import read_image
from core.vision.detections import box_iou
from core.vision.detector import DETECTORS, InferenceParams
from core.vision.tiling import TileSpec, detect_tiled
from core.vision.yolo_data import Layout, read_images_dir, read_layout, write_data_yaml

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
CONFUSION_CONF = 0.25
CONFUSION_IOU = 0.45
AGNOSTIC_NAME = "any hand"


@dataclass(frozen=True)
class EvalResult:
    """Scores of one model on one data set split."""

    weights: str
    data: str  # the data.yaml scored on
    split: str
    imgsz: int
    tiles: str | None  # None: full-frame inference
    images: int
    map50: float
    map50_95: float
    per_class_ap50: dict[str, float]
    per_class_ap50_95: dict[str, float]
    ms_per_image: float
    confusion: list[list[int]] = field(default_factory=list)  # rows predicted, cols true
    confusion_labels: list[str] = field(default_factory=list)  # classes + "background"
    operating_point: str = f"conf {CONFUSION_CONF}, IoU {CONFUSION_IOU}"
    agnostic: bool = False  # True: one class, any hand
    hand_recall: float = 0.0  # labelled hands found by a box of any class, at the operating point

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """Where the score comes from, for captions: data set, split, images, size."""
        mode = f", tiles {self.tiles}" if self.tiles else ""
        mode += ", class-agnostic" if self.agnostic else ""
        return (
            f"{Path(self.data).parent.name or self.data} {self.split} split "
            f"({self.images} images, imgsz {self.imgsz}{mode})"
        )


def match_predictions(
    pred_xyxy: np.ndarray,
    pred_cls: np.ndarray,
    true_xyxy: np.ndarray,
    true_cls: np.ndarray,
    thresholds: np.ndarray = IOU_THRESHOLDS,
) -> np.ndarray:
    """(N predictions x T thresholds) true-positive flags; predictions must be ordered by
    descending confidence. Greedy and one-to-one per threshold, as Ultralytics' validator."""
    correct = np.zeros((len(pred_xyxy), len(thresholds)), dtype=bool)
    if not len(pred_xyxy) or not len(true_xyxy):
        return correct
    iou = box_iou(true_xyxy, pred_xyxy) * (true_cls[:, None] == pred_cls[None, :])
    matched = np.zeros((len(true_xyxy), len(thresholds)), dtype=bool)
    for j in np.flatnonzero((iou >= thresholds.min()).any(0)):
        available = np.where(matched, 0, iou[:, j, None])
        k = available.argmax(0)
        correct[j] = available[k, range(len(thresholds))] >= thresholds
        matched[k, range(len(thresholds))] |= correct[j]
    return correct


def confusion_update(
    matrix: np.ndarray,
    pred_xyxy: np.ndarray,
    pred_cls: np.ndarray,
    true_xyxy: np.ndarray,
    true_cls: np.ndarray,
    iou_thres: float = CONFUSION_IOU,
) -> None:
    """Add one image to a confusion matrix (rows predicted, columns true, last = background):
    class-agnostic greedy matching so that a glove called a hand counts as that confusion."""
    bg = matrix.shape[0] - 1
    iou = (
        box_iou(pred_xyxy, true_xyxy)
        if len(pred_xyxy) and len(true_xyxy)
        else np.zeros((len(pred_xyxy), len(true_xyxy)))
    )
    taken = np.zeros(len(true_xyxy), dtype=bool)
    for i in range(len(pred_xyxy)):  # predictions arrive most confident first
        cand = np.where(taken, -1.0, iou[i]) if len(true_xyxy) else np.zeros(0)
        j = int(cand.argmax()) if len(cand) else -1
        if j >= 0 and cand[j] >= iou_thres:
            taken[j] = True
            matrix[int(pred_cls[i]), int(true_cls[j])] += 1
        else:
            matrix[int(pred_cls[i]), bg] += 1
    for miss in np.flatnonzero(~taken):
        matrix[bg, int(true_cls[miss])] += 1


def hand_recall(matrix: np.ndarray) -> float:
    """Share of labelled hands matched by a prediction of any class (rows predicted, columns
    true, last = background), from a confusion matrix of :func:`confusion_update`."""
    labelled = int(matrix[:, :-1].sum())
    return float(matrix[:-1, :-1].sum()) / labelled if labelled else 0.0


def _ultralytics_val(
    weights: Path | str,
    layout: Layout,
    split: str,
    imgsz: int | None,
    conf: float,
    iou: float,
    agnostic: bool = False,
) -> tuple[dict[str, float], dict[str, float]]:
    """Per-class AP50 and AP50-95 from Ultralytics' validator (offline, no plots); one
    class, "any hand", when ``agnostic`` (its ``single_cls`` mode)."""
    # Ultralytics requires train and val keys even to score another split: a set with only
    # train and test (extra2's) names the scored split for the missing ones.
    scored = layout.folders(split)
    layout = replace(layout, splits={"train": scored, "val": scored, **layout.splits})
    with tempfile.TemporaryDirectory(prefix="gw-eval-") as tmp, DETECTORS.acquire(weights) as det:
        data_yaml = write_data_yaml(layout, Path(tmp) / "data.yaml")
        size = imgsz or det.info.train_imgsz or 640
        try:
            m = det.yolo.val(
                data=str(data_yaml),
                split=split,
                imgsz=size,
                batch=16,
                conf=conf,
                iou=iou,
                plots=False,
                verbose=False,
                save_json=False,
                project=tmp,
                name="val",
                workers=0,
                device="cpu",
                single_cls=agnostic,
            )
        except (FileNotFoundError, RuntimeError) as exc:
            raise ModelError(f"Evaluation failed: {str(exc).splitlines()[0]}") from exc
        names = {0: AGNOSTIC_NAME} if agnostic else det.info.names
        box = m.box
        per50 = {names[int(c)]: float(box.ap50[i]) for i, c in enumerate(box.ap_class_index)}
        per5095 = {names[int(c)]: float(box.ap[i]) for i, c in enumerate(box.ap_class_index)}
    return per50, per5095


@dataclass
class _Pass:
    """What one pass of the app's detector over a split gathers: the confusion matrix at the
    operating point and, when it also gives the scores, the matches for AP."""

    matrix: np.ndarray
    tps: list[np.ndarray] = field(default_factory=list)
    confs: list[np.ndarray] = field(default_factory=list)
    classes: list[np.ndarray] = field(default_factory=list)
    targets: list[np.ndarray] = field(default_factory=list)
    total_ms: float = 0.0


def _check_classes(layout: Layout, nc: int) -> None:
    if len(layout.names) != nc:
        raise DatasetError(
            f"The model has {nc} classes and the data set "
            f"{len(layout.names)}: it cannot be scored on this data set."
        )


def _detector_pass(
    det: Any,
    items: list[Any],
    params: InferenceParams,
    tiles: TileSpec | None,
    agnostic: bool,
    scoring: bool,
) -> _Pass:
    """Run the app's detector over ``items``; with ``scoring`` keep the matches for AP at
    ``params`` (else detect at the operating point only)."""
    nc = len(det.info.names)
    acc = _Pass(matrix=np.zeros((nc + 1, nc + 1), dtype=np.int64))
    for item in items:
        image = read_image(item.image)
        h, w = image.shape[:2]
        tb = np.array([b.xyxy(w, h) for b in item.boxes]).reshape(-1, 4)
        tc = np.array([b.class_id for b in item.boxes], dtype=int)
        if not scoring:  # scores from the validator; here the operating point
            frame = det.detect(image, replace(params, conf=CONFUSION_CONF))
        elif tiles is not None:
            frame = detect_tiled(det, image, params, tiles)
        else:
            frame = det.detect(image, params)
        pred = frame.detections.by_confidence()
        if scoring:
            pc, ttc = (pred.class_id * 0, tc * 0) if agnostic else (pred.class_id, tc)
            acc.tps.append(match_predictions(pred.xyxy, pc, tb, ttc))
            acc.confs.append(pred.confidence)
            acc.classes.append(pc)
            acc.targets.append(ttc)
        acc.total_ms += frame.inference_ms
        strong = pred[pred.confidence >= CONFUSION_CONF]
        confusion_update(acc.matrix, strong.xyxy, strong.class_id, tb, tc)
    return acc


def _pass_ap(acc: _Pass, names: dict[int, str]) -> tuple[dict[str, float], dict[str, float]]:
    """Per-class AP50 and AP50-95 from a scoring pass, as Ultralytics' validator computes
    them (classes with labels but no predictions score 0)."""
    from ultralytics.utils.metrics import ap_per_class

    tp = np.concatenate(acc.tps) if acc.tps else np.zeros((0, 10), bool)
    target_cls = np.concatenate(acc.targets) if acc.targets else np.zeros(0, int)
    ap, classes = np.zeros((0, 10)), np.zeros(0, int)
    if len(tp):
        res = ap_per_class(
            tp, np.concatenate(acc.confs), np.concatenate(acc.classes), target_cls, names=names
        )
        ap, classes = res[5], res[6]
    labelled = [int(c) for c in np.unique(target_cls)]
    by_class = {int(c): ap[i] for i, c in enumerate(classes)}
    per50 = {names[c]: float(by_class[c][0]) if c in by_class else 0.0 for c in labelled}
    per5095 = {names[c]: float(by_class[c].mean()) if c in by_class else 0.0 for c in labelled}
    return per50, per5095


def evaluate(
    weights: Path | str,
    data: Path | str,
    split: str = "test",
    imgsz: int | None = None,
    tiles: TileSpec | None = None,
    conf: float = 0.001,
    iou: float = 0.7,
    backend: str = "pytorch",
    agnostic: bool = False,
    through_app: bool = False,
) -> EvalResult:
    """Score ``weights`` on ``split`` of the data set ``data`` (folder or data.yaml).

    ``imgsz`` defaults to the size the model was trained at; ``agnostic`` scores one class,
    any hand (the confusion matrix keeps the model's classes); ``through_app`` scores
    full frames through the app's own detector on ``backend`` (e.g. the OpenVINO runtime
    path and its INT8 build) instead of Ultralytics' validator. Raises
    :class:`~core.errors.DatasetError` for a missing split or unreadable labels and
    :class:`~core.errors.ModelError` for unusable weights.
    """
    from core.vision.detector import model_names

    layout = read_layout(data)
    items = [item for folder in layout.folders(split) for item in read_images_dir(folder)]
    _check_classes(layout, len(model_names(weights)))
    validated = None
    if tiles is None and not through_app:
        validated = _ultralytics_val(weights, layout, split, imgsz, conf, iou, agnostic)
    with DETECTORS.acquire(weights, backend=backend, imgsz=imgsz or 640) as det:
        size = imgsz or det.info.train_imgsz or 640
        class_names = dict(det.info.names)
        _check_classes(layout, len(class_names))
        params = InferenceParams(conf=conf, iou=iou, imgsz=size)
        acc = _detector_pass(det, items, params, tiles, agnostic, scoring=validated is None)
    per50, per5095 = validated or _pass_ap(acc, {0: AGNOSTIC_NAME} if agnostic else class_names)
    return EvalResult(
        weights=str(weights),
        data=str(layout.yaml_path),
        split=split,
        imgsz=size,
        tiles=tiles.to_text() if tiles else None,
        images=len(items),
        map50=float(np.mean(list(per50.values()))) if per50 else 0.0,
        map50_95=float(np.mean(list(per5095.values()))) if per5095 else 0.0,
        per_class_ap50=per50,
        per_class_ap50_95=per5095,
        ms_per_image=acc.total_ms / max(len(items), 1),
        confusion=acc.matrix.tolist(),
        confusion_labels=[class_names[i] for i in sorted(class_names)] + ["background"],
        agnostic=agnostic,
        hand_recall=hand_recall(acc.matrix),
    )
