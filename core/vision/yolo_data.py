"""The one reader of YOLO data sets: ``data.yaml``, split folders, label files.

A YOLO data set is a ``data.yaml`` (class ``names``, and ``train``/``val``/``test`` entries
relative to ``path``) plus image folders with label files beside them: Ultralytics pairs
``.../images/<split>/x.jpg`` with ``.../labels/<split>/x.txt`` (the last ``images`` in the
path becomes ``labels``). Roboflow exports use ``train/images`` and ``valid/images`` instead,
with paths in their yaml that rarely resolve as written; :func:`read_layout` finds both.

Reading is defensive, because data sets arrive from outside: a ``data.yaml`` may not use YAML
aliases (a "billion laughs" file would expand to gigabytes), is size-capped, and with
``within`` set may not point outside the data set's own folder; label lines with values that
are not finite numbers are reported, never silently used.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from core.errors import DatasetError
from core.media import IMAGE_SUFFIXES

SPLITS = ("train", "val", "test")
# Split names as they appear in exports, mapped to the key Ultralytics uses.
SPLIT_ALIASES = {
    "train": "train",
    "valid": "val",
    "val": "val",
    "validation": "val",
    "test": "test",
}
MAX_YAML_BYTES = 1 << 20
MAX_CLASSES = 1000
MAX_NAME_CHARS = 100


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader without anchors and aliases (data set files never need them)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise DatasetError(
                "The data.yaml uses YAML aliases ('*name'), which a data set "
                "file never needs; it was refused (alias bombs can exhaust "
                "memory)."
            )
        return super().compose_node(parent, index)


@dataclass(frozen=True)
class YoloBox:
    """One labelled box in normalised YOLO form (centre x, centre y, width, height in 0..1)."""

    class_id: int
    cx: float
    cy: float
    w: float
    h: float

    def xyxy(self, width: int, height: int) -> tuple[float, float, float, float]:
        """The box in pixels of an image of ``width`` x ``height``."""
        return (
            (self.cx - self.w / 2) * width,
            (self.cy - self.h / 2) * height,
            (self.cx + self.w / 2) * width,
            (self.cy + self.h / 2) * height,
        )


@dataclass(frozen=True)
class LabelShape:
    """One label line: a class id and its outline in normalized coordinates."""

    class_id: int
    points: np.ndarray  # (N, 2); N == 2 for a box given as two corners
    is_box: bool

    def to_box(self) -> YoloBox:
        """The shape's bounding box (a polygon's extent)."""
        (x1, y1), (x2, y2) = self.points.min(0), self.points.max(0)
        return YoloBox(
            self.class_id,
            float((x1 + x2) / 2),
            float((y1 + y2) / 2),
            float(x2 - x1),
            float(y2 - y1),
        )


class LabelLineError(ValueError):
    """A label line that is not a YOLO box or polygon line (the message says why)."""


def parse_label_line(line: str) -> LabelShape:
    """One YOLO label line: box ``c x y w h`` or polygon ``c x1 y1 x2 y2 ...``.

    Raises :class:`LabelLineError` for anything else, including ``inf`` and ``nan``.
    """
    parts = line.split()
    if len(parts) < 5:
        raise LabelLineError("fewer than 5 values")
    try:
        cid_f = float(parts[0])
        vals = np.array([float(v) for v in parts[1:]], dtype=np.float64)
    except ValueError as exc:
        raise LabelLineError("not numbers") from exc
    if not math.isfinite(cid_f) or not np.isfinite(vals).all():
        raise LabelLineError("inf or nan values")
    if cid_f != int(cid_f) or cid_f < 0:
        raise LabelLineError("class id is not a whole number >= 0")
    cid = int(cid_f)
    if len(vals) == 4:
        x, y, w, h = vals
        return LabelShape(cid, np.array([[x - w / 2, y - h / 2], [x + w / 2, y + h / 2]]), True)
    if len(vals) >= 6 and len(vals) % 2 == 0:
        return LabelShape(cid, vals.reshape(-1, 2), False)
    raise LabelLineError("neither 4 box values nor an even number of polygon values")


def read_label_file(label_path: Path) -> list[tuple[int, str, LabelShape | LabelLineError]]:
    """``(line number, text, shape or error)`` of every non-empty line (no file: none)."""
    if not label_path.exists():
        return []
    out: list[tuple[int, str, LabelShape | LabelLineError]] = []
    for n, line in enumerate(label_path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append((n, line, parse_label_line(line)))
        except LabelLineError as exc:
            out.append((n, line, exc))
    return out


def read_labels(label_path: Path) -> list[LabelShape]:
    """The valid shapes of one label file (invalid lines are left to validation)."""
    return [s for _, _, s in read_label_file(label_path) if isinstance(s, LabelShape)]


def labels_dir(images_dir: Path) -> Path:
    """Ultralytics' rule: the last ``images`` folder in the path becomes ``labels``."""
    parts = list(Path(images_dir).parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts)
    return Path(images_dir)  # labels next to the images


