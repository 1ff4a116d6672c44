"""Data set import: Roboflow zips, hostile zips refused (leaving nothing behind), validation
reports, registration and samples."""

from __future__ import annotations

import shutil
import time
import zipfile
from pathlib import Path

import cv2
import pytest
import yaml

from core.errors import DatasetError
from core.training import datasets as dsm
from core.training.datasets import ImportLimits
from core.vision.yolo_data import read_layout
from tests.conftest import MINI
from tests.training.zips import (
    BILLION_LAUGHS,
    GOOD_YAML,
    SIX,
    lie_about_size,
    mini_instances,
    roboflow_zip,
    segmentation_zip,
    small_zip,
    symlink_zip,
    zero_bomb_zip,
)


def _nothing_left(gw_home: Path) -> None:
    """A refused import leaves no folder under <home>/datasets and registers nothing."""
    folder = gw_home / "datasets"
    assert not folder.exists() or not any(folder.iterdir()), list(folder.iterdir())


def _refused(store, gw_home: Path, source: Path, match: str, **kw) -> DatasetError:
    with pytest.raises(DatasetError, match=match) as caught:
        dsm.import_dataset(store, source, **kw)
    _nothing_left(gw_home)
    assert dsm.list_datasets(store) == []
    return caught.value


# ---------------------------------------------------------------------------- good imports


@pytest.mark.parametrize("folder", ["", "gloves-v3"], ids=["at-root", "in-a-folder"])
def test_roboflow_zip_imports_with_the_right_counts(store, tmp_path, folder):
    z = roboflow_zip(tmp_path / "gloves_roboflow.zip", folder)
    ds = dsm.import_dataset(store, z)
    assert ds.name == "gloves_roboflow" and ds.task == "detect"
    assert ds.names == ("glove", "hand")
    assert ds.report.images == {"train": 12, "val": 6, "test": 22}
    assert ds.splits == ["train", "val", "test"]
    for split in ("train", "val", "test"):
        assert ds.report.instances[split] == mini_instances(split)
    assert ds.report.ok and not ds.report.missing_labels and not ds.report.malformed
    assert len(ds.report.out_of_range) == 1  # one real label of the set pokes past the edge
    cfg = yaml.safe_load(ds.yaml_path.read_text())
    for key in ("path", "train", "val", "test"):  # absolute: Ultralytics reads them as is
        assert Path(cfg[key]).is_absolute() and Path(cfg[key]).is_dir()
    assert Path(cfg["train"]).is_relative_to(ds.yaml_path.parent)
    assert cfg["names"] == {0: "glove", 1: "hand"}
    assert [d.id for d in dsm.list_datasets(store)] == [ds.id]
    assert dsm.get_dataset(store, "gloves_roboflow").id == ds.id
    assert dsm.split_image_counts(ds.report) == {"train": 12, "val": 6, "test": 22}


def test_six_class_segmentation_zip_imports_as_segment(store, tmp_path):
    z = segmentation_zip(tmp_path / "bandsaw_kolabira.zip")
    ds = dsm.import_dataset(store, z)
    assert ds.name == "bandsaw_kolabira"
    assert ds.task == "segment" and ds.names == tuple(SIX)
    assert ds.report.images == {"train": 3, "val": 3, "test": 3}
    assert ds.report.ok and ds.report.labelled_instances > 0
    assert set(ds.report.instances["train"]) == set(SIX)
    cfg = yaml.safe_load(ds.yaml_path.read_text())
    assert cfg["names"] == dict(enumerate(SIX))
    again = dsm.get_dataset(store, ds.id)
    assert again.report.instances == ds.report.instances and again.task == "segment"
    samples = dsm.sample_images(ds, 2)
    assert len(samples) == 2
    name, drawn = samples[0]
    raw = cv2.imread(str(Path(cfg["train"]) / name))
    assert drawn.shape == raw.shape and (drawn != raw).any()  # outlines were drawn


