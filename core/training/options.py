"""What a training run trains with: the model (built-in architectures, the project's
variants, local weights), the Ultralytics arguments a user may set, recipes, the device, and
the checks a request passes before it is queued (:func:`check_spec`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.config import MODELS_DIR
from core.errors import DatasetError, TrainingError
from core.storage import Store
from core.training.datasets import ValidationReport, validate
from core.training.recipes import RECIPES
from core.vision.detector import inspect_model, model_names
from core.vision.yolo_data import load_yaml, read_layout, write_data_yaml

SIZES = ("n", "s", "m", "l", "x")
# Built-in Ultralytics architectures, trained from scratch (no pretrained download offline).
ARCHITECTURES = tuple(f"yolo11{s}{t}.yaml" for t in ("", "-seg") for s in SIZES)
SIZE_LABELS = {
    "n": "n (nano, fastest)",
    "s": "s (small)",
    "m": "m (medium)",
    "l": "l (large)",
    "x": "x (extra large)",
}
TASKS = ("detect", "segment")


def architecture(size: str, task: str) -> str:
    """The built-in YOLO11 architecture of a size and task, e.g. ``yolo11n-seg.yaml``."""
    if size not in SIZES or task not in TASKS:
        raise TrainingError(f"There is no YOLO11 '{size}' model for '{task}'.")
    return f"yolo11{size}{'-seg' if task == 'segment' else ''}.yaml"


@dataclass(frozen=True)
class TrainSpec:
    """What the user asked for. ``extra`` holds advanced Ultralytics overrides."""

    data: str  # normalized data.yaml (absolute)
    model: str  # architecture yaml name/path or a .pt weights file
    epochs: int = 50
    imgsz: int = 640
    batch: int = 16
    patience: int = 50
    augment: float = 1.0  # 0 = no augmentation, 1 = Ultralytics defaults, 2 = strong
    device: str = ""  # '' = GPU 0 when available, else cpu
    name: str = ""
    recipe: str | None = None
    dataset: str = ""  # registered data set label for display
    extra: dict[str, Any] = field(default_factory=dict)


def project_variants() -> list[Path]:
    """The project's own architecture YAMLs in ``models/``."""
    return sorted(MODELS_DIR.glob("*.yaml")) if MODELS_DIR.is_dir() else []


def describe_variant(path: Path) -> str:
    """The leading comment block of a variant YAML (what it changes and why)."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").rstrip())
    return " ".join(lines)


def resolve_model(model: str) -> str:
    """The model argument for Ultralytics: a built-in YAML name, a project YAML or a .pt path."""
    if model in ARCHITECTURES:
        return model
    local = MODELS_DIR / model
    if local.suffix in (".yaml", ".yml") and local.is_file():
        return str(local.resolve())
    path = Path(model).expanduser()
    if path.is_file() and path.suffix in (".pt", ".yaml", ".yml"):
        return str(path.resolve())
    raise TrainingError(
        f"Unknown model '{Path(model).name}': give one of {', '.join(ARCHITECTURES)}, a YAML "
        "from models/, or a local .pt weights file (no downloads happen here)."
    )


def model_task(model: str) -> str:
    """``segment`` or ``detect``: what a model YAML builds or a weights file was trained for."""
    if model.endswith((".yaml", ".yml")):
        text = Path(model).read_text() if Path(model).is_file() else model
        return "segment" if "seg" in Path(model).stem or "Segment" in text else "detect"
    return inspect_model(model).task


# ---------------------------------------------------------------------------- arguments

# Ultralytics options a user may set in "Advanced options" / --extra: hyper-parameters,
# augmentation and speed knobs. Anything that names files or folders (cfg, project, name,
# data, model, pretrained, tracker, source, save_dir ...) is refused: it could read or write
# anywhere on the server.
ALLOWED_EXTRA = frozenset(
    {
        "lr0",
        "lrf",
        "momentum",
        "weight_decay",
        "warmup_epochs",
        "warmup_momentum",
        "warmup_bias_lr",
        "box",
        "cls",
        "dfl",
        "nbs",
        "optimizer",
        "cos_lr",
        "close_mosaic",
        "freeze",
        "dropout",
        "seed",
        "deterministic",
        "single_cls",
        "rect",
        "multi_scale",
        "fraction",
        "cache",
        "workers",
        "amp",
        "plots",
        "time",
        "save_period",
        "val",
        "hsv_h",
        "hsv_s",
        "hsv_v",
        "degrees",
        "translate",
        "scale",
        "shear",
        "perspective",
        "flipud",
        "fliplr",
        "bgr",
        "mosaic",
        "mixup",
        "cutmix",
        "copy_paste",
        "copy_paste_mode",
        "erasing",
        "overlap_mask",
        "mask_ratio",
        "max_det",
    }
)


def augmentation(strength: float) -> dict[str, float]:
    """Ultralytics augmentation hyper-parameters scaled from its defaults (1.0)."""
    s = max(0.0, min(2.0, float(strength)))
    return {
        "hsv_h": round(0.015 * s, 4),
        "hsv_s": min(1.0, 0.7 * s),
        "hsv_v": min(1.0, 0.4 * s),
        "translate": min(0.9, 0.1 * s),
        "scale": min(0.9, 0.5 * s),
        "fliplr": 0.5 if s > 0 else 0.0,
        "mosaic": 1.0 if s > 0 else 0.0,
    }


def check_extra(extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` if every option is one a user may set; else :class:`TrainingError` naming
    the refused ones."""
    refused = sorted(str(k) for k in extra if k not in ALLOWED_EXTRA)
    if refused:
        raise TrainingError(
            f"Training option(s) not allowed here: {', '.join(refused)}. "
            "Allowed are hyper-parameters and augmentation, e.g. lr0, "
            "mosaic, cos_lr, freeze."
        )
    bad = [
        k
        for k, v in extra.items()
        if not isinstance(v, (int, float, str, bool, list)) or (isinstance(v, str) and len(v) > 64)
    ]
    if bad:
        raise TrainingError(
            f"Option(s) {', '.join(sorted(bad))} need a plain number, word or list."
        )
    return extra