def images_in(entry: Path) -> list[Path]:
    """Image files of a split entry: a folder (recursively, sorted) or a ``.txt`` file listing
    image paths (relative lines are relative to the list's folder), as Ultralytics reads."""
    entry = Path(entry)
    if entry.is_file() and entry.suffix == ".txt":
        lines = [line.strip() for line in entry.read_text().splitlines() if line.strip()]
        paths = [Path(line) if Path(line).is_absolute() else entry.parent / line for line in lines]
        return [p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(p for p in entry.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def label_path(image: Path, entry: Path | None = None) -> Path:
    """The label file of ``image`` (Ultralytics' rule: the last ``images`` folder of the
    image's path becomes ``labels``). ``entry``, the split folder or list, is not needed."""
    return labels_dir(image.parent) / f"{image.stem}.txt"


# ---------------------------------------------------------------------------- data.yaml


def load_yaml(path: Path) -> dict[str, Any]:
    """A data.yaml as a mapping: size-capped, no aliases, clear errors."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise DatasetError(f"{path.name} is {size >> 10} KB; a data set file is a few lines.")
        raw = yaml.load(path.read_text(), Loader=_NoAliasLoader)  # noqa: S506 (no aliases)
    except FileNotFoundError:
        raise DatasetError(f"Data set file not found: {path.name}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path.name} is not valid YAML ({str(exc).splitlines()[0]}).") from exc
    if not isinstance(raw, dict):
        raise DatasetError(f"{path.name} is not a YOLO data set description.")
    return raw


def class_names(raw: dict[str, Any], source: str = "data.yaml") -> tuple[str, ...]:
    """The ``names`` of a data.yaml (a list or an ``{id: name}`` mapping), checked."""
    names = raw.get("names")
    if isinstance(names, dict):
        try:
            keys = sorted(names, key=int)
        except (TypeError, ValueError):
            raise DatasetError(f"{source}: 'names' keys must be class ids 0..n-1.") from None
        if [int(k) for k in keys] != list(range(len(keys))):
            raise DatasetError(f"{source}: 'names' keys must be class ids 0..n-1.")
        values = [names[k] for k in keys]
    elif isinstance(names, list):
        values = names
    else:
        raise DatasetError(f"{source} has no class 'names' list.")
    if not values:
        raise DatasetError(f"{source} has an empty 'names' list.")
    if len(values) > MAX_CLASSES:
        raise DatasetError(f"{source} names {len(values)} classes; at most {MAX_CLASSES}.")
    if not all(isinstance(v, (str, int, float)) for v in values):
        raise DatasetError(f"{source}: every class name must be plain text.")
    out = tuple(str(v).strip() for v in values)
    if any(not v or len(v) > MAX_NAME_CHARS for v in out):
        raise DatasetError(f"{source}: class names must be 1-{MAX_NAME_CHARS} characters.")
    return out


@dataclass(frozen=True)
class Layout:
    """Where the images of each split are, and the class names."""

    yaml_path: Path
    root: Path
    names: tuple[str, ...]
    splits: dict[str, list[Path]] = field(default_factory=dict)  # split -> image folders

    def folders(self, split: str) -> list[Path]:
        """Image folders of ``split`` (raises :class:`DatasetError` if it has none)."""
        if split not in self.splits:
            have = ", ".join(s for s in SPLITS if s in self.splits) or "none"
            raise DatasetError(f"The data set has no '{split}' split (it has: {have}).")
        return self.splits[split]

    def images(self, split: str) -> list[Path]:
        return [p for d in self.folders(split) for p in images_in(d)]


def _inside(path: Path, root: Path, what: str) -> Path:
    if not path.resolve().is_relative_to(root.resolve()):
        raise DatasetError(
            f"The data.yaml's {what} points outside the data set folder; only "
            "paths inside the imported folder are allowed."
        )
    return path


def find_yaml(folder: Path) -> Path:
    """The data.yaml of a data set folder (the shallowest ``data.yaml``/``dataset.yaml``)."""
    candidates = sorted(
        (
            p
            for p in folder.rglob("*.y*ml")
            if p.name in ("data.yaml", "dataset.yaml", "data.yml")
            or (p.parent == folder and p.suffix in (".yaml", ".yml"))
        ),
        key=lambda p: (len(p.parts), p.name != "data.yaml"),
    )
    if not candidates:
        raise DatasetError(
            f"No data.yaml found in {folder.name}: a YOLO export needs one with the class names."
        )
    return candidates[0]


def read_layout(source: Path | str, within: Path | None = None) -> Layout:
    """Class names and split folders of a data set (its folder or its data.yaml).

    ``within``: refuse any path of the yaml that leads outside this folder (imports). Splits
    the yaml does not give are found from the folder structure (Roboflow's
    ``../train/images`` rarely resolves as written).
    """
    source = Path(source).expanduser().resolve()
    if source.is_file() and source.suffix in (".yaml", ".yml"):
        yaml_path = source
    elif source.is_dir():
        yaml_path = find_yaml(source)
    else:
        raise DatasetError(f"Data set not found: {source.name}")
    raw = load_yaml(yaml_path)
    names = class_names(raw, yaml_path.name)
    base = yaml_path.parent
    declared_root = Path(str(raw.get("path") or "."))
    root = declared_root if declared_root.is_absolute() else (base / declared_root)
    root = root.resolve()
    if within is not None:
        _inside(root, within, "'path'")
    splits: dict[str, list[Path]] = {}
    for key in SPLITS:
        value = raw.get(key)
        entries = value if isinstance(value, list) else [value]
        folders = []
        for entry in entries:
            if not isinstance(entry, str) or not entry.strip():
                continue
            cand = Path(entry) if Path(entry).is_absolute() else root / entry
            if entry.startswith("../") and not cand.resolve().is_dir():
                # Ultralytics' own rule for Roboflow exports: their data.yaml beside train/
                # says '../train/images', meant relative to the yaml's folder.
                cand = root / entry[3:]
            if within is not None:
                _inside(cand, within, f"'{key}'")
            if cand.resolve().is_dir() or (cand.suffix == ".txt" and cand.is_file()):
                folders.append(cand.resolve())
        if folders:
            splits[key] = folders
    for folder, key in SPLIT_ALIASES.items():
        if key in splits:
            continue
        for cand in (base / folder / "images", base / "images" / folder):
            if cand.is_dir():
                splits[key] = [cand.resolve()]
                break
    return Layout(
        yaml_path=yaml_path, root=root if root.is_dir() else base, names=names, splits=splits
    )


def write_data_yaml(layout: Layout, target: Path, comment: str = "") -> Path:
    """Write a data.yaml with absolute paths, which Ultralytics reads as-is.

    (Ultralytics resolves a relative ``path`` against its own datasets folder, not against
    the yaml file.)
    """

    def entry(folders: list[Path]) -> str | list[str]:
        return str(folders[0]) if len(folders) == 1 else [str(f) for f in folders]

    doc = {
        "path": str(layout.root),
        **{k: entry(v) for k, v in layout.splits.items()},
        "names": dict(enumerate(layout.names)),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    head = "".join(
        f"# {line}\n"
        for line in (comment or "Written by GloveWatch: absolute paths on purpose.").splitlines()
    )
    target.write_text(head + yaml.safe_dump(doc, sort_keys=False))
    return target


# ---------------------------------------------------------------------------- boxes


@dataclass(frozen=True)
class LabelledImage:
    """An image file of a split with its boxes (polygons reduced to their extent)."""

    image: Path
    boxes: tuple[YoloBox, ...]


def read_images_dir(images_dir: Path) -> list[LabelledImage]:
    """All images of one image folder with their boxes, sorted by file name.

    Raises :class:`DatasetError` for a missing or empty folder and for an invalid label line.
    """
    images_dir = Path(images_dir)
    if not images_dir.exists():
        raise DatasetError(f"Image folder not found: {images_dir}")
    files = images_in(images_dir)
    if not files:
        raise DatasetError(f"{images_dir.name} has no images.")
    out = []
    for img in files:
        lab = label_path(img, images_dir)
        boxes = []
        for n, _line, shape in read_label_file(lab):
            if isinstance(shape, LabelLineError):
                raise DatasetError(f"{lab.name}:{n}: not a YOLO label line ({shape}).")
            boxes.append(shape.to_box())
        out.append(LabelledImage(img, tuple(boxes)))
    return out


def read_split(source: Path | str, split: str) -> list[LabelledImage]:
    """All images of ``split`` of a data set (folder or data.yaml) with their boxes."""
    layout = read_layout(source)
    return [item for d in layout.folders(split) for item in read_images_dir(d)]


def iter_split(layout: Layout, split: str) -> Iterator[tuple[Path, Path]]:
    """``(image, label file)`` pairs of a split."""
    for folder in layout.folders(split):
        for img in images_in(folder):
            yield img, label_path(img, folder)


# The line each shared data set's README starts with: "**What is labelled:** glove, hand."
_LABELLED = re.compile(r"What is labelled:\W*([a-z ,]+)", re.IGNORECASE)


def readme_labelled(folder: Path, names: Sequence[str]) -> tuple[str, ...] | None:
    """The classes of ``names`` a data set's README says it labels ("What is labelled:
    glove."), or None when it has no README or the README does not say."""
    readme = Path(folder) / "README.md"
    found = _LABELLED.search(readme.read_text(errors="replace")) if readme.is_file() else None
    if not found:
        return None
    said = {w.strip().lower() for w in found.group(1).split(",")}
    return tuple(n for n in names if n.lower() in said)
