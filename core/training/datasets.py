"""Training data sets: safe zip import, validation and registration.

A data set arrives as a zip (a Roboflow or Ultralytics YOLO export) or a folder on the
server; :mod:`core.vision.yolo_data` reads its layout. Importing is defensive: a zip is
unpacked with every path checked (no escapes, no links), sizes capped while unpacking (the
sizes a zip's header declares can lie), the data.yaml may only point inside the data set,
every label line is checked, and a failed import leaves no folder behind. The normalized
``data.yaml`` has ABSOLUTE paths, because Ultralytics resolves relative ones against its own
datasets folder.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import stat
import uuid
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import cv2
import numpy as np

from core.config import ensure_home, settings
from core.errors import DatasetError
from core.storage import Store
from core.storage.training import DatasetRecord
from core.text import slug
from core.vision.annotate import class_colour
from core.vision.yolo_data import (
    LabelLineError,
    LabelShape,
    Layout,
    images_in,
    label_path,
    read_label_file,
    read_labels,
    read_layout,
    write_data_yaml,
)

NORMALIZED_YAML = "data.yaml"
# Zip entries that are archive noise, not data.
_JUNK = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$|Thumbs\.db$)")


@dataclass(frozen=True)
class ImportLimits:
    """Bounds on what one zip import may unpack (defaults from ``GLOVEWATCH_DATASET_*``)."""

    max_bytes: int = 4 << 30
    max_file_bytes: int = 64 << 20
    max_files: int = 200_000

    @classmethod
    def from_env(cls) -> ImportLimits:
        s = settings()
        return cls(
            max_bytes=s.dataset_max_mb << 20,
            max_file_bytes=s.dataset_max_file_mb << 20,
            max_files=s.dataset_max_files,
        )


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
    non_finite: list[str] = field(default_factory=list)
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
            out.append(
                "The data set has no labels: every image is missing its label file or "
                "has an empty one."
            )
        if self.non_finite:
            out.append(
                f"{len(self.non_finite)} label line(s) hold values that are not finite "
                f"numbers (inf or nan), e.g. {self.non_finite[0]}: fix those files."
            )
        return out

    @property
    def warnings(self) -> list[str]:
        out = []
        if self.missing_labels:
            out.append(
                f"{len(self.missing_labels)} image(s) have no label file (trained as background)."
            )
        if self.empty_images:
            out.append(
                f"{len(self.empty_images)} image(s) have an empty label file (background images)."
            )
        if self.out_of_range:
            out.append(
                f"{len(self.out_of_range)} label line(s) have coordinates outside 0..1 "
                "(Ultralytics drops those label files)."
            )
        if self.bad_class_ids:
            out.append(
                f"{len(self.bad_class_ids)} label line(s) use class ids beyond the "
                f"{len(self.names)} names in data.yaml (Ultralytics drops those files)."
            )
        if self.malformed:
            out.append(f"{len(self.malformed)} label line(s) are not YOLO box or polygon lines.")
        if self.duplicates:
            out.append(
                f"{len(self.duplicates)} image(s) appear in more than one split "
                "(identical files): validation scores will be too optimistic."
            )
        if self.mixed_label_types:
            out.append(
                f"The labels mix boxes and polygons; training uses the majority type ({self.task})."
            )
        return out

    @property
    def problems(self) -> dict[str, list[str]]:
        """The files or lines behind each warning, by what is wrong with them."""
        return {
            "Missing labels": self.missing_labels,
            "Empty label files": self.empty_images,
            "Out-of-range coordinates": self.out_of_range,
            "Class ids beyond names": self.bad_class_ids,
            "Unreadable label lines": self.malformed,
            "Duplicates across splits": [" = ".join(d) for d in self.duplicates],
        }

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ValidationReport:
        raw: dict[str, Any] = json.loads(text or "{}")
        if not raw:
            return cls()
        raw["names"] = tuple(raw.get("names", ()))
        raw["duplicates"] = [tuple(d) for d in raw.get("duplicates", [])]
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in raw.items() if k in known})


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

    @property
    def splits(self) -> list[str]:
        """Splits that hold images, in train/val/test order."""
        return [s for s in ("train", "val", "test") if self.report.images.get(s)]


# ---------------------------------------------------------------------------- zip import


def _safe_member(name: str) -> PurePosixPath:
    """The relative path of a zip entry, refusing anything that could leave the target."""
    clean = name.replace("\\", "/")
    path = PurePosixPath(clean)
    if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean) or ".." in path.parts:
        raise DatasetError(
            f"The zip contains an unsafe path '{name[:80]}' (absolute or with '..'); it was "
            "refused so nothing is written outside the data set folder."
        )
    return path


def extract_zip(zip_path: Path, target: Path, limits: ImportLimits | None = None) -> None:
    """Unpack ``zip_path`` into the new folder ``target`` safely (see module docstring).

    ``target`` is removed again on any failure.
    """
    limits = limits or ImportLimits.from_env()
    try:
        zf = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile:
        raise DatasetError(
            f"{Path(zip_path).name} is not a readable zip archive (broken or truncated)."
        ) from None
    except OSError as exc:
        raise DatasetError(f"Cannot open {Path(zip_path).name}: {exc.strerror or exc}") from exc
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir() and not _JUNK.search(m.filename)]
        if not members:
            raise DatasetError(f"{Path(zip_path).name} is empty.")
        if len(members) > limits.max_files:
            raise DatasetError(
                f"The zip holds {len(members)} files, more than the limit of "
                f"{limits.max_files} (GLOVEWATCH_DATASET_MAX_FILES)."
            )
        declared = sum(m.file_size for m in members)
        if declared > limits.max_bytes:
            raise DatasetError(
                f"The zip unpacks to {declared >> 20} MB, more than the limit "
                f"of {limits.max_bytes >> 20} MB (GLOVEWATCH_DATASET_MAX_MB)."
            )
        for m in members:
            _safe_member(m.filename)
            if stat.S_ISLNK(m.external_attr >> 16):
                raise DatasetError(
                    f"The zip contains a symbolic link '{m.filename[:80]}'; links are refused."
                )
            if m.file_size > limits.max_file_bytes:
                raise DatasetError(_too_big(m.filename, limits))
        target.parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(target.parent).free
        if declared * 1.1 > free:
            raise DatasetError(
                f"Not enough disk space: the data set needs {declared >> 20} MB, "
                f"{free >> 20} MB are free."
            )
        target.mkdir()
        try:
            _unpack(zf, members, target, limits)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise


def _too_big(name: str, limits: ImportLimits) -> str:
    return (
        f"'{name[:80]}' in the zip unpacks to more than {limits.max_file_bytes >> 20} MB "
        "(GLOVEWATCH_DATASET_MAX_FILE_MB); a data set holds images and label files."
    )


def _unpack(
    zf: zipfile.ZipFile, members: list[zipfile.ZipInfo], target: Path, limits: ImportLimits
) -> None:
    written = 0
    try:
        for m in members:
            dest = target.joinpath(*_safe_member(m.filename).parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            size = 0
            with zf.open(m) as src, open(dest, "wb") as out:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    size += len(chunk)
                    written += len(chunk)
                    if size > limits.max_file_bytes:
                        raise DatasetError(_too_big(m.filename, limits))
                    if written > limits.max_bytes:
                        raise DatasetError(
                            "The zip unpacks to more than its header says and "
                            f"beyond the {limits.max_bytes >> 20} MB limit."
                        )
                    out.write(chunk)
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"The zip is damaged ({exc}).") from exc
    except OSError as exc:
        raise DatasetError(f"Unpacking failed: {exc.strerror or exc} (disk full?).") from exc


# ---------------------------------------------------------------------------- validation


def _file_hash(path: Path) -> str:
    h = hashlib.sha1(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _relative(img: Path, entry: Path) -> str:
    return img.relative_to(entry).as_posix() if img.is_relative_to(entry) else img.name


def validate(layout: Layout) -> ValidationReport:
    """Check every image and label file of a data set and count instances per class."""
    rep = ValidationReport(names=layout.names)
    nc = len(layout.names)
    kinds: Counter[str] = Counter()
    seen: dict[str, tuple[str, str]] = {}  # hash -> (split, relative path)
    dups: set[tuple[str, str]] = set()
    for split, folders in layout.splits.items():
        counts: Counter[str] = Counter()
        n_images = 0
        for img_dir in folders:
            for img in images_in(img_dir):
                n_images += 1
                rel = f"{split}/{_relative(img, img_dir)}"
                digest = _file_hash(img)
                if digest in seen and seen[digest][0] != split:
                    dups.add((seen[digest][1], rel))
                seen.setdefault(digest, (split, rel))
                lab = label_path(img, img_dir)
                if not lab.exists():
                    rep.missing_labels.append(rel)
                    continue
                lines = read_label_file(lab)
                if not lines:
                    rep.empty_images.append(rel)
                    continue
                for n, _text, shape in lines:
                    where = f"{rel}:{n}"
                    if isinstance(shape, LabelLineError):
                        (rep.non_finite if "inf or nan" in str(shape) else rep.malformed).append(
                            where
                        )
                        continue
                    kinds["box" if shape.is_box else "polygon"] += 1
                    if not 0 <= shape.class_id < nc:
                        rep.bad_class_ids.append(f"{where} (class {shape.class_id})")
                        continue
                    if (shape.points < 0).any() or (shape.points > 1).any():
                        rep.out_of_range.append(where)
                    counts[layout.names[shape.class_id]] += 1
        rep.images[split] = n_images
        rep.instances[split] = {name: counts.get(name, 0) for name in layout.names}
    rep.duplicates = sorted(dups)
    rep.task = "segment" if kinds["polygon"] > kinds["box"] else "detect"
    rep.mixed_label_types = bool(kinds["polygon"] and kinds["box"])
    return rep


# ---------------------------------------------------------------------------- registry


def _dataset(rec: DatasetRecord) -> Dataset:
    return Dataset(
        id=rec.id,
        name=rec.name,
        yaml_path=Path(rec.path),
        task=rec.task,
        names=rec.names,
        report=ValidationReport.from_json(rec.report_json),
        created_at=rec.created_at,
    )


def register(store: Store, name: str, yaml_path: Path, report: ValidationReport) -> Dataset:
    """Record a validated data set in the store."""
    return _dataset(
        store.datasets.add(name, str(yaml_path), report.task, report.names, report.to_json())
    )


def import_dataset(
    store: Store,
    source: Path | str,
    name: str | None = None,
    limits: ImportLimits | None = None,
    by: str | None = None,
) -> Dataset:
    """Import a zip (unpacked into the data folder) or a folder (used in place) and register it.

    Raises :class:`DatasetError` for anything unusable, including a data set whose report has
    errors; a data set with only warnings is registered. A failed import leaves nothing behind.
    """
    source = Path(source).expanduser()
    if not source.exists():
        raise DatasetError(f"Not found: {source.name}")
    s = ensure_home()
    name = (name or (source.stem if source.is_file() else source.name)).strip()[:80]
    folder = s.datasets_dir / f"{slug(name, 60, 'dataset')}-{uuid.uuid4().hex[:8]}"
    try:
        if source.is_file() and source.suffix.lower() not in (".yaml", ".yml"):
            extract_zip(source, folder / "files", limits)
            layout = read_layout(folder / "files", within=folder / "files")
        else:
            base = source.parent if source.is_file() else source
            layout = read_layout(source, within=base.resolve())
        report = validate(layout)
        if report.errors:
            raise DatasetError(" ".join(report.errors))
        yaml_path = write_data_yaml(layout, folder / NORMALIZED_YAML)
        ds = register(store, name or "dataset", yaml_path, report)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    store.audit.add(by or "-", "dataset.import", ds.name, {"id": ds.id, "task": ds.task})
    return ds


def get_dataset(store: Store, ref: int | str) -> Dataset:
    """A registered data set by id or name (the newest with that name)."""
    rec = store.datasets.get(ref)
    if rec is None:
        raise DatasetError(f"No data set '{ref}' is registered.")
    return _dataset(rec)


def list_datasets(store: Store) -> list[Dataset]:
    """All registered data sets, newest first."""
    return [_dataset(r) for r in store.datasets.all()]


def resolve_data(store: Store, data: str | Path) -> Dataset:
    """A data set from what a user typed: a registered id/name, a data.yaml, a zip or a folder."""
    path = Path(data).expanduser()
    if path.exists():
        return import_dataset(store, path)
    return get_dataset(store, str(data))


# ---------------------------------------------------------------------------- samples


def draw_labels(image: np.ndarray, shapes: list[LabelShape], names: tuple[str, ...]) -> np.ndarray:
    """A copy of ``image`` with boxes or polygons and class names drawn (product colours)."""
    out = image.copy()
    h, w = out.shape[:2]
    thick = max(1, round(min(h, w) / 300))
    for s in shapes:
        pts = (s.points * [w, h]).astype(np.int32)
        label = names[s.class_id] if 0 <= s.class_id < len(names) else f"?{s.class_id}"
        colour = class_colour(label)
        if s.is_box:
            cv2.rectangle(
                out, tuple(int(v) for v in pts[0]), tuple(int(v) for v in pts[1]), colour, thick
            )
        else:
            cv2.polylines(out, [pts], True, colour, thick)
        x, y = int(pts[:, 0].min()), max(12, int(pts[:, 1].min()) - 4)
        cv2.putText(out, label, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick, colour, thick)
    return out


def sample_images(
    dataset: Dataset, n: int = 6, split: str = "train"
) -> list[tuple[str, np.ndarray]]:
    """Up to ``n`` images of a split with their labels drawn, spread over the split."""
    layout = read_layout(dataset.yaml_path)
    if split not in layout.splits:
        return []
    pairs = [(img, folder) for folder in layout.splits[split] for img in images_in(folder)]
    step = max(1, len(pairs) // max(n, 1))
    out = []
    for img_path, folder in pairs[::step][:n]:
        image = cv2.imread(str(img_path))
        if image is None:
            continue
        out.append(
            (
                img_path.name,
                draw_labels(image, read_labels(label_path(img_path, folder)), layout.names),
            )
        )
    return out


def class_count_rows(report: ValidationReport) -> list[tuple[str, str, int]]:
    """``(split, class, instances)`` rows of a report, for tables."""
    return [
        (split, name, n) for split, counts in report.instances.items() for name, n in counts.items()
    ]


def split_image_counts(report: ValidationReport) -> dict[str, int]:
    """Images per split, in train/val/test order."""
    order = {"train": 0, "val": 1, "test": 2}
    return dict(sorted(report.images.items(), key=lambda kv: order.get(kv[0], 9)))
