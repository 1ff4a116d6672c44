"""Wide-view test set generator and the 'wide' training recipe (real data set images)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest
import yaml

from core.recipes import RECIPES, RecipeError
from core.wideview import (CompositeSpec, WideViewError, build_wideview, read_boxes,
                           read_split)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "data.yaml"}


def test_same_seed_same_bytes_other_seed_differs(gloves_dir, tmp_path):
    a = build_wideview(gloves_dir, tmp_path / "a", n=2, seed=7)
    b = build_wideview(gloves_dir, tmp_path / "b", n=2, seed=7)
    c = build_wideview(gloves_dir, tmp_path / "c", n=2, seed=8)
    assert a.composites.images == 2
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _files(tmp_path / "a") != _files(tmp_path / "c")
    assert a.composites.boxes > 0


def test_canvases_are_1080p_and_boxes_inside(gloves_dir, tmp_path):
    wv = build_wideview(gloves_dir, tmp_path / "wv", n=3, seed=1)
    spec = CompositeSpec()
    for img in sorted((tmp_path / "wv" / "images" / "test").glob("*.jpg")):
        assert cv2.imread(str(img)).shape == (spec.height, spec.width, 3)
        boxes = read_boxes(tmp_path / "wv" / "labels" / "test" / f"{img.stem}.txt")
        for b in boxes:
            assert 0 <= b.cx - b.w / 2 and b.cx + b.w / 2 <= 1 + 1e-6
            assert 0 <= b.cy - b.h / 2 and b.cy + b.h / 2 <= 1 + 1e-6
            # shrunk to 1/3..1/6 of a <= 640 px image: small on the canvas
            assert b.w * spec.width <= 640 / 3 + 1 and b.h * spec.height <= 640 / 3 + 1
    cfg = yaml.safe_load(wv.data_yaml.read_text())
    assert Path(cfg["path"]).is_absolute() and cfg["test"] == "images/test"
    assert cfg["names"] == {0: "glove", 1: "hand"}


def test_uses_the_test_split_only(gloves_dir, tmp_path):
    wv = build_wideview(gloves_dir, tmp_path / "wv", seed=0)
    test_images = {it.image for it in read_split(gloves_dir, "test")}
    assert set(wv.composites.sources) == test_images  # default n: every test image, no other
    assert wv.composites.images == -(-len(test_images) // CompositeSpec().per_canvas)


def test_cli_wideview_json(gloves_dir, tmp_path, capfd):
    from core.cli import main

    assert main(["wideview", "--out", str(tmp_path / "wv"), "--n", "1", "--seed", "3",
                 "--dataset", str(gloves_dir), "--json"]) == 0
    out = json.loads(capfd.readouterr().out.strip().splitlines()[-1])
    assert out["images"] == 1 and Path(out["data"]).is_file()


def test_cli_wideview_bad_dataset_is_a_clear_error(tmp_path, capfd):
    from core.cli import main

    assert main(["wideview", "--out", str(tmp_path / "wv"), "--dataset",
                 str(tmp_path / "nope")]) == 2
    assert "not found" in capfd.readouterr().err


def test_split_without_images_is_a_clear_error(tmp_path):
    (tmp_path / "images" / "test").mkdir(parents=True)
    with pytest.raises(WideViewError, match="no images"):
        read_split(tmp_path, "test")


def _tiny_dataset(gloves_dir: Path, root: Path, n: int = 6) -> Path:
    """A copy of a few train and val images of the gloves data set."""
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for img in sorted((gloves_dir / "images" / split).iterdir())[:n]:
            shutil.copy(img, root / "images" / split / img.name)
            lab = gloves_dir / "labels" / split / f"{img.stem}.txt"
            if lab.exists():
                shutil.copy(lab, root / "labels" / split / lab.name)
    data = root / "data.yaml"
    data.write_text("path: .\ntrain: images/train\nval: images/val\n"
                    "names:\n  0: glove\n  1: hand\n")
    return data


def test_wide_recipe_adds_train_composites_only(gloves_dir, tmp_path):
    data = _tiny_dataset(gloves_dir, tmp_path / "ds")
    out = RECIPES["wide"].prepare(data, tmp_path / "recipe")
    cfg = yaml.safe_load(out.read_text())
    train = [Path(p) for p in cfg["train"]]
    assert train[0] == (tmp_path / "ds" / "images" / "train").resolve()
    composites = sorted(train[1].glob("*.jpg"))
    assert len(composites) == 2  # 6 train images, 4 per canvas
    assert Path(cfg["val"]) == (tmp_path / "ds" / "images" / "val").resolve()
    labels = [train[1].parent.parent / "labels" / "train" / f"{p.stem}.txt" for p in composites]
    assert all(read_boxes(lab) for lab in labels)
    assert RECIPES["wide"].train_overrides["scale"] > 0.5  # default Ultralytics scale is 0.5
    assert RECIPES["default"].prepare(data, tmp_path / "x") == data


def test_wide_recipe_rejects_a_list_file(tmp_path):
    data = tmp_path / "data.yaml"
    data.write_text("path: .\ntrain: train.txt\nval: train.txt\nnames: [glove, hand]\n")
    with pytest.raises(RecipeError, match="train image folders"):
        RECIPES["wide"].prepare(data, tmp_path / "out")
