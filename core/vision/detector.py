"""Load a YOLO model file and run it on images or video frames, returning :class:`Detections`.

A :class:`Detector` wraps one Ultralytics model instance. Ultralytics models are not
thread-safe, so each thread must use its own instance: :class:`DetectorPool` hands instances
out for exclusive use and keeps them for reuse. Every ``.pt`` file is checked by
:mod:`core.vision.weights` before Ultralytics unpickles it.

On the OpenVINO backend the pool lends an
:class:`~core.vision.openvino_detector.OpenVinoDetector` instead (the runtime itself, no
torch); Ultralytics stays for training, export, validation and the PyTorch/ONNX backends.
Every backend ends with :func:`resolve_hands`: one judgement per hand.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from core.config import settings
from core.errors import ModelError
from core.vision.detections import Detections, FrameDetections, box_iou
from core.vision.modelcard import read_card
from core.vision.roles import ClassRoles, Role
from core.vision.weights import check_weights

log = logging.getLogger(__name__)

SUPPORTED_TASKS = ("detect", "segment")
BACKENDS = ("pytorch", "onnx", "openvino")
EXPORT_INFO = "glovewatch.json"  # beside an export: what the .pt said (train size)
HAND_IOU = 0.5  # a gloved and a bare box overlapping this much are one hand
T = TypeVar("T")


def resolve_hands(dets: Detections, iou: float = HAND_IOU) -> Detections:
    """One judgement per hand: where boxes of two hand classes (gloved and bare, or two kinds
    of glove) overlap by ``iou`` or more (class-wise NMS keeps both, so one hand could be
    judged compliant and violating at once), the less confident one becomes context: it
    keeps its class and score (scores and mAP are unchanged, the table still shows it) but
    is no longer judged as a hand."""
    hands = np.flatnonzero(dets.hands)
    if len(hands) < 2:
        return dets
    order = hands[np.argsort(-dets.confidence[hands], kind="stable")]
    overlap = box_iou(dets.xyxy[order], dets.xyxy[order]) >= iou
    other_class = dets.class_id[order][:, None] != dets.class_id[order][None, :]
    beaten = np.triu(overlap & other_class, 1)
    drop = np.zeros(len(order), bool)
    for i in range(len(order)):  # greedy: a set-aside box does not set aside others
        if not drop[i]:
            drop |= beaten[i]
    if not drop.any():
        return dets
    role = dets.role.copy()
    role[order[drop]] = str(Role.CONTEXT)
    return replace(dets, role=role)


@dataclass(frozen=True)
class InferenceParams:
    """Thresholds and options of one inference call."""

    conf: float = 0.25
    iou: float = 0.7
    imgsz: int = 640
    classes: tuple[int, ...] | None = None  # None: all classes

    def as_dict(self) -> dict[str, Any]:
        return {
            "conf": self.conf,
            "iou": self.iou,
            "imgsz": self.imgsz,
            "classes": list(self.classes) if self.classes is not None else None,
        }


@dataclass(frozen=True)
class ModelInfo:
    """What a weights file is: identity, task and classes."""

    path: Path
    name: str
    task: str
    names: Mapping[int, str]
    sha256: str
    backend: str
    roles: ClassRoles
    train_imgsz: int | None = None  # the image size it was trained at, when recorded


def _train_imgsz(model: Any) -> int | None:
    args = (getattr(model, "ckpt", None) or {}).get("train_args") or {}
    size = args.get("imgsz") or getattr(model, "overrides", {}).get("imgsz")
    return int(size) if isinstance(size, (int, float)) and size > 0 else None


def file_sha256(path: Path | str) -> str:
    """Content hash of a weights file or of every file in an exported model folder."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def backend_of(path: Path) -> str:
    """The runtime a model file needs: ``pytorch`` (.pt), ``onnx`` or ``openvino``."""
    if path.is_dir() and path.name.endswith("_openvino_model"):
        return "openvino"
    if path.suffix == ".onnx":
        return "onnx"
    if path.suffix == ".pt":
        return "pytorch"
    raise ModelError(
        f"{path.name}: not a model file GloveWatch can use. Expected a YOLO .pt file, an .onnx "
        "export or an *_openvino_model folder."
    )