def test_folder_imports_in_place(store, gw_home, tiny_gloves):
    ds = dsm.import_dataset(store, tiny_gloves, name="tiny")
    assert ds.report.images == {"train": 12, "val": 6, "test": 22}
    cfg = yaml.safe_load(ds.yaml_path.read_text())
    assert Path(cfg["train"]) == (tiny_gloves / "images" / "train").resolve()
    assert ds.yaml_path.is_relative_to(gw_home / "datasets")  # only the yaml is written
    assert dsm.resolve_data(store, "tiny").id == ds.id


# ---------------------------------------------------------------------------- hostile zips


def test_billion_laughs_yaml_is_refused_quickly(store, gw_home, tmp_path):
    z = small_zip(tmp_path / "laughs.zip", BILLION_LAUGHS)
    start = time.monotonic()
    _refused(store, gw_home, z, "aliases")
    assert time.monotonic() - start < 10  # refused while parsing, never expanded


def test_zero_filled_giant_is_refused(store, gw_home, tmp_path, monkeypatch):
    monkeypatch.setenv("GLOVEWATCH_DATASET_MAX_FILE_MB", "1")
    z = zero_bomb_zip(tmp_path / "zeros.zip", mb=5)
    assert z.stat().st_size < 200_000  # 5 MB of zeros pack into a few KB
    err = _refused(store, gw_home, z, "GLOVEWATCH_DATASET_MAX_FILE_MB")
    assert "huge.jpg" in str(err)


def test_zip_whose_header_understates_a_size_is_refused(store, gw_home, tmp_path, monkeypatch):
    """The sizes a zip declares can lie: unpacking is what counts."""
    monkeypatch.setenv("GLOVEWATCH_DATASET_MAX_FILE_MB", "1")
    z = zero_bomb_zip(tmp_path / "liar.zip", mb=5)
    lie_about_size(z, "images/train/huge.jpg", 1000)
    with zipfile.ZipFile(z) as zf:
        assert zf.getinfo("images/train/huge.jpg").file_size == 1000
    _refused(store, gw_home, z, "damaged|GLOVEWATCH_DATASET_MAX_FILE_MB")


@pytest.mark.parametrize(
    "data_yaml",
    [
        "train: /etc\nval: images/val\nnames: [glove, hand]\n",
        "path: ../../etc\ntrain: images/train\nval: images/val\nnames: [glove, hand]\n",
        "train: ../../../../etc\nval: images/val\nnames: [glove, hand]\n",
        "train: [images/train, /usr/share]\nval: images/val\nnames: [glove, hand]\n",
    ],
    ids=["absolute-train", "path-up", "train-up", "list-entry"],
)
def test_yaml_pointing_outside_the_data_set_is_refused(store, gw_home, tmp_path, data_yaml):
    z = small_zip(tmp_path / "escape.zip", data_yaml)
    _refused(store, gw_home, z, "points outside the data set folder")


def test_folder_whose_yaml_points_elsewhere_is_refused(store, gw_home, tmp_path):
    root = tmp_path / "sneaky"
    shutil.copytree(MINI, root)
    (root / "data.yaml").write_text("path: /etc\ntrain: .\nval: .\nnames: [glove, hand]\n")
    _refused(store, gw_home, root, "points outside")


@pytest.mark.parametrize(
    "member",
    ["../../escaped.txt", "/abs/escaped.txt", "images/../../escaped.txt", "C:/escaped.txt"],
)
def test_zip_path_escapes_are_refused(store, gw_home, tmp_path, member):
    z = small_zip(tmp_path / "evil.zip", GOOD_YAML, {member: b"gotcha"})
    _refused(store, gw_home, z, "unsafe path")
    assert not list(tmp_path.parent.rglob("escaped.txt"))
    assert not list(gw_home.rglob("escaped.txt"))


def test_zip_symlinks_are_refused(store, gw_home, tmp_path):
    z = symlink_zip(tmp_path / "links.zip")
    _refused(store, gw_home, z, "symbolic link")


