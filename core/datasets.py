"""Training data sets: safe zip import, layout detection, validation and registration.

A data set is a YOLO-format collection of images and label files (boxes or polygons) in one
of the two layouts exports come in: Roboflow's ``train/images``, ``valid/images``,
``test/images`` or the Ultralytics ``images/train``, ``images/val`` ... with ``labels``
beside ``images``. Importing writes a normalized ``data.yaml`` with ABSOLUTE paths, because
Ultralytics resolves relative paths against its own datasets folder, not the yaml's.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
import stat
import uuid
import zipfile
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import yaml

from core.config import ensure_home, settings
from core.media import IMAGE_SUFFIXES
from core.store import now, row_by_ref

# Split names as they appear in exports, mapped to the key Ultralytics uses.
SPLIT_ALIASES = {"train": "train", "valid": "val", "val": "val", "validation": "val",
                 "test": "test"}
NORMALIZED_YAML = "data.yaml"
# Zip entries that are archive noise, not data.
_JUNK = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$|Thumbs\.db$)")


class DatasetError(ValueError):
    """A data set that cannot be imported or used, with a message meant for the user."""


@dataclass(frozen=True)
class ImportLimits:
    """Bounds on what one zip import may unpack (defaults from ``GLOVEWATCH_DATASET_*``)."""

    max_bytes: int = 8 << 30
    max_files: int = 200_000

    @classmethod
    def from_env(cls) -> ImportLimits:
        s = settings()
        return cls(max_bytes=s.dataset_max_mb << 20, max_files=s.dataset_max_files)


@dataclass(frozen=True)
class Layout:
    """Where the images of each split are, and the class names."""

    root: Path
    names: tuple[str, ...]
    splits: dict[str, Path]  # 'train' | 'val' | 'test' -> absolute image folder


@dataclass
class ValidationReport:
    """What was found in a data set; ``errors`` block training, ``warnings`` do not."""

    task: str = "detect"  # detect | segment
    names: tuple[str, ...] = ()
    images: dict[str, int] = field(default_factory=dict)  # split -> image count
    instances: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> class -> n
    missing_labels: list[str] = field(default_factory=list)
    empty_images: list[str] = field(default_factory=list)
    out_of_range: list[str] = field(default_factory=list)
    bad_class_ids: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # across splits
    mixed_label_types: bool = False

    @property
    def labelled_instances(self) -> int:
        return sum(sum(c.values()) for c in self.instances.values())

    @property
    def errors(self) -> list[str]:
        out = []
        if not self.images.get("train"):
            out.append("The data set has no training images.")
        if not self.images.get("val"):
            out.append("The data set has no validation images (a 'valid' or 'val' split).")
        if self.images and self.labelled_instances == 0:
            out.append("The data set has no labels: every image is missing its label file or "
                       "has an empty one.")
        return out

    @property
    def warnings(self) -> list[str]:
        out = []
        if self.missing_labels:
            out.append(f"{len(self.missing_labels)} image(s) have no label file (trained as "
                       "background).")
        if self.empty_images:
            out.append(f"{len(self.empty_images)} image(s) have an empty label file "
                       "(background images).")
        if self.out_of_range:
            out.append(f"{len(self.out_of_range)} label line(s) have coordinates outside 0..1 "
                       "(Ultralytics drops those label files).")
        if self.bad_class_ids:
            out.append(f"{len(self.bad_class_ids)} label line(s) use class ids beyond the "
                       f"{len(self.names)} names in data.yaml (Ultralytics drops those files).")
        if self.malformed:
            out.append(f"{len(self.malformed)} label line(s) are not YOLO box or polygon lines.")
        if self.duplicates:
            out.append(f"{len(self.duplicates)} image(s) appear in more than one split "
                       "(identical files): validation scores will be too optimistic.")
        if self.mixed_label_types:
            out.append("The labels mix boxes and polygons; training uses the majority type "
                       f"({self.task}).")
        return out

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ValidationReport:
        raw = json.loads(text or "{}")
        if not raw:
            return cls()
        raw["names"] = tuple(raw.get("names", ()))
        raw["duplicates"] = [tuple(d) for d in raw.get("duplicates", [])]
        return cls(**raw)


@dataclass(frozen=True)
class Dataset:
    """A registered data set: ``yaml_path`` is the normalized data.yaml to train on."""

    id: int
    name: str
    yaml_path: Path
    task: str
    names: tuple[str, ...]
    report: ValidationReport
    created_at: str


@dataclass(frozen=True)
class LabelShape:
    """One label line: a class id and its outline in normalized coordinates."""

    class_id: int
    points: np.ndarray  # (N, 2); N == 2 for a box given as two corners
    is_box: bool


# ---------------------------------------------------------------------------- zip import


def _safe_member(name: str) -> PurePosixPath:
    """The relative path of a zip entry, refusing anything that could leave the target."""
    clean = name.replace("\\", "/")
    path = PurePosixPath(clean)
    if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean) or ".." in path.parts:
        raise DatasetError(
            f"The zip contains an unsafe path '{name}' (absolute or with '..'); it was "
            "refused so nothing is written outside the data set folder.")
    return path


def extract_zip(zip_path: Path, target: Path, limits: ImportLimits | None = None) -> None:
    """Unpack ``zip_path`` into the new folder ``target`` safely.

    Refuses path escapes and links, enforces size and file-count limits while reading (the
    sizes in the zip header can lie), and checks free disk space first. ``target`` is removed
    again on any failure.
    """
    limits = limits or ImportLimits.from_env()
    try:
        zf = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"{Path(zip_path).name} is not a readable zip archive (broken or "
                           f"truncated: {exc}).") from exc
    except OSError as exc:
        raise DatasetError(f"Cannot open {zip_path}: {exc.strerror or exc}") from exc
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir() and not _JUNK.search(m.filename)]
        if not members:
            raise DatasetError(f"{Path(zip_path).name} is empty.")
        if len(members) > limits.max_files:
            raise DatasetError(f"The zip holds {len(members)} files, more than the limit of "
                               f"{limits.max_files} (GLOVEWATCH_DATASET_MAX_FILES).")
        declared = sum(m.file_size for m in members)
        if declared > limits.max_bytes:
            raise DatasetError(f"The zip unpacks to {declared >> 20} MB, more than the limit "
                               f"of {limits.max_bytes >> 20} MB (GLOVEWATCH_DATASET_MAX_MB).")
        for m in members:
            _safe_member(m.filename)
            if stat.S_ISLNK(m.external_attr >> 16):
                raise DatasetError(f"The zip contains a symbolic link '{m.filename}'; links "
                                   "are refused.")
        target.parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(target.parent).free
        if declared * 1.1 > free:
            raise DatasetError(f"Not enough disk space: the data set needs {declared >> 20} MB, "
                               f"{free >> 20} MB are free in {target.parent}.")
        target.mkdir()
        written = 0
        try:
            for m in members:
                dest = target.joinpath(*_safe_member(m.filename).parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(m) as src, open(dest, "wb") as out:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        written += len(chunk)
                        if written > limits.max_bytes:
                            raise DatasetError("The zip unpacks to more than its header says and "
                                               f"beyond the {limits.max_bytes >> 20} MB limit.")
                        out.write(chunk)
        except zipfile.BadZipFile as exc:
            shutil.rmtree(target, ignore_errors=True)
            raise DatasetError(f"{Path(zip_path).name} is damaged ({exc}).") from exc
        except OSError as exc:
            shutil.rmtree(target, ignore_errors=True)
            raise DatasetError(f"Unpacking failed: {exc.strerror or exc} (disk full?).") from exc
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise


# ---------------------------------------------------------------------------- layout


def _names_from_yaml(raw: dict, source: Path) -> tuple[str, ...]:
    names = raw.get("names")
    if isinstance(names, dict):
        try:
            return tuple(str(names[k]) for k in sorted(names, key=int))
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"{source}: 'names' keys must be class ids 0..n-1.") from exc
    if isinstance(names, list) and names:
        return tuple(str(n) for n in names)
    raise DatasetError(f"{source} has no class 'names' list.")


def _find_yaml(root: Path) -> Path:
    candidates = sorted((p for p in root.rglob("*.yaml") if p.name in ("data.yaml", "dataset.yaml")
                         or p.parent == root), key=lambda p: (len(p.parts), p.name != "data.yaml"))
    if not candidates:
        raise DatasetError(f"No data.yaml found in {root.name}: a YOLO export needs one with the "
                           "class names.")
    return candidates[0]


def _labels_dir(images_dir: Path) -> Path:
    """Ultralytics' rule: the last ``images`` folder in the path becomes ``labels``."""
    parts = list(images_dir.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts)
    return images_dir  # labels next to images


