"""Detection on the OpenVINO runtime itself: no Ultralytics predictor and no torch on the path.

An exported model folder (``*_openvino_model``: IR plus Ultralytics' ``metadata.yaml``) is
compiled once with the THROUGHPUT hint and served by an ``AsyncInferQueue`` holding the
device's optimal number of requests, so several frames are in flight while Python tracks,
judges and draws the previous ones (:meth:`OpenVinoDetector.stream`). The graph itself takes
u8 BGR NHWC frames and converts type, colour order, scale and layout
(``PrePostProcessor``); the host only letterboxes, exactly as Ultralytics' ``LetterBox``
(OpenCV's bilinear resize, grey 114 padding, centred), so the boxes match the Ultralytics
path. Box decoding and class-wise NMS are vectorised numpy, with Ultralytics' rules
(best class per anchor, ``conf >`` threshold, at most 300 boxes).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np

from core.errors import ModelError
from core.vision.detections import Detections, FrameDetections
from core.vision.detector import Detector, InferenceParams, ModelInfo, file_sha256, resolve_hands
from core.vision.modelcard import read_card
from core.vision.roles import ClassRoles, Role

log = logging.getLogger(__name__)

T = TypeVar("T")
PAD_VALUE = 114
MAX_DET = 300
MAX_NMS = 30000
MAX_WH = 7680.0  # class offset of class-wise NMS, as Ultralytics


@dataclass(frozen=True)
class IrModel:
    """What an exported OpenVINO folder holds."""

    folder: Path
    xml: Path
    task: str
    names: dict[int, str]
    imgsz: tuple[int, int]  # height, width of the network input


def read_ir(folder: Path) -> IrModel:
    """Describe an ``*_openvino_model`` folder; one :class:`ModelError` sentence when unusable."""
    import yaml

    xmls = sorted(folder.glob("*.xml")) if folder.is_dir() else []
    meta_path = folder / "metadata.yaml"
    if not xmls or not xmls[0].with_suffix(".bin").is_file():
        raise ModelError(f"{folder.name}: no OpenVINO model (.xml and .bin) in this folder.")
    try:
        meta = yaml.safe_load(meta_path.read_text()) if meta_path.is_file() else {}
        names = {int(k): str(v) for k, v in (meta.get("names") or {}).items()}
        size = meta.get("imgsz") or [640, 640]
        imgsz = (int(size[0]), int(size[1])) if isinstance(size, list) else (int(size),) * 2
    except (yaml.YAMLError, AttributeError, TypeError, ValueError) as exc:
        raise ModelError(f"{folder.name}: its metadata.yaml cannot be read.") from exc
    if not names:
        raise ModelError(f"{folder.name}: the model has no class names (metadata.yaml).")
    return IrModel(folder, xmls[0], str(meta.get("task") or "detect"), names, imgsz)


@dataclass(frozen=True)
class Letterbox:
    """How a frame was fitted into the network input (to map boxes back)."""

    shape: tuple[int, int]  # original height, width
    gain: tuple[float, float]  # x, y
    pad: tuple[int, int]  # left, top


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """``image`` resized keeping its aspect and padded to ``size`` (h, w), as (1, h, w, 3) u8."""
    h, w = image.shape[:2]
    r = min(size[0] / h, size[1] / w)
    nw, nh = max(round(w * r), 1), max(round(h * r), 1)
    dw, dh = (size[1] - nw) / 2, (size[0] - nh) / 2
    top, left = round(dh - 0.1), round(dw - 0.1)
    resized = (
        image if (nw, nh) == (w, h) else cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    )
    out = np.full((1, size[0], size[1], 3), PAD_VALUE, np.uint8)
    out[0, top : top + nh, left : left + nw] = resized
    return out, Letterbox((h, w), (nw / w, nh / h), (left, top))


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy NMS, most confident first (torchvision's ``nms`` semantics)."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1) * (y2 - y1)
    keep: list[int] = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        order = rest[inter / (area[i] + area[rest] - inter) <= iou]
    return np.asarray(keep, np.int64)


def decode(
    raw: np.ndarray, params: InferenceParams, lb: Letterbox
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xyxy in frame pixels, confidence, class id) from a (4 + nc, anchors) network output."""
    scores = raw[4:]
    cls = scores.argmax(0)
    conf = scores[cls, np.arange(scores.shape[1])]
    keep = conf > params.conf
    if params.classes is not None:
        keep &= np.isin(cls, params.classes)
    idx = np.flatnonzero(keep)
    if len(idx) > MAX_NMS:
        idx = idx[np.argsort(-conf[idx], kind="stable")[:MAX_NMS]]
    cx, cy, bw, bh = raw[:4, idx]
    xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
    conf, cls = conf[idx], cls[idx]
    kept = nms(xyxy + (cls[:, None] * MAX_WH), conf, params.iou)[:MAX_DET]
    xyxy, conf, cls = xyxy[kept], conf[kept], cls[kept]
    (gx, gy), (px, py) = lb.gain, lb.pad
    xyxy = (xyxy - np.array([px, py, px, py], np.float32)) / np.array([gx, gy, gx, gy], np.float32)
    h, w = lb.shape
    xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, w)
    xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, h)
    return xyxy, conf, cls.astype(np.int64)