def parse_extra(text: str) -> dict[str, Any]:
    """The advanced-options YAML box: a mapping of allowed Ultralytics train arguments."""
    if not text or not text.strip():
        return {}
    try:
        extra = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TrainingError(
            f"The advanced options are not valid YAML: {str(exc).splitlines()[0]}"
        ) from exc
    if not isinstance(extra, dict):
        raise TrainingError("The advanced options must be 'key: value' lines.")
    return check_extra(extra)


def default_device() -> str:
    """GPU 0 when torch sees one, else the CPU."""
    import torch

    return "0" if torch.cuda.is_available() else "cpu"


def recipe_names() -> list[str]:
    """Training recipes offered (see :mod:`core.training.recipes`)."""
    return sorted(RECIPES)


def recipe_help() -> str:
    """One paragraph per recipe with its description (for tooltips and ``--help``)."""
    return "\n\n".join(f"{name}: {r.description}" for name, r in sorted(RECIPES.items()))


# Arguments the user always sets explicitly (a recipe's overrides never replace them).
EXPLICIT_ARGS = frozenset(
    {"data", "epochs", "imgsz", "batch", "patience", "device", "project", "name", "exist_ok"}
)


def train_args(spec: TrainSpec, run_dir: Path, device: str) -> dict[str, Any]:
    """The full Ultralytics ``train()`` keyword arguments of a run."""
    args = {**augmentation(spec.augment), **check_extra(spec.extra)}
    args.update(
        data=spec.data,
        epochs=int(spec.epochs),
        imgsz=int(spec.imgsz),
        batch=int(spec.batch),
        patience=int(spec.patience),
        device=device,
        project=str(run_dir),
        name="train",
        exist_ok=True,
        verbose=True,
    )
    return args


def absolute_yaml(data: Path, folder: Path) -> Path:
    """``data`` itself when its paths are absolute, else a normalized copy with absolute
    paths (Ultralytics resolves a relative ``path`` against its own datasets folder)."""
    raw = load_yaml(data)
    if Path(str(raw.get("path") or "")).is_absolute():
        return data
    import hashlib

    digest = hashlib.sha1(str(data.resolve()).encode(), usedforsecurity=False).hexdigest()[:10]
    return write_data_yaml(
        read_layout(data),
        folder / f"adhoc-{digest}" / "data.yaml",
        comment=f"{data} with absolute paths, for training",
    )


@dataclass(frozen=True)
class CheckedSpec:
    """A request that passed :func:`check_spec`: the data.yaml with absolute paths, the
    model argument for Ultralytics, and notes for the run's message."""

    data: Path
    model: str
    notes: tuple[str, ...]


def _checked_data(
    store: Store, data: Path, datasets_dir: Path
) -> tuple[Path, tuple[str, ...], ValidationReport]:
    """The data set file with absolute paths, its class names and its validation report."""
    if not data.is_file():
        raise TrainingError(f"Data set file not found: {data.name}")
    data = absolute_yaml(data, datasets_dir)
    try:
        names = read_layout(data).names
        known = store.datasets.by_path(str(data))
        # a registered data set was validated on import; anything else is checked now
        report = (
            ValidationReport.from_json(known.report_json) if known else validate(read_layout(data))
        )
    except DatasetError as exc:
        raise TrainingError(str(exc)) from exc
    return data, names, report


def _class_notes(model: str, ds_names: tuple[str, ...]) -> tuple[str, ...]:
    """A note when fine-tuned weights name other classes than the data set."""
    weight_names = model_names(model) if model.endswith(".pt") else None
    if weight_names is None or weight_names == ds_names:
        return ()
    return (
        f"The weights' classes ({', '.join(weight_names)}) differ from the data "
        f"set's ({', '.join(ds_names)}): the output layer is rebuilt for the data "
        "set and the rest of the network is fine-tuned.",
    )


def check_spec(store: Store, spec: TrainSpec, datasets_dir: Path) -> CheckedSpec:
    """Check a request before it is queued: the data set file, the model, the recipe, the
    options and a segmentation model on box-only labels. A fine-tune whose class names
    differ from the data set's is allowed (the head is rebuilt); the notes say so."""
    data, ds_names, report = _checked_data(store, Path(spec.data), datasets_dir)
    model = resolve_model(spec.model)
    if spec.recipe and spec.recipe not in RECIPES:
        raise TrainingError(
            f"Unknown recipe '{spec.recipe}'; available: {', '.join(recipe_names())}."
        )
    check_extra(spec.extra)
    if report.errors:
        raise TrainingError(" ".join(report.errors))
    if model_task(model) == "segment" and report.task != "segment":
        raise TrainingError(
            "A segmentation model needs polygon labels, but this data set has "
            "boxes. Pick a detection model (without -seg)."
        )
    return CheckedSpec(data, model, _class_notes(model, ds_names))


def checked_device(spec: TrainSpec) -> str:
    """The device a run asks for ('' : GPU 0 when there is one, else the CPU); a GPU asked
    for where none is visible is refused."""
    device = spec.device or default_device()
    if device != "cpu" and default_device() == "cpu":
        raise TrainingError(
            f"Device '{device}' was asked for, but no GPU is visible here; "
            "use 'cpu' or leave the device empty."
        )
    return device