def detect_layout(source: Path) -> Layout:
    """Find class names and split folders of a data set (its folder or its data.yaml).

    Paths declared in the yaml are used when absolute or inside the data set folder; splits
    they do not give are found from the folder structure (Roboflow's ``../train/images``
    rarely resolves as written).
    """
    source = Path(source).expanduser().resolve()
    if source.is_file() and source.suffix in (".yaml", ".yml"):
        yaml_path = source
    elif source.is_dir():
        yaml_path = _find_yaml(source)
    else:
        raise DatasetError(f"Data set not found: {source}")
    try:
        raw = yaml.safe_load(yaml_path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{yaml_path.name} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise DatasetError(f"{yaml_path.name} is not a YOLO data set description.")
    names = _names_from_yaml(raw, yaml_path)
    base = yaml_path.parent.resolve()
    data_root = Path(str(raw.get("path") or "."))
    data_root = data_root if data_root.is_absolute() else (base / data_root).resolve()
    splits: dict[str, Path] = {}
    for key in ("train", "val", "test"):
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        declared = Path(value)
        cand = declared if declared.is_absolute() else (data_root / declared).resolve()
        if cand.is_dir() and (declared.is_absolute() or cand.is_relative_to(base)):
            splits[key] = cand
    for folder, key in SPLIT_ALIASES.items():
        if key in splits:
            continue
        for cand in (base / folder / "images", base / "images" / folder):
            if cand.is_dir():
                splits[key] = cand.resolve()
                break
    return Layout(root=data_root if data_root.is_dir() else base, names=names, splits=splits)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def parse_label_line(line: str) -> LabelShape | None:
    """One YOLO label line (box ``c x y w h`` or polygon ``c x1 y1 x2 y2 ...``), or None."""
    parts = line.split()
    if len(parts) < 5:
        return None
    try:
        cid = int(float(parts[0]))
        vals = np.array([float(v) for v in parts[1:]], dtype=np.float32)
    except ValueError:
        return None
    if len(vals) == 4:
        x, y, w, h = vals
        return LabelShape(cid, np.array([[x - w / 2, y - h / 2], [x + w / 2, y + h / 2]]), True)
    if len(vals) >= 6 and len(vals) % 2 == 0:
        return LabelShape(cid, vals.reshape(-1, 2), False)
    return None


def read_labels(label_path: Path) -> list[LabelShape]:
    """The shapes of one label file (unparseable lines skipped; validate() reports them)."""
    if not label_path.exists():
        return []
    shapes = (parse_label_line(l) for l in label_path.read_text(errors="replace").splitlines())
    return [s for s in shapes if s is not None]


def _file_hash(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def validate(layout: Layout) -> ValidationReport:
    """Check every image and label file of a data set and count instances per class."""
    rep = ValidationReport(names=layout.names)
    nc = len(layout.names)
    kinds: Counter[str] = Counter()
    seen: dict[str, tuple[str, str]] = {}  # hash -> (split, relative path)
    dups: set[tuple[str, str]] = set()
    for split, img_dir in layout.splits.items():
        lab_dir = _labels_dir(img_dir)
        images = _images_in(img_dir)
        rep.images[split] = len(images)
        counts: Counter[str] = Counter()
        for img in images:
            rel = f"{split}/{img.relative_to(img_dir).as_posix()}"
            digest = _file_hash(img)
            if digest in seen and seen[digest][0] != split:
                dups.add((seen[digest][1], rel))
            seen.setdefault(digest, (split, rel))
            lab = lab_dir / img.relative_to(img_dir).with_suffix(".txt")
            if not lab.exists():
                rep.missing_labels.append(rel)
                continue
            lines = [l for l in lab.read_text(errors="replace").splitlines() if l.strip()]
            if not lines:
                rep.empty_images.append(rel)
                continue
            for n, line in enumerate(lines, 1):
                shape = parse_label_line(line)
                where = f"{rel}:{n}"
                if shape is None:
                    rep.malformed.append(where)
                    continue
                kinds["box" if shape.is_box else "polygon"] += 1
                if not 0 <= shape.class_id < nc:
                    rep.bad_class_ids.append(f"{where} (class {shape.class_id})")
                    continue
                if shape.is_box:
                    x, y, w, h = (float(v) for v in line.split()[1:5])
                    coords = np.array([x, y, w, h])
                else:
                    coords = shape.points
                if (coords < 0).any() or (coords > 1).any():
                    rep.out_of_range.append(where)
                counts[layout.names[shape.class_id]] += 1
        rep.instances[split] = {name: counts.get(name, 0) for name in layout.names}
    rep.duplicates = sorted(dups)
    rep.task = "segment" if kinds["polygon"] > kinds["box"] else "detect"
    rep.mixed_label_types = bool(kinds["polygon"] and kinds["box"])
    return rep


def write_data_yaml(layout: Layout, target: Path) -> Path:
    """Write a data.yaml with absolute paths that Ultralytics reads as-is."""
    doc = {"path": str(layout.root),
           **{k: str(v) for k, v in layout.splits.items()},
           "names": {i: n for i, n in enumerate(layout.names)}}
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("# Written by GloveWatch: absolute paths on purpose.\n"
                      + yaml.safe_dump(doc, sort_keys=False))
    return target


# ---------------------------------------------------------------------------- registry


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:60] or "dataset"


def _row_to_dataset(row: sqlite3.Row) -> Dataset:
    return Dataset(id=row["id"], name=row["name"], yaml_path=Path(row["path"]), task=row["task"],
                   names=tuple(json.loads(row["names_json"])),
                   report=ValidationReport.from_json(row["report_json"]),
                   created_at=row["created_at"])


def register(conn: sqlite3.Connection, name: str, yaml_path: Path,
             report: ValidationReport) -> Dataset:
    """Record a validated data set in the store."""
    cur = conn.execute(
        "INSERT INTO datasets (name, path, task, names_json, report_json, created_at)"
        " VALUES (?,?,?,?,?,?)",
        (name, str(yaml_path), report.task, json.dumps(list(report.names)), report.to_json(),
         now()))
    return get_dataset(conn, int(cur.lastrowid))


def import_dataset(conn: sqlite3.Connection, source: Path | str, name: str | None = None,
                   limits: ImportLimits | None = None) -> Dataset:
    """Import a zip (unpacked into the data folder) or a folder (used in place) and register it.

    Raises :class:`DatasetError` for anything unusable, including a data set whose report has
    errors (no labels, no validation split); a data set with only warnings is registered.
    """
    source = Path(source).expanduser()
    if not source.exists():
        raise DatasetError(f"Not found: {source}")
    s = ensure_home()
    name = name or _slug(source.stem if source.is_file() else source.name)
    folder = s.datasets_dir / f"{_slug(name)}-{uuid.uuid4().hex[:8]}"
    if source.is_file():
        if source.suffix.lower() in (".yaml", ".yml"):
            layout = detect_layout(source)
        else:
            extract_zip(source, folder / "files", limits)
            layout = _layout_or_cleanup(folder)
    else:
        layout = detect_layout(source)
    report = validate(layout)
    if report.errors:
        shutil.rmtree(folder, ignore_errors=True)
        raise DatasetError(" ".join(report.errors))
    yaml_path = write_data_yaml(layout, folder / NORMALIZED_YAML)
    return register(conn, name, yaml_path, report)


def _layout_or_cleanup(folder: Path) -> Layout:
    try:
        return detect_layout(folder / "files")
    except DatasetError:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def get_dataset(conn: sqlite3.Connection, ref: int | str) -> Dataset:
    """A registered data set by id or name (the newest with that name)."""
    row = row_by_ref(conn, "datasets", ref)
    if row is None:
        raise DatasetError(f"No data set '{ref}' is registered.")
    return _row_to_dataset(row)


def list_datasets(conn: sqlite3.Connection) -> list[Dataset]:
    """All registered data sets, newest first."""
    return [_row_to_dataset(r) for r in
            conn.execute("SELECT * FROM datasets ORDER BY id DESC").fetchall()]


def resolve_data(conn: sqlite3.Connection, data: str | Path) -> Dataset:
    """A data set from what a user typed: a registered id/name, a data.yaml, a zip or a folder."""
    path = Path(data).expanduser()
    if path.exists():
        return import_dataset(conn, path)
    return get_dataset(conn, str(data))


# ---------------------------------------------------------------------------- samples


def _colour(class_id: int) -> tuple[int, int, int]:
    hue = (class_id * 47) % 180
    bgr = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def draw_labels(image: np.ndarray, shapes: list[LabelShape],
                names: tuple[str, ...]) -> np.ndarray:
    """A copy of ``image`` with boxes or polygons and class names drawn."""
    out = image.copy()
    h, w = out.shape[:2]
    thick = max(1, round(min(h, w) / 300))
    for s in shapes:
        pts = (s.points * [w, h]).astype(np.int32)
        colour = _colour(s.class_id)
        if s.is_box:
            cv2.rectangle(out, tuple(pts[0]), tuple(pts[1]), colour, thick)
        else:
            cv2.polylines(out, [pts], True, colour, thick)
        label = names[s.class_id] if 0 <= s.class_id < len(names) else f"?{s.class_id}"
        x, y = int(pts[:, 0].min()), max(12, int(pts[:, 1].min()) - 4)
        cv2.putText(out, label, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick, colour, thick)
    return out


def sample_images(dataset: Dataset, n: int = 6,
                  split: str = "train") -> list[tuple[str, np.ndarray]]:
    """Up to ``n`` images of a split with their labels drawn, spread over the split."""
    layout = detect_layout(dataset.yaml_path)
    img_dir = layout.splits.get(split)
    if img_dir is None:
        return []
    images = _images_in(img_dir)
    step = max(1, len(images) // max(n, 1))
    out = []
    for img_path in images[::step][:n]:
        image = cv2.imread(str(img_path))
        if image is None:
            continue
        lab = _labels_dir(img_dir) / img_path.relative_to(img_dir).with_suffix(".txt")
        out.append((img_path.name, draw_labels(image, read_labels(lab), layout.names)))
    return out


def class_count_rows(report: ValidationReport) -> list[tuple[str, str, int]]:
    """``(split, class, instances)`` rows of a report, for tables."""
    return [(split, name, n) for split, counts in report.instances.items()
            for name, n in counts.items()]


def split_image_counts(report: ValidationReport) -> dict[str, int]:
    """Images per split, in train/val/test order."""
    order = defaultdict(lambda: 9, {"train": 0, "val": 1, "test": 2})
    return dict(sorted(report.images.items(), key=lambda kv: order[kv[0]]))