class _Results:
    """Outputs of finished requests by sequence number (filled by OpenVINO's threads)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._done: dict[int, tuple[np.ndarray, float] | BaseException] = {}

    def callback(self, request: Any, userdata: tuple[int, float]) -> None:
        seq, submitted = userdata
        try:
            value: tuple[np.ndarray, float] | BaseException = (
                request.get_output_tensor(0).data[0].copy(),
                (time.perf_counter() - submitted) * 1000,
            )
        except Exception as exc:  # handed to the consumer thread, which raises it
            value = exc
        with self._cond:
            self._done[seq] = value
            self._cond.notify_all()

    def take(self, seq: int) -> tuple[np.ndarray, float]:
        with self._cond:
            while seq not in self._done:
                self._cond.wait()
            value = self._done.pop(seq)
        if isinstance(value, BaseException):
            raise ModelError(f"OpenVINO inference failed: {value}.") from value
        return value


def compile_ir(ir: IrModel, hint: str = "THROUGHPUT", precision: str | None = None) -> Any:
    """The IR compiled for the CPU with pre-processing (u8 BGR NHWC in) in the graph.

    ``precision`` None keeps the device's choice (bf16 on CPUs with AMX, as Ultralytics'
    OpenVINO path runs); ``"f32"`` gives the exported model's own numbers."""
    import openvino as ov
    from openvino.preprocess import ColorFormat, PrePostProcessor

    core = ov.Core()
    try:
        model = core.read_model(str(ir.xml))
    except Exception as exc:  # OpenVINO raises RuntimeError with a multi-line dump
        log.warning("%s cannot be read by OpenVINO: %s", ir.xml, str(exc).splitlines()[:1])
        raise ModelError(f"{ir.folder.name}: OpenVINO cannot read this model file.") from exc
    ppp = PrePostProcessor(model)
    tensor = ppp.input().tensor()
    tensor.set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    tensor.set_color_format(ColorFormat.BGR)
    ppp.input().preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(
        255.0
    )
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    try:
        config = {"PERFORMANCE_HINT": hint}
        if precision:
            config["INFERENCE_PRECISION_HINT"] = precision
        return core.compile_model(ppp.build(), "CPU", config)
    except Exception as exc:
        log.warning("%s cannot be compiled: %s", ir.xml, str(exc).splitlines()[:1])
        raise ModelError(f"{ir.folder.name}: OpenVINO cannot compile this model.") from exc


_OPEN: weakref.WeakSet[OpenVinoDetector] = weakref.WeakSet()


def _close_all() -> None:
    for det in list(_OPEN):
        det.close()


def _track_open(det: OpenVinoDetector) -> None:
    """Close ``det`` at exit (the first detector registers the exit hook)."""
    if not _OPEN:
        atexit.unregister(_close_all)
        atexit.register(_close_all)
    _OPEN.add(det)