def load_yolo(path: Path, task: str | None = None) -> Any:
    """Load ``path`` with Ultralytics, turning every failure into one clear :class:`ModelError`."""
    if not path.exists():
        raise ModelError(f"Weights file not found: {path.name}.")
    if path.is_file() and path.stat().st_size == 0:
        raise ModelError(f"{path.name}: the file is empty, not a model.")
    if path.suffix == ".pt":
        check_weights(path)
    from ultralytics import YOLO

    try:
        model = YOLO(str(path), task=task) if task else YOLO(str(path))
    except Exception as exc:  # torch / onnx raise many unrelated types for a bad file
        # Ultralytics' own messages are multi-line and suggest downloading a model, which
        # cannot happen here: keep them for the log, tell the user one sentence.
        log.warning(
            "%s could not be loaded: %s: %s",
            path.name,
            type(exc).__name__,
            str(exc).splitlines()[0] if str(exc) else "",
        )
        raise ModelError(
            f"{path.name} is not a usable YOLO model file (damaged, truncated or of another kind)."
        ) from exc
    if model.task not in SUPPORTED_TASKS:
        raise ModelError(
            f"{path.name} is a '{model.task}' model; GloveWatch needs a detection or "
            "segmentation model that finds gloved and bare hands."
        )
    if not getattr(model, "names", None):
        raise ModelError(f"{path.name}: the model has no class names.")
    return model


def export_model(weights: Path | str, backend: str, imgsz: int = 640) -> Path:
    """Export a ``.pt`` model to ONNX or OpenVINO once, cached by content hash and size."""
    weights = Path(weights)
    if backend == "pytorch" or backend_of(weights) == backend:
        return weights
    if backend not in BACKENDS:
        raise ModelError(f"Unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}.")
    out_dir = settings().exports_dir / f"{file_sha256(weights)[:16]}-{imgsz}"
    target = out_dir / (
        f"{weights.stem}.onnx" if backend == "onnx" else f"{weights.stem}_openvino_model"
    )
    if target.exists():
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    local = out_dir / weights.name
    if not local.exists():
        local.write_bytes(weights.read_bytes())
    model = load_yolo(local)
    fmt = "onnx" if backend == "onnx" else "openvino"
    try:
        exported = Path(
            model.export(format=fmt, imgsz=imgsz, dynamic=False, half=False, verbose=False)
        )
    except Exception as exc:
        log.warning("export of %s to %s failed: %s", weights.name, backend, exc)
        raise ModelError(
            f"Export of {weights.name} to {backend} failed; use the PyTorch backend for this model."
        ) from exc
    if exported.is_dir():  # read by the OpenVINO runtime path, which never unpickles the .pt
        info = {"train_imgsz": _train_imgsz(model), "source_sha256": file_sha256(weights)}
        (exported / EXPORT_INFO).write_text(json.dumps(info))
    return exported