def test_non_finite_label_values_are_errors_and_refused(store, gw_home, tmp_path):
    img = sorted((MINI / "images" / "train").glob("*.jpg"))[0]
    z = small_zip(
        tmp_path / "nan.zip",
        GOOD_YAML,
        {
            f"images/train/x-{img.name}": img.read_bytes(),
            f"labels/train/x-{img.stem}.txt": b"0 inf 0.5 0.2 0.2\n1 0.5 nan 0.1 0.1\n",
        },
    )
    err = _refused(store, gw_home, z, "not finite numbers")
    assert f"x-{img.name}" in str(err)

    extracted = tmp_path / "nan"
    with zipfile.ZipFile(z) as zf:
        zf.extractall(extracted)
    rep = dsm.validate(read_layout(extracted))
    assert rep.non_finite == [f"train/x-{img.name}:1", f"train/x-{img.name}:2"]
    assert not rep.ok and any("inf or nan" in e for e in rep.errors)


def test_broken_zips_have_clear_errors(store, gw_home, tmp_path):
    good = roboflow_zip(tmp_path / "good.zip")
    broken = tmp_path / "broken.zip"
    broken.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    _refused(store, gw_home, broken, "not a readable zip|damaged")
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"this is not a zip at all")
    _refused(store, gw_home, junk, "not a readable zip")
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("__MACOSX/._x", "junk only")
    _refused(store, gw_home, empty, "empty")


def test_zip_limits(store, gw_home, tmp_path):
    z = roboflow_zip(tmp_path / "big.zip")
    _refused(store, gw_home, z, "more than the limit of 5", limits=ImportLimits(max_files=5))
    _refused(store, gw_home, z, "MB", limits=ImportLimits(max_bytes=1000))


# ---------------------------------------------------------------------------- validation


def test_validation_finds_problems(tmp_path):
    root = tmp_path / "messy"
    src = sorted((MINI / "images" / "train").glob("*.jpg"))[:6]
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
    (root / "data.yaml").write_text(
        yaml.safe_dump(
            {"path": ".", "train": "images/train", "val": "images/val", "names": ["glove", "hand"]}
        )
    )
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
    rep = dsm.validate(read_layout(root))
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
    assert dsm.ValidationReport.from_json(rep.to_json()) == rep


def test_data_set_without_labels_is_refused(store, gw_home, tmp_path):
    root = tmp_path / "nolabels"
    img = sorted((MINI / "images" / "train").glob("*.jpg"))[0]
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        shutil.copy(img, root / "images" / split / img.name)
    (root / "data.yaml").write_text("names: [glove, hand]\ntrain: images/train\nval: images/val\n")
    _refused(store, gw_home, root, "no labels")


def test_missing_yaml_or_names_are_refused_unnamed_splits_are_found(store, gw_home, tmp_path):
    (tmp_path / "empty").mkdir()
    _refused(store, gw_home, tmp_path / "empty", "No data.yaml")
    (tmp_path / "noname").mkdir()
    (tmp_path / "noname" / "data.yaml").write_text("train: images/train\n")
    _refused(store, gw_home, tmp_path / "noname", "names")
    z = small_zip(tmp_path / "noval.zip", "train: images/train\nnames: [glove, hand]\n")
    with zipfile.ZipFile(z) as zf:  # a val split the yaml does not name is still found
        assert any(n.startswith("images/val/") for n in zf.namelist())
    ds = dsm.import_dataset(store, z)
    assert ds.report.images == {"train": 2, "val": 2}


def test_problems_list_the_files_behind_each_warning():
    rep = dsm.ValidationReport(missing_labels=["a.jpg"], duplicates=[("t/x.jpg", "v/x.jpg")])
    assert rep.problems["Missing labels"] == ["a.jpg"]
    assert rep.problems["Duplicates across splits"] == ["t/x.jpg = v/x.jpg"]
    others = set(rep.problems) - {"Missing labels", "Duplicates across splits"}
    assert not any(rep.problems[k] for k in others)