class OpenVinoDetector(Detector):
    """A detection model on the OpenVINO runtime (see the module text); one thread at a time.

    ``weights`` is the model the user chose (a ``.pt``, identity and card) and ``folder`` its
    OpenVINO export (the same when an exported folder was chosen).
    """

    def __init__(
        self,
        weights: Path,
        folder: Path,
        roles: Mapping[str, Role | str] | None = None,
        hint: str = "THROUGHPUT",
        train_imgsz: int | None = None,
        precision: str | None = None,
    ):
        import openvino as ov

        ir = read_ir(folder)
        if ir.task != "detect":
            raise ModelError(f"{folder.name}: a '{ir.task}' model; this path runs detection.")
        self._ir = ir
        self._compiled = compile_ir(ir, hint, precision)
        requests = int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.requests = max(2, requests)
        # twice the optimal number, so a deeper stream (batch files) keeps the streams fed
        # while the host is busy encoding; live keeps ``requests`` in flight (latency)
        self._queue = ov.AsyncInferQueue(self._compiled, 2 * self.requests)
        self._results = _Results()
        self._queue.set_callback(self._results.callback)
        self._seq = 0
        self.imgsz = ir.imgsz[0]
        if roles is None:
            card = read_card(weights)
            roles = card.roles if card else None
        self.info = ModelInfo(
            path=weights,
            name=weights.name,
            task=ir.task,
            names=ir.names,
            sha256=file_sha256(weights),
            backend="openvino-int8" if "_int8_" in folder.name else "openvino",
            roles=ClassRoles.from_names(ir.names, roles),
            train_imgsz=train_imgsz,
        )
        self._role_of = dict(self.info.roles.roles)
        self._tracker: Any = None
        _track_open(self)

    def close(self) -> None:
        """Wait for the requests in flight and release the queue and the compiled model.
        Called for every open detector at exit: left to the interpreter's teardown, the
        runtime's threads were sometimes destroyed while running ("terminate called without
        an active exception", exit -6)."""
        queue = self.__dict__.pop("_queue", None)
        if queue is not None:
            queue.wait_all()
        self.__dict__.pop("_compiled", None)

    @property
    def yolo(self) -> Any:
        raise ModelError("The OpenVINO runtime path has no Ultralytics model; use 'pytorch'.")

    def _submit(self, image: np.ndarray) -> tuple[int, Letterbox]:
        blob, lb = letterbox(image, self._ir.imgsz)
        seq = self._seq
        self._seq += 1
        self._queue.start_async({0: blob}, (seq, time.perf_counter()))
        return seq, lb

    def _finish(self, seq: int, lb: Letterbox, params: InferenceParams) -> FrameDetections:
        raw, ms = self._results.take(seq)
        xyxy, conf, cls = decode(raw, params, lb)
        dets = resolve_hands(
            Detections.from_arrays(xyxy, conf, cls, self.info.names, self._role_of)
        )
        return FrameDetections(dets, lb.shape, ms)

    def stream(
        self,
        items: Iterable[tuple[T, np.ndarray]],
        params: InferenceParams | None = None,
        track: bool = False,
        tracker: str = "bytetrack.yaml",
        depth: int | None = None,
    ) -> Iterator[tuple[T, np.ndarray, FrameDetections]]:
        """Detect (and track) a sequence of frames with ``depth`` in flight (default: the
        device's optimal number of requests, at most twice that), results in order."""
        params = params or InferenceParams(imgsz=self.imgsz)  # the IR's size is fixed
        window = min(max(1, depth or self.requests), 2 * self.requests)
        pending: deque[tuple[T, np.ndarray, int, Letterbox]] = deque()
        for tag, image in items:
            seq, lb = self._submit(image)
            pending.append((tag, image, seq, lb))
            while len(pending) >= window:
                yield self._pop(pending, params, track)
        while pending:
            yield self._pop(pending, params, track)

    def _pop(
        self,
        pending: deque[tuple[T, np.ndarray, int, Letterbox]],
        params: InferenceParams,
        track: bool,
    ) -> tuple[T, np.ndarray, FrameDetections]:
        tag, image, seq, lb = pending.popleft()
        fd = self._finish(seq, lb, params)
        return tag, image, self._track(fd) if track else fd

    def _track(self, fd: FrameDetections) -> FrameDetections:
        from core.vision.bytetrack import ByteTracker

        if self._tracker is None:
            self._tracker = ByteTracker()
        return self._tracker.update(fd)

    def detect(
        self,
        image: np.ndarray,
        params: InferenceParams | None = None,
        track: bool = False,
        tracker: str = "bytetrack.yaml",
    ) -> FrameDetections:
        """Detect (or, with ``track``, detect and track) objects in one BGR image."""
        params = params or InferenceParams(imgsz=self.imgsz)  # the IR's size is fixed
        seq, lb = self._submit(image)
        fd = self._finish(seq, lb, params)
        return self._track(fd) if track else fd

    def detect_batch(
        self, images: Sequence[np.ndarray], params: InferenceParams | None = None
    ) -> list[FrameDetections]:
        """Detect objects in several BGR images, all in flight at once."""
        return [fd for _, _, fd in self.stream(enumerate(images), params)]

    def reset_tracker(self) -> None:
        """Forget track ids (call between unrelated videos or streams)."""
        if self._tracker is not None:
            self._tracker.reset()

    def throughput(self, seconds: float = 5.0) -> float:
        """Frames per second of the compiled model alone (``benchmark_app``'s figure): every
        request kept busy on one prepared input, no pre- or post-processing."""
        blob, _ = letterbox(np.zeros((*self._ir.imgsz, 3), np.uint8), self._ir.imgsz)
        queue = type(self._queue)(self._compiled, self.requests)
        done = [0]
        queue.set_callback(lambda *_: done.__setitem__(0, done[0] + 1))
        for _ in range(self.requests * 2):  # warm-up
            queue.start_async({0: blob})
        queue.wait_all()
        done[0] = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            queue.start_async({0: blob})
        queue.wait_all()
        return done[0] / (time.perf_counter() - t0)
