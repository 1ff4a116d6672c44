"""Data set import: Roboflow zips, safety limits, validation report, registration, samples."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import cv2
import pytest
import yaml

from core import datasets as dsm
from core.datasets import DatasetError, ImportLimits

SIX = ["Glove_Blue", "Glove_White", "glove_steel", "glove_steel_b", "hand", "head"]


def _polygon_lines(label: Path, shift: int) -> list[str]:
    """The gloves boxes as 8-point polygons, spread over the six classes."""
    out = []
    for n, line in enumerate(label.read_text().splitlines()):
        if not line.strip():
            continue
        _, x, y, w, h = (float(v) for v in line.split())
        pts = [(x, y - h / 2), (x + w / 2, y - h / 4), (x + w / 2, y + h / 4), (x, y + h / 2),
               (x - w / 2, y + h / 4), (x - w / 2, y - h / 4)]
        out.append(f"{(n + shift) % 6} " + " ".join(f"{v:.5f}" for p in pts for v in p))
    return out


def make_roboflow_zip(gloves: Path, target: Path, per_split: int = 3) -> Path:
    """A six-class segmentation export in Roboflow's layout, from real gloves images."""
    labels = sorted((gloves / "labels" / "train").glob("*.txt"))
    with zipfile.ZipFile(target, "w") as zf:
        i = 0
        for split in ("train", "valid", "test"):
            for _ in range(per_split):
                lab = labels[i]
                img = next((gloves / "images" / "train").glob(lab.stem + ".*"))
                zf.write(img, f"bandsaw/{split}/images/{img.name}")
                zf.writestr(f"bandsaw/{split}/labels/{lab.name}",
                            "\n".join(_polygon_lines(lab, i)) + "\n")
                i += 1
        zf.writestr("bandsaw/data.yaml", yaml.safe_dump({
            "train": "../train/images", "val": "../valid/images", "test": "../test/images",
            "nc": 6, "names": SIX}))
    return target


def test_import_six_class_segmentation_zip(store, gloves_dir, tmp_path):
    z = make_roboflow_zip(gloves_dir, tmp_path / "bandsaw_kolabira.zip")
    ds = dsm.import_dataset(store, z)
    assert ds.name == "bandsaw_kolabira"
    assert ds.task == "segment" and ds.names == tuple(SIX)
    assert ds.report.images == {"train": 3, "val": 3, "test": 3}
    assert ds.report.ok and ds.report.labelled_instances > 0
    assert set(ds.report.instances["train"]) == set(SIX)
    cfg = yaml.safe_load(ds.yaml_path.read_text())
    for key in ("path", "train", "val", "test"):
        assert Path(cfg[key]).is_absolute() and Path(cfg[key]).is_dir()
    assert cfg["names"] == dict(enumerate(SIX))
    # registered and readable back
    again = dsm.get_dataset(store, ds.id)
    assert again.report.instances == ds.report.instances
    assert [d.id for d in dsm.list_datasets(store)] == [ds.id]
    samples = dsm.sample_images(ds, 2)
    assert len(samples) == 2
    name, drawn = samples[0]
    raw = cv2.imread(str(Path(cfg["train"]) / name))
    assert drawn.shape == raw.shape and (drawn != raw).any()  # outlines were drawn


def test_broken_zip_has_clear_error(store, gloves_dir, tmp_path):
    good = make_roboflow_zip(gloves_dir, tmp_path / "good.zip")
    broken = tmp_path / "broken.zip"
    broken.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DatasetError, match="not a readable zip|damaged"):
        dsm.import_dataset(store, broken)
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"this is not a zip at all")
    with pytest.raises(DatasetError, match="not a readable zip"):
        dsm.import_dataset(store, junk)
    assert dsm.list_datasets(store) == []


def test_zip_with_path_escape_is_refused(store, gw_home, tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("data.yaml", "names: [a]\n")
        zf.writestr("../../escaped.txt", "gotcha")
    with pytest.raises(DatasetError, match="unsafe path"):
        dsm.import_dataset(store, evil)
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not any((gw_home / "datasets").iterdir())  # nothing half-imported left behind


def test_zip_limits(store, gloves_dir, tmp_path):
    z = make_roboflow_zip(gloves_dir, tmp_path / "big.zip")
    with pytest.raises(DatasetError, match="more than the limit of 5"):
        dsm.import_dataset(store, z, limits=ImportLimits(max_files=5))
    with pytest.raises(DatasetError, match="MB"):
        dsm.import_dataset(store, z, limits=ImportLimits(max_bytes=1000))


def test_validation_finds_problems(gloves_dir, tmp_path):
    root = tmp_path / "messy"
    src = sorted((gloves_dir / "images" / "train").glob("*.jpg"))[:6]
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
    names = ["glove", "hand"]
    (root / "data.yaml").write_text(yaml.safe_dump(
        {"path": ".", "train": "images/train", "val": "images/val", "names": names}))
    plan = {  # image -> (split, label text or None for a missing label file)
        0: ("train", "0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n"),
        1: ("train", None),
        2: ("train", ""),
        3: ("train", "0 1.4 0.5 0.2 0.2\n"),
        4: ("train", "7 0.5 0.5 0.2 0.2\nnot a label\n"),
        5: ("val", "1 0.5 0.5 0.2 0.2\n"),
    }
    for i, (split, text) in plan.items():
        shutil.copy(src[i], root / "images" / split / src[i].name)
        if text is not None:
            (root / "labels" / split / (src[i].stem + ".txt")).write_text(text)
    shutil.copy(src[0], root / "images" / "val" / "copy-of-first.jpg")  # duplicate across splits
    rep = dsm.validate(dsm.detect_layout(root))
    assert rep.images == {"train": 5, "val": 2}
    assert rep.missing_labels == ["train/" + src[1].name, "val/copy-of-first.jpg"]
    assert rep.empty_images == ["train/" + src[2].name]
    assert rep.out_of_range == [f"train/{src[3].name}:1"]
    assert rep.bad_class_ids == [f"train/{src[4].name}:1 (class 7)"]
    assert rep.malformed == [f"train/{src[4].name}:2"]
    assert rep.duplicates == [("train/" + src[0].name, "val/copy-of-first.jpg")]
    assert rep.instances["train"] == {"glove": 2, "hand": 1}
    assert rep.task == "detect" and rep.ok
    assert len(rep.warnings) == 6


def test_data_set_without_labels_is_refused(store, gloves_dir, tmp_path):
    root = tmp_path / "nolabels"
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        img = sorted((gloves_dir / "images" / "train").glob("*.jpg"))[0]
        shutil.copy(img, root / "images" / split / img.name)
    (root / "data.yaml").write_text("names: [glove, hand]\ntrain: images/train\nval: images/val\n")
    with pytest.raises(DatasetError, match="no labels"):
        dsm.import_dataset(store, root)


def test_missing_yaml_and_names(store, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="No data.yaml"):
        dsm.import_dataset(store, tmp_path / "empty")
    (tmp_path / "noname").mkdir()
    (tmp_path / "noname" / "data.yaml").write_text("train: images/train\n")
    with pytest.raises(DatasetError, match="names"):
        dsm.import_dataset(store, tmp_path / "noname")
