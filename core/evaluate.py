"""Evaluate a model on a YOLO data set split: mAP50, mAP50-95, per-class AP50, speed."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from core.detector import DETECTORS, ModelError


@dataclass(frozen=True)
class EvalResult:
    """Scores of one model on one data set split."""

    weights: str
    data: str
    split: str
    imgsz: int
    images: int
    map50: float
    map50_95: float
    per_class_ap50: dict[str, float]
    per_class_ap50_95: dict[str, float]
    speed_ms: dict[str, float]
    confusion: list[list[float]] = field(default_factory=list)  # rows: predicted, cols: true
    confusion_labels: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def absolute_data_yaml(data: Path | str, out_dir: Path) -> Path:
    """A copy of ``data`` whose ``path`` is absolute.

    Ultralytics resolves a relative ``path`` against its own datasets folder, not against the
    YAML file, so ``path: .`` would point somewhere else.
    """
    data = Path(data).resolve()
    if not data.is_file():
        raise FileNotFoundError(f"Data set file not found: {data}")
    try:
        cfg = yaml.safe_load(data.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{data.name}: not valid YAML ({exc}).") from exc
    if not isinstance(cfg, dict) or "names" not in cfg:
        raise ValueError(f"{data.name}: not a YOLO data set file (no 'names').")
    root = Path(cfg.get("path") or ".")
    cfg["path"] = str(root if root.is_absolute() else (data.parent / root).resolve())
    out = out_dir / "data.yaml"
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out


def _count_images(cfg: dict, split: str) -> int:
    """Number of image files a split refers to (a folder, a list file or a list of either)."""
    from core.media import IMAGE_SUFFIXES

    entries = cfg[split] if isinstance(cfg[split], list) else [cfg[split]]
    total = 0
    for entry in entries:
        p = Path(entry) if Path(entry).is_absolute() else Path(cfg["path"]) / entry
        if p.is_dir():
            total += sum(1 for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            total += sum(1 for line in p.read_text().splitlines() if line.strip())
    return total


def evaluate(weights: Path | str, data: Path | str, split: str = "test", imgsz: int = 640,
             batch: int = 16, conf: float = 0.001, iou: float = 0.7) -> EvalResult:
    """Run Ultralytics validation of ``weights`` on ``split`` of ``data`` (offline, no plots)."""
    with tempfile.TemporaryDirectory(prefix="gw-eval-") as tmp:
        tmp_path = Path(tmp)
        data_yaml = absolute_data_yaml(data, tmp_path)
        cfg = yaml.safe_load(data_yaml.read_text())
        if split not in cfg:
            raise ValueError(f"{Path(data).name} has no '{split}' split "
                             f"(it has: {', '.join(k for k in ('train', 'val', 'test') if k in cfg)}).")
        with DETECTORS.acquire(weights, imgsz=imgsz) as det:
            model = det.yolo
            try:
                m = model.val(data=str(data_yaml), split=split, imgsz=imgsz, batch=batch,
                              conf=conf, iou=iou, plots=False, verbose=False, save_json=False,
                              project=str(tmp_path), name="val", workers=0, device="cpu")
            except (FileNotFoundError, RuntimeError) as exc:
                raise ModelError(f"Evaluation failed: {exc}") from exc
            names = {int(k): str(v) for k, v in model.names.items()}
        box = m.box
        per50 = {names[int(c)]: float(box.ap50[i]) for i, c in enumerate(box.ap_class_index)}
        per5095 = {names[int(c)]: float(box.ap[i]) for i, c in enumerate(box.ap_class_index)}
        cm = getattr(m, "confusion_matrix", None)
        matrix = cm.matrix.tolist() if cm is not None else []
        return EvalResult(
            weights=str(weights), data=str(Path(data).resolve()), split=split, imgsz=imgsz,
            images=_count_images(cfg, split),
            map50=float(box.map50), map50_95=float(box.map),
            per_class_ap50=per50, per_class_ap50_95=per5095,
            speed_ms={k: float(v) for k, v in (m.speed or {}).items()},
            confusion=matrix, confusion_labels=[names[i] for i in sorted(names)] + ["background"],
        )
