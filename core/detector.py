"""Load a YOLO model file and run it on images or video frames, returning typed results.

A :class:`Detector` wraps one Ultralytics model instance. Ultralytics models are not
thread-safe, so each thread must use its own instance: :class:`DetectorPool` hands instances
out for exclusive use and keeps them for reuse.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.compliance import ClassRoles, Role
from core.config import settings
from core.modelcard import read_card

SUPPORTED_TASKS = ("detect", "segment")
BACKENDS = ("pytorch", "onnx", "openvino")


class ModelError(ValueError):
    """A weights file that cannot be used (not a model, wrong task, missing)."""


@dataclass(frozen=True)
class InferenceParams:
    """Thresholds and options of one inference call."""

    conf: float = 0.25
    iou: float = 0.7
    imgsz: int = 640
    classes: tuple[int, ...] | None = None  # None: all classes

    def as_dict(self) -> dict:
        return {"conf": self.conf, "iou": self.iou, "imgsz": self.imgsz,
                "classes": list(self.classes) if self.classes is not None else None}


@dataclass(frozen=True)
class Detection:
    """One detected object in pixel coordinates of the input image."""

    class_id: int
    class_name: str
    role: Role
    confidence: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    polygon: np.ndarray | None = None  # (N, 2) float32 outline for segmentation models
    track_id: int | None = None


@dataclass(frozen=True)
class FrameDetections:
    """All detections of one image or frame."""

    detections: tuple[Detection, ...]
    shape: tuple[int, int]  # height, width
    inference_ms: float


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


def _backend_of(path: Path) -> str:
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


def _load_yolo(path: Path, task: str | None = None):
    """Load ``path`` with Ultralytics, turning every failure into a :class:`ModelError`."""
    if not path.exists():
        raise ModelError(f"Weights file not found: {path}")
    if path.is_file() and path.stat().st_size == 0:
        raise ModelError(f"{path.name}: the file is empty, not a model.")
    from ultralytics import YOLO

    try:
        model = YOLO(str(path), task=task) if task else YOLO(str(path))
    except Exception as exc:  # torch / onnx raise many unrelated types for a bad file
        raise ModelError(
            f"{path.name}: not a usable YOLO model ({type(exc).__name__}: {str(exc)[:200]})."
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
    if backend == "pytorch" or _backend_of(weights) == backend:
        return weights
    if backend not in BACKENDS:
        raise ModelError(f"Unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}.")
    out_dir = settings().exports_dir / f"{file_sha256(weights)[:16]}-{imgsz}"
    target = out_dir / (f"{weights.stem}.onnx" if backend == "onnx"
                        else f"{weights.stem}_openvino_model")
    if target.exists():
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    local = out_dir / weights.name
    if not local.exists():
        local.write_bytes(weights.read_bytes())
    model = _load_yolo(local)
    fmt = "onnx" if backend == "onnx" else "openvino"
    try:
        exported = Path(model.export(format=fmt, imgsz=imgsz, dynamic=False, half=False,
                                     verbose=False))
    except Exception as exc:
        raise ModelError(f"Export of {weights.name} to {backend} failed: {exc}") from exc
    return exported


class Detector:
    """One model instance. Use from one thread at a time (see :class:`DetectorPool`)."""

    def __init__(self, weights: Path | str, backend: str = "pytorch", imgsz: int = 640,
                 roles: Mapping[str, Role | str] | None = None):
        weights = Path(weights)
        source_backend = _backend_of(weights)
        if backend != source_backend and source_backend != "pytorch":
            backend = source_backend  # an exported file runs on its own runtime
        path = export_model(weights, backend, imgsz) if backend != source_backend else weights
        pt_task = None
        if backend != "pytorch":
            pt_task = _load_yolo(weights).task if source_backend == "pytorch" else None
        self._model = _load_yolo(path, task=pt_task)
        self.imgsz = imgsz
        names = {int(k): str(v) for k, v in self._model.names.items()}
        if roles is None:  # per-model overrides travel in the weights' model card
            card = read_card(weights)
            roles = card.roles if card else None
        self.info = ModelInfo(path=weights, name=weights.name, task=self._model.task,
                              names=names, sha256=file_sha256(weights), backend=backend,
                              roles=ClassRoles.from_names(names, roles))

    @property
    def roles(self) -> ClassRoles:
        return self.info.roles

    @property
    def yolo(self):
        """The wrapped Ultralytics model (for validation and export)."""
        return self._model

    def _predict(self, image: np.ndarray, params: InferenceParams, track: bool,
                 tracker: str = "bytetrack.yaml"):
        kwargs = dict(conf=params.conf, iou=params.iou, imgsz=params.imgsz,
                      classes=list(params.classes) if params.classes is not None else None,
                      verbose=False)
        if track:
            return self._model.track(image, persist=True, tracker=tracker, **kwargs)[0]
        return self._model.predict(image, **kwargs)[0]

    def _set_threads(self) -> None:
        # Ultralytics' predictor set-up leaves torch at cpu_count-1 threads (1 on 2 cores), and
        # does so again whenever it builds a new predictor (e.g. the first track()), so check
        # every call: all cores roughly halve PyTorch latency (GUIDE section 4). With ONNX or
        # OpenVINO, torch only pre/post-processes and its threads would compete with the
        # runtime's, so it gets one. The setting is process-wide.
        import torch

        want = settings().torch_threads or (
            (os.cpu_count() or 1) if self.info.backend == "pytorch" else 1)
        if torch.get_num_threads() != want:
            torch.set_num_threads(want)

    def detect(self, image: np.ndarray, params: InferenceParams | None = None,
               track: bool = False, tracker: str = "bytetrack.yaml") -> FrameDetections:
        """Detect (or, with ``track``, detect and track) objects in one BGR image."""
        params = params or InferenceParams(imgsz=self.imgsz)
        self._set_threads()
        t0 = time.perf_counter()
        res = self._predict(image, params, track, tracker)
        ms = (time.perf_counter() - t0) * 1000
        return FrameDetections(self._convert(res), tuple(image.shape[:2]), ms)

    def reset_tracker(self) -> None:
        """Forget track ids (call between unrelated videos or streams)."""
        predictor = getattr(self._model, "predictor", None)
        for t in getattr(predictor, "trackers", None) or []:
            t.reset()

    def _convert(self, res) -> tuple[Detection, ...]:
        boxes = res.boxes
        if boxes is None or len(boxes) == 0:
            return ()
        xyxy = boxes.xyxy.cpu().numpy()
        cls = boxes.cls.cpu().numpy().astype(int)
        conf = boxes.conf.cpu().numpy()
        ids = boxes.id.cpu().numpy().astype(int) if boxes.id is not None else None
        polys = res.masks.xy if res.masks is not None else None
        out = []
        for i in range(len(cls)):
            cid = int(cls[i])
            out.append(Detection(
                class_id=cid,
                class_name=self.info.names.get(cid, str(cid)),
                role=self.roles.role_of(cid),
                confidence=float(conf[i]),
                box=tuple(float(v) for v in xyxy[i]),
                polygon=np.asarray(polys[i], dtype=np.float32) if polys is not None else None,
                track_id=int(ids[i]) if ids is not None else None,
            ))
        return tuple(out)


def inspect_model(weights: Path | str) -> ModelInfo:
    """Validate a weights file and describe it (raises :class:`ModelError`)."""
    with DETECTORS.acquire(weights) as det:
        return det.info


class DetectorPool:
    """Reusable detector instances, each lent to one thread at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: dict[tuple, list[Detector]] = defaultdict(list)

    @contextmanager
    def acquire(self, weights: Path | str, backend: str = "pytorch", imgsz: int = 640,
                roles: Mapping[str, Role | str] | None = None) -> Iterator[Detector]:
        """Borrow a detector for ``weights``; it goes back to the pool afterwards."""
        path = Path(weights).resolve()
        stamp = path.stat().st_mtime_ns if path.exists() else 0
        key = (str(path), stamp, backend, imgsz, tuple(sorted((roles or {}).items())))
        with self._lock:
            det = self._free[key].pop() if self._free[key] else None
        if det is None:
            det = Detector(path, backend=backend, imgsz=imgsz, roles=roles)
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


def class_ids_for(info: ModelInfo, names: Sequence[str]) -> tuple[int, ...]:
    """Class ids of ``names`` in a model (for the class filter)."""
    wanted = set(names)
    return tuple(i for i, n in info.names.items() if n in wanted)