def export_info(folder: Path) -> dict[str, Any]:
    """What :func:`export_model` recorded beside an export (empty when nothing)."""
    try:
        data = json.loads((folder / EXPORT_INFO).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class Detector:
    """One model instance. Use from one thread at a time (see :class:`DetectorPool`)."""

    def __init__(
        self,
        weights: Path | str,
        backend: str = "pytorch",
        imgsz: int = 640,
        roles: Mapping[str, Role | str] | None = None,
    ):
        weights = Path(weights)
        source_backend = backend_of(weights)
        if backend != source_backend and source_backend != "pytorch":
            backend = source_backend  # an exported file runs on its own runtime
        path = export_model(weights, backend, imgsz) if backend != source_backend else weights
        pt_task = None
        if backend != "pytorch":
            pt_task = load_yolo(weights).task if source_backend == "pytorch" else None
        self._model = load_yolo(path, task=pt_task)
        self.imgsz = imgsz
        names = {int(k): str(v) for k, v in self._model.names.items()}
        if roles is None:  # per-model overrides travel in the weights' model card
            card = read_card(weights)
            roles = card.roles if card else None
        self.info = ModelInfo(
            path=weights,
            name=weights.name,
            task=self._model.task,
            names=names,
            sha256=file_sha256(weights),
            backend=backend,
            roles=ClassRoles.from_names(names, roles),
            train_imgsz=_train_imgsz(self._model),
        )
        self._role_of = {i: r for i, r in self.info.roles.roles.items()}

    @property
    def roles(self) -> ClassRoles:
        return self.info.roles

    @property
    def yolo(self) -> Any:
        """The wrapped Ultralytics model (for validation and export)."""
        return self._model

    def _set_threads(self) -> None:
        # Ultralytics' predictor set-up leaves torch at cpu_count-1 threads (1 on 2 cores), and
        # does so again whenever it builds a new predictor (e.g. the first track()), so check
        # every call: all cores roughly halve PyTorch latency. With ONNX or OpenVINO, torch
        # only pre/post-processes and its threads would compete with the runtime's, so it gets
        # one. The setting is process-wide.
        import torch

        want = settings().torch_threads or (
            (os.cpu_count() or 1) if self.info.backend == "pytorch" else 1
        )
        if torch.get_num_threads() != want:
            torch.set_num_threads(want)

    def detect(
        self,
        image: np.ndarray,
        params: InferenceParams | None = None,
        track: bool = False,
        tracker: str = "bytetrack.yaml",
    ) -> FrameDetections:
        """Detect (or, with ``track``, detect and track) objects in one BGR image."""
        params = params or InferenceParams(imgsz=self.imgsz)
        self._set_threads()
        kwargs = dict(
            conf=params.conf,
            iou=params.iou,
            imgsz=params.imgsz,
            classes=list(params.classes) if params.classes is not None else None,
            verbose=False,
        )
        t0 = time.perf_counter()
        if track:
            res = self._model.track(image, persist=True, tracker=tracker, **kwargs)[0]
        else:
            res = self._model.predict(image, **kwargs)[0]
        ms = (time.perf_counter() - t0) * 1000
        h, w = image.shape[:2]
        return FrameDetections(self._convert(res, tracked=track), (h, w), ms)

    def stream(
        self,
        items: Iterable[tuple[T, np.ndarray]],
        params: InferenceParams | None = None,
        track: bool = False,
        tracker: str = "bytetrack.yaml",
        depth: int | None = None,
    ) -> Iterator[tuple[T, np.ndarray, FrameDetections]]:
        """Detect (and track) a sequence of ``(tag, frame)``, results in order. Here one at a
        time; the OpenVINO runtime path keeps ``depth`` frames in flight."""
        for tag, image in items:
            yield tag, image, self.detect(image, params, track=track, tracker=tracker)

    def detect_batch(
        self, images: Sequence[np.ndarray], params: InferenceParams | None = None
    ) -> list[FrameDetections]:
        """Detect objects in several BGR images (e.g. the newest frame of several cameras)
        with one predict call: Ultralytics runs them as one batch (a fixed-batch export runs
        them one by one inside that call). Each result's ``inference_ms`` is its share."""
        if not images:
            return []
        params = params or InferenceParams(imgsz=self.imgsz)
        self._set_threads()
        t0 = time.perf_counter()
        results = self._model.predict(
            list(images),
            conf=params.conf,
            iou=params.iou,
            imgsz=params.imgsz,
            classes=list(params.classes) if params.classes is not None else None,
            verbose=False,
        )
        ms = (time.perf_counter() - t0) * 1000 / len(images)
        return [
            FrameDetections(self._convert(res, tracked=False), (image.shape[0], image.shape[1]), ms)
            for res, image in zip(results, images)
        ]

    def reset_tracker(self) -> None:
        """Forget track ids (call between unrelated videos or streams)."""
        predictor = getattr(self._model, "predictor", None)
        for t in getattr(predictor, "trackers", None) or []:
            t.reset()

    def _convert(self, res: Any, tracked: bool) -> Detections:
        boxes = res.boxes
        if boxes is None or len(boxes) == 0:
            return Detections.empty(tracked=tracked)
        ids = None
        if tracked:
            ids = (
                boxes.id.cpu().numpy().astype(np.int64)
                if boxes.id is not None
                else np.full(len(boxes), -1, np.int64)
            )
        return resolve_hands(
            Detections.from_arrays(
                boxes.xyxy.cpu().numpy(),
                boxes.conf.cpu().numpy(),
                boxes.cls.cpu().numpy().astype(np.int64),
                self.info.names,
                self._role_of,
                tracker_id=ids,
                polygons=res.masks.xy if res.masks is not None else None,
            )
        )


def make_detector(
    weights: Path | str,
    backend: str = "pytorch",
    imgsz: int = 640,
    roles: Mapping[str, Role | str] | None = None,
    int8: bool = True,
) -> Detector:
    """The detector for ``weights`` on ``backend``: the OpenVINO runtime path for detection
    models on OpenVINO (its INT8 build when one passed the accuracy gate, unless ``int8`` is
    False), Ultralytics otherwise (segmentation, PyTorch, ONNX)."""
    weights = Path(weights)
    if not weights.exists():
        raise ModelError(f"Weights file not found: {weights.name}.")
    source = backend_of(weights)
    if (source if source != "pytorch" else backend) == "openvino":
        from core.vision.openvino_detector import OpenVinoDetector, read_ir
        from core.vision.openvino_int8 import active_int8, shipped_int8

        shipped = shipped_int8(weights, imgsz) if int8 and source == "pytorch" else None
        if shipped is not None:  # no export needed, so torch is never imported
            train = export_info(shipped).get("train_imgsz")
            return OpenVinoDetector(weights, shipped, roles, train_imgsz=train)
        folder = weights if source == "openvino" else export_model(weights, "openvino", imgsz)
        if read_ir(folder).task == "detect":
            quantized = active_int8(folder) if int8 and source == "pytorch" else None
            train = export_info(folder).get("train_imgsz")
            return OpenVinoDetector(weights, quantized or folder, roles, train_imgsz=train)
    return Detector(weights, backend=backend, imgsz=imgsz, roles=roles)


class DetectorPool:
    """Reusable detector instances, each lent to one thread at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: dict[tuple[Any, ...], list[Detector]] = defaultdict(list)

    @contextmanager
    def acquire(
        self,
        weights: Path | str,
        backend: str = "pytorch",
        imgsz: int = 640,
        roles: Mapping[str, Role | str] | None = None,
        int8: bool = True,
    ) -> Iterator[Detector]:
        """Borrow a detector for ``weights``; it goes back to the pool afterwards."""
        path = Path(weights).resolve()
        stamp = path.stat().st_mtime_ns if path.exists() else 0
        key = (str(path), stamp, backend, imgsz, tuple(sorted((roles or {}).items())), int8)
        with self._lock:
            det = self._free[key].pop() if self._free[key] else None
        if det is None:
            det = make_detector(path, backend=backend, imgsz=imgsz, roles=roles, int8=int8)
        try:
            yield det
        finally:
            det.reset_tracker()
            with self._lock:
                self._free[key].append(det)

    def clear(self) -> None:
        with self._lock:
            self._free.clear()


DETECTORS = DetectorPool()


def inspect_model(weights: Path | str) -> ModelInfo:
    """Validate a weights file and describe it (raises :class:`ModelError`)."""
    with DETECTORS.acquire(weights) as det:
        return det.info


def model_names(weights: Path | str) -> tuple[str, ...]:
    """The class names of a weights file, in class-id order."""
    info = inspect_model(weights)
    return tuple(info.names[i] for i in sorted(info.names))


def class_ids_for(info: ModelInfo, names: Sequence[str]) -> tuple[int, ...]:
    """Class ids of ``names`` in a model (for the class filter)."""
    wanted = set(names)
    return tuple(i for i, n in info.names.items() if n in wanted)
