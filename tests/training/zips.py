"""Data set zips for the training tests, built from the 40-image fixture set: good Roboflow
exports, and hostile ones (alias bombs, zero-filled giants, escapes, links, lying headers)."""

from __future__ import annotations

import stat
import struct
import zipfile
from collections import Counter
from pathlib import Path

import yaml

from tests.conftest import MINI

SIX = ["Glove_Blue", "Glove_White", "glove_steel", "glove_steel_b", "hand", "head"]
ROBOFLOW_SPLITS = {"train": "train", "valid": "val", "test": "test"}


def mini_pairs(split: str) -> list[tuple[Path, Path]]:
    """(image, label file) pairs of a split of the fixture set."""
    return [
        (img, MINI / "labels" / split / f"{img.stem}.txt")
        for img in sorted((MINI / "images" / split).glob("*.jpg"))
    ]


def mini_instances(split: str) -> dict[str, int]:
    """Labelled boxes per class name in a split of the fixture set."""
    counts: Counter[str] = Counter()
    for _, lab in mini_pairs(split):
        for line in lab.read_text().splitlines():
            if line.strip():
                counts[("glove", "hand")[int(line.split()[0])]] += 1
    return {"glove": counts["glove"], "hand": counts["hand"]}


def roboflow_zip(target: Path, folder: str = "") -> Path:
    """The whole fixture set as Roboflow exports it: ``{train,valid,test}/{images,labels}``
    beside a data.yaml saying ``../train/images`` (Ultralytics reads that relative to the
    yaml's folder), optionally all inside ``folder``."""
    folder = folder.rstrip("/") + "/" if folder else ""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for rf_split, split in ROBOFLOW_SPLITS.items():
            for img, lab in mini_pairs(split):
                zf.write(img, f"{folder}{rf_split}/images/{img.name}")
                zf.write(lab, f"{folder}{rf_split}/labels/{lab.name}")
        zf.writestr(
            f"{folder}data.yaml",
            yaml.safe_dump(
                {
                    "train": "../train/images",
                    "val": "../valid/images",
                    "test": "../test/images",
                    "nc": 2,
                    "names": ["glove", "hand"],
                    "roboflow": {"workspace": "w", "project": "gloves", "version": 3},
                }
            ),
        )
        zf.writestr(f"{folder}README.roboflow.txt", "exported from roboflow\n")
        zf.writestr("__MACOSX/._data.yaml", "junk")
    return target


def _polygon_lines(label: Path, shift: int) -> list[str]:
    """The label's boxes as six-point polygons, spread over the six classes."""
    out = []
    for n, line in enumerate(label.read_text().splitlines()):
        if not line.strip():
            continue
        _, x, y, w, h = (float(v) for v in line.split())
        pts = [
            (x, y - h / 2),
            (x + w / 2, y - h / 4),
            (x + w / 2, y + h / 4),
            (x, y + h / 2),
            (x - w / 2, y + h / 4),
            (x - w / 2, y - h / 4),
        ]
        out.append(f"{(n + shift) % 6} " + " ".join(f"{v:.5f}" for p in pts for v in p))
    return out


def segmentation_zip(target: Path, per_split: int = 3) -> Path:
    """A six-class segmentation export in Roboflow's layout, from real fixture images."""
    pairs = mini_pairs("train")
    with zipfile.ZipFile(target, "w") as zf:
        i = 0
        for split in ("train", "valid", "test"):
            for _ in range(per_split):
                img, lab = pairs[i]
                zf.write(img, f"bandsaw/{split}/images/{img.name}")
                zf.writestr(
                    f"bandsaw/{split}/labels/{lab.name}", "\n".join(_polygon_lines(lab, i)) + "\n"
                )
                i += 1
        zf.writestr(
            "bandsaw/data.yaml",
            yaml.safe_dump(
                {
                    "train": "../train/images",
                    "val": "../valid/images",
                    "test": "../test/images",
                    "nc": 6,
                    "names": SIX,
                }
            ),
        )
    return target


def small_zip(
    target: Path, data_yaml: str, extra: dict[str, bytes] | None = None, n: int = 2
) -> Path:
    """A tiny detection zip (``n`` train and val images) with the given data.yaml text."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for split in ("train", "val"):
            for img, lab in mini_pairs(split)[:n]:
                zf.write(img, f"images/{split}/{img.name}")
                zf.write(lab, f"labels/{split}/{lab.name}")
        zf.writestr("data.yaml", data_yaml)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return target


GOOD_YAML = "path: .\ntrain: images/train\nval: images/val\nnames: [glove, hand]\n"

BILLION_LAUGHS = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
train: images/train
val: images/val
names: *i
"""


def symlink_zip(target: Path, link_to: str = "/etc/passwd") -> Path:
    """A zip whose member ``images/train/evil.jpg`` is a symbolic link."""
    small_zip(target, GOOD_YAML)
    with zipfile.ZipFile(target, "a") as zf:
        info = zipfile.ZipInfo("images/train/evil.jpg")
        info.create_system = 3  # Unix, so the mode bits count
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, link_to)
    return target


def zero_bomb_zip(target: Path, mb: int = 5) -> Path:
    """A zip whose ``images/train/huge.jpg`` unpacks to ``mb`` MB of zeros (a few KB packed)."""
    small_zip(target, GOOD_YAML, {"images/train/huge.jpg": b"\x00" * (mb << 20)})
    return target


def lie_about_size(zip_path: Path, member: str, declared: int) -> None:
    """Rewrite ``member``'s uncompressed size in both of the zip's headers to ``declared``."""
    data = bytearray(zip_path.read_bytes())
    with zipfile.ZipFile(zip_path) as zf:
        info = zf.getinfo(member)
    struct.pack_into("<I", data, info.header_offset + 22, declared)  # local file header
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:  # central directory entries
        name_len = struct.unpack_from("<H", data, pos + 28)[0]
        if data[pos + 46 : pos + 46 + name_len].decode() == member:
            struct.pack_into("<I", data, pos + 24, declared)
        pos = data.find(b"PK\x01\x02", pos + 46)
    zip_path.write_bytes(bytes(data))
