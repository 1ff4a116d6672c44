"""INT8 builds of an OpenVINO export that are safe to ship: quantise, score, then activate.

:func:`build_int8` quantises the FP32 export of a model with NNCF post-training quantisation
(MIXED preset) on a sample of the data set's training images, keeping the detect head's
decoding (DFL, box arithmetic, sigmoid) in floating point as Ultralytics does, then scores the
FP32 and INT8 models on the test split through the app's own detector. Only when mAP50 drops
by at most ``max_drop`` does it move the build to where :func:`active_int8` finds it; the
OpenVINO backend then runs it. A build that fails the gate is removed and never activated.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ModelError
from core.media import read_image
from core.vision.detector import EXPORT_INFO, export_info, export_model, file_sha256

log = logging.getLogger(__name__)

MAX_DROP = 0.01  # mAP50 an INT8 build may lose on the test split
CALIBRATION_IMAGES = 200


@dataclass(frozen=True)
class Int8Report:
    """What an INT8 build scored against its FP32 export, and whether it is active."""

    weights: str
    data: str
    calibration_images: int
    test_images: int
    fp32_map50: float
    int8_map50: float
    max_drop: float
    active: bool
    folder: str | None  # the active build, or None when refused
    seconds: float

    @property
    def drop(self) -> float:
        return round(self.fp32_map50 - self.int8_map50, 4)

    def describe(self) -> str:
        """One sentence: both numbers and the decision."""
        nums = (
            f"mAP50 {self.int8_map50:.3f} INT8 vs {self.fp32_map50:.3f} FP32 on "
            f"{self.test_images} test images (drop {self.drop:+.3f}, allowed {self.max_drop:.3f})"
        )
        if self.active:
            return f"INT8 build active: {nums}."
        return f"INT8 build refused: {nums}; the FP32 model stays in use."

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drop": self.drop}


def int8_dir(fp32_folder: Path) -> Path:
    """Where the INT8 build of an FP32 export lives once it passed the gate."""
    return fp32_folder.parent.with_name(fp32_folder.parent.name + "-int8") / (
        fp32_folder.name.replace("_openvino_model", "_int8_openvino_model")
    )


def active_int8(fp32_folder: Path) -> Path | None:
    """The activated INT8 build of an FP32 export, or None."""
    folder = int8_dir(fp32_folder)
    return folder if export_info(folder).get("int8_gate") == "passed" else None


def shipped_int8(weights: Path, imgsz: int) -> Path | None:
    """An INT8 build shipped beside ``weights`` (``<stem>_int8_openvino_model``) that passed
    the gate for exactly this file at this input size, or None."""
    folder = weights.parent / f"{weights.stem}_int8_openvino_model"
    info = export_info(folder)
    if info.get("int8_gate") != "passed" or info.get("imgsz") != imgsz:
        return None
    return folder if info.get("source_sha256") == file_sha256(weights) else None


def _calibration(data: Path, size: int, n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` training images (evenly sampled), letterboxed as the network's raw input."""
    from core.vision.openvino_detector import letterbox
    from core.vision.yolo_data import read_layout

    layout = read_layout(data)
    split = "train" if "train" in layout.splits else next(iter(layout.splits))
    paths = sorted(layout.images(split))
    if not paths:
        raise ModelError(f"{data}: no training images to calibrate INT8 with.")
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(len(paths), min(n, len(paths)), replace=False))
    out = []
    for i in picked:
        blob, _ = letterbox(read_image(paths[i]), (size, size))
        out.append(np.ascontiguousarray(blob[..., ::-1].transpose(0, 3, 1, 2)) / np.float32(255))
    return out


def _head_scope(model: Any) -> Any:
    """NNCF's ignored scope: the detect head's decoding stays float (boxes do not drift)."""
    import nncf

    ops = model.get_ordered_ops()
    sigmoids = [op.get_friendly_name() for op in ops if op.get_type_name() == "Sigmoid"]
    if not sigmoids:
        return None
    head = sigmoids[-1].split("/", 1)[0]
    return nncf.IgnoredScope(
        names=[
            op.get_friendly_name()
            for op in ops
            if op.get_type_name() == "Sigmoid"
            or op.get_friendly_name().startswith((f"{head}/", f"{head}.dfl"))
        ]
    )


def quantize(fp32_folder: Path, out: Path, images: list[np.ndarray]) -> Path:
    """NNCF INT8 copy of the FP32 export in ``out`` (metadata copied beside it)."""
    import nncf
    import openvino as ov

    from core.vision.openvino_detector import read_ir

    ir = read_ir(fp32_folder)
    model = ov.Core().read_model(str(ir.xml))
    quantized = nncf.quantize(
        model,
        nncf.Dataset(images),
        preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(images),
        ignored_scope=_head_scope(model),
    )
    out.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out / ir.xml.name))
    shutil.copy2(fp32_folder / "metadata.yaml", out / "metadata.yaml")
    return out


def _map50(weights: Path, data: Path, imgsz: int) -> tuple[float, int]:
    from core.vision.evaluate import evaluate

    res = evaluate(weights, data, "test", imgsz=imgsz, backend="openvino", through_app=True)
    return round(res.map50, 4), res.images


def build_int8(
    weights: Path,
    data: Path,
    gate_data: Path | None = None,
    imgsz: int = 640,
    calibration: int = CALIBRATION_IMAGES,
    max_drop: float = MAX_DROP,
) -> Int8Report:
    """Quantise ``weights``' OpenVINO export, score it against FP32 on ``gate_data``'s test
    split (default ``data``), and activate it only if mAP50 dropped by ``max_drop`` or less."""
    t0 = time.monotonic()
    fp32 = export_model(weights, "openvino", imgsz)
    images = _calibration(data, imgsz, calibration)
    target = int8_dir(fp32)
    staging = target.with_name("staging-" + target.name)
    shutil.rmtree(staging, ignore_errors=True)
    quantize(fp32, staging, images)
    gate = gate_data or data
    fp32_map, n = _map50(fp32, gate, imgsz)
    int8_map, _ = _map50(staging, gate, imgsz)
    passed = fp32_map - int8_map <= max_drop + 1e-9
    report = Int8Report(
        weights=weights.name,
        data=str(gate),
        calibration_images=len(images),
        test_images=n,
        fp32_map50=fp32_map,
        int8_map50=int8_map,
        max_drop=max_drop,
        active=passed,
        folder=str(target) if passed else None,
        seconds=round(time.monotonic() - t0, 1),
    )
    if not passed:
        shutil.rmtree(staging, ignore_errors=True)
        log.warning(report.describe())
        return report
    info = {
        **export_info(fp32),
        "int8_gate": "passed",
        "source_sha256": file_sha256(weights),
        "imgsz": imgsz,
        "calibration": {"data": str(data), "images": len(images)},
        "gate": report.as_dict(),
    }
    (staging / EXPORT_INFO).write_text(json.dumps(info, indent=1))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return report
