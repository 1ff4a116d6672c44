"""Wide-view evaluation sets and the 'wide' training recipe, made from the fixture images;
tiled evaluation on them."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import cv2
import pytest
import yaml

from core.errors import DatasetError
from core.training.recipes import RECIPES
from core.training.wideview import CompositeSpec, build_wideview
from core.vision.yolo_data import read_images_dir, read_split
from tests.conftest import MINI, ROOT


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "data.yaml"
    }


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = build_wideview(MINI, tmp_path / "a", n=2, seed=7)
    build_wideview(MINI, tmp_path / "b", n=2, seed=7)
    build_wideview(MINI, tmp_path / "c", n=2, seed=8)
    assert a.composites.images == 2 and a.composites.boxes > 0
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _files(tmp_path / "a") != _files(tmp_path / "c")


def test_canvases_are_1080p_and_boxes_small_and_inside(tmp_path):
    wv = build_wideview(MINI, tmp_path / "wv", n=2, seed=1)
    spec = CompositeSpec()
    items = read_images_dir(tmp_path / "wv" / "images" / "test")
    assert len(items) == 2
    for item in items:
        assert cv2.imread(str(item.image)).shape == (spec.height, spec.width, 3)
        assert item.boxes
        for b in item.boxes:
            assert b.cx - b.w / 2 >= 0 and b.cx + b.w / 2 <= 1 + 1e-6
            assert b.cy - b.h / 2 >= 0 and b.cy + b.h / 2 <= 1 + 1e-6
            # shrunk to 1/6..1/3 of a <= 640 px image: small on the canvas
            assert b.w * spec.width <= 640 / 3 + 1 and b.h * spec.height <= 640 / 3 + 1
    cfg = yaml.safe_load(wv.data_yaml.read_text())
    assert Path(cfg["path"]).is_absolute() and cfg["test"] == "images/test"
    assert cfg["names"] == {0: "glove", 1: "hand"}


def test_uses_the_test_split_only(tmp_path):
    wv = build_wideview(MINI, tmp_path / "wv", seed=0)
    test_images = {it.image for it in read_split(MINI, "test")}
    assert len(test_images) == 22
    assert set(wv.composites.sources) == test_images  # default n: every test image, no other
    assert wv.composites.images == math.ceil(22 / CompositeSpec().per_canvas)
    train_and_val = {
        p.name for split in ("train", "val") for p in (MINI / "images" / split).glob("*.jpg")
    }
    assert not {p.name for p in wv.composites.sources} & train_and_val


def test_cli_wideview_json(gw_home, tmp_path, capfd):
    from core.cli import main

    assert (
        main(
            [
                "wideview",
                "--out",
                str(tmp_path / "wv"),
                "--n",
                "1",
                "--seed",
                "3",
                "--dataset",
                str(MINI),
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capfd.readouterr().out.strip().splitlines()[-1])
    assert out["images"] == 1 and Path(out["data"]).is_file() and out["boxes"] > 0


def test_cli_wideview_bad_dataset_is_a_clear_error(gw_home, tmp_path, capfd):
    from core.cli import main

    assert (
        main(["wideview", "--out", str(tmp_path / "wv"), "--dataset", str(tmp_path / "nope")]) == 2
    )
    err = capfd.readouterr().err
    assert "not found" in err and "Traceback" not in err


def test_split_without_images_is_a_clear_error(tmp_path):
    (tmp_path / "images" / "test").mkdir(parents=True)
    (tmp_path / "data.yaml").write_text("path: .\ntest: images/test\nnames: [glove, hand]\n")
    with pytest.raises(DatasetError, match="no images"):
        read_split(tmp_path, "test")
    with pytest.raises(DatasetError, match="no images"):
        build_wideview(tmp_path, tmp_path / "out")


def _six_train_images(root: Path) -> Path:
    """A copy of 6 train and 3 val fixture images with labels."""
    for split, n in (("train", 6), ("val", 3)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for img in sorted((MINI / "images" / split).glob("*.jpg"))[:n]:
            shutil.copy(img, root / "images" / split / img.name)
            shutil.copy(MINI / "labels" / split / f"{img.stem}.txt", root / "labels" / split)
    data = root / "data.yaml"
    data.write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames:\n  0: glove\n  1: hand\n"
    )
    return data


def test_wide_recipe_adds_train_composites_only(tmp_path):
    data = _six_train_images(tmp_path / "ds")
    out = RECIPES["wide"].prepare(data, tmp_path / "recipe")
    cfg = yaml.safe_load(out.read_text())
    train = [Path(p) for p in cfg["train"]]
    assert train[0] == (tmp_path / "ds" / "images" / "train").resolve()
    composites = read_images_dir(train[1])
    assert len(composites) == 2  # 6 train images, 4 per canvas
    assert all(item.boxes for item in composites)
    assert Path(cfg["val"]) == (tmp_path / "ds" / "images" / "val").resolve()
    assert RECIPES["wide"].train_overrides["scale"] > 0.5  # Ultralytics' default is 0.5
    assert RECIPES["default"].prepare(data, tmp_path / "x") == data


def test_wide_recipe_needs_train_image_folders(tmp_path):
    data = tmp_path / "data.yaml"
    data.write_text("path: .\ntrain: train.txt\nval: train.txt\nnames: [glove, hand]\n")
    with pytest.raises(DatasetError, match="'train'"):
        RECIPES["wide"].prepare(data, tmp_path / "out")


@pytest.mark.slow
def test_tiled_evaluation_beats_full_frame_on_wide_views(tmp_path):
    """The close-up model misses small hands in 1080p views at 640; 640 px tiles find them."""
    from core.vision.evaluate import evaluate
    from core.vision.tiling import TileSpec

    close_up = ROOT / "weights" / "gloves-yolo11n.pt"
    wv = build_wideview(MINI, tmp_path / "wv", n=2, seed=0)
    full = evaluate(close_up, wv.data_yaml, split="test", imgsz=640, tiles=None)
    tiled = evaluate(close_up, wv.data_yaml, split="test", imgsz=640, tiles=TileSpec())
    assert full.images == tiled.images == 2
    assert tiled.tiles == "640:0.25:nms:full" and full.tiles is None
    assert tiled.map50 > full.map50
    assert set(tiled.per_class_ap50) <= {"glove", "hand"}


def test_cli_evaluate_tiled_rejects_bad_tiles(gw_home, capfd):
    from core.cli import main

    with pytest.raises(SystemExit) as caught:
        main(["evaluate-tiled", "--data", str(MINI / "data.yaml"), "--tiles", "640:1.5"])
    assert caught.value.code == 2
    assert "overlap" in capfd.readouterr().err
