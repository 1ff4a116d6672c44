"""Reading YOLO data sets defensively: data.yaml, split folders and label lines."""

from __future__ import annotations

import shutil
import time
import tracemalloc
from pathlib import Path

import pytest

from core.errors import DatasetError
from core.vision.yolo_data import (
    MAX_YAML_BYTES,
    LabelLineError,
    labels_dir,
    load_yaml,
    parse_label_line,
    read_images_dir,
    read_layout,
    read_split,
    write_data_yaml,
)

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
names: *i
train: images/train
"""


def _dataset(root: Path, yaml_text: str, splits=("train",)) -> Path:
    for split in splits:
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text(yaml_text)
    return root / "data.yaml"


def test_mini_layout_and_split(mini):
    layout = read_layout(mini)
    assert layout.names == ("glove", "hand")
    assert layout.yaml_path == (mini / "data.yaml").resolve()
    assert set(layout.splits) == {"train", "val", "test"}
    assert len(layout.images("test")) == 22
    items = read_split(mini / "data.yaml", "test")
    assert len(items) == 22 and all(it.boxes for it in items)
    box = items[0].boxes[0]
    assert box.class_id in (0, 1) and 0 < box.w <= 1 and 0 < box.h <= 1
    x1, y1, x2, y2 = box.xyxy(640, 480)
    assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480


def test_missing_split_names_the_splits_that_exist(tmp_path):
    data = _dataset(
        tmp_path / "ds",
        "path: .\ntrain: images/train\nval: images/val\nnames: [glove, hand]\n",
        splits=("train", "val"),
    )
    layout = read_layout(data)
    with pytest.raises(DatasetError, match=r"no 'test' split \(it has: train, val\)"):
        layout.folders("test")


def test_roboflow_layout_is_found_from_folders(tmp_path):
    root = tmp_path / "export"
    for split in ("train", "valid", "test"):
        (root / split / "images").mkdir(parents=True)
    (root / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\nnc: 2\nnames: ['Glove', 'no_glove']\n"
    )
    layout = read_layout(root)
    assert layout.names == ("Glove", "no_glove")
    assert layout.splits["val"] == [(root / "valid" / "images").resolve()]
    assert layout.splits["test"] == [(root / "test" / "images").resolve()]


def test_labels_live_beside_the_last_images_folder():
    assert labels_dir(Path("/d/images/train")) == Path("/d/labels/train")
    assert labels_dir(Path("/images/x/images/val")) == Path("/images/x/labels/val")
    assert labels_dir(Path("/d/pics")) == Path("/d/pics")


def test_write_data_yaml_round_trips_with_absolute_paths(mini, tmp_path):
    layout = read_layout(mini)
    out = write_data_yaml(layout, tmp_path / "copy" / "data.yaml")
    text = out.read_text()
    assert text.startswith("#") and str(mini.resolve()) in text
    again = read_layout(out)
    assert again.names == layout.names and again.splits == layout.splits


def test_billion_laughs_is_refused_fast_without_expanding(tmp_path):
    data = _dataset(tmp_path / "ds", BILLION_LAUGHS)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(DatasetError, match="aliases"):
            read_layout(data)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 2.0
    assert peak < 20 << 20  # the 387-million-item list was never built


def test_a_single_alias_is_refused_too(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text("base: &n [glove, hand]\nnames: *n\n")
    with pytest.raises(DatasetError, match="aliases"):
        load_yaml(path)


def test_oversized_yaml_is_refused_before_parsing(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text("names: [glove, hand]\n" + "# padding\n" * (MAX_YAML_BYTES // 10 + 1))
    assert path.stat().st_size > MAX_YAML_BYTES
    with pytest.raises(DatasetError, match="KB; a data set file is a few lines"):
        load_yaml(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("names: [glove, hand\n", "not valid YAML"),
        ("- just\n- a list\n", "not a YOLO data set description"),
        ("train: images/train\n", "no class 'names'"),
        ("names: []\n", "empty 'names'"),
        ("names: {0: glove, 2: hand}\n", "class ids 0..n-1"),
        ("names: [glove, {nested: x}]\n", "plain text"),
        (f"names: [{'x' * 101}]\n", "1-100 characters"),
    ],
)
def test_bad_data_yaml_is_one_clear_error(tmp_path, text, message):
    data = _dataset(tmp_path / "ds", text)
    with pytest.raises(DatasetError, match=message) as err:
        read_layout(data)
    assert "\n" not in str(err.value)


def test_missing_data_set(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        read_layout(tmp_path / "none.yaml")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"No data\.yaml"):
        read_layout(tmp_path / "empty")


def test_within_refuses_an_absolute_split_outside(tmp_path):
    data = _dataset(tmp_path / "ds", "path: .\ntrain: /etc\nnames: [glove]\n")
    with pytest.raises(DatasetError, match="'train' points outside the data set folder"):
        read_layout(data, within=tmp_path / "ds")
    # without ``within`` (a local path the user typed) it is read as given
    assert read_layout(data).splits["train"] == [Path("/etc").resolve()]


def test_within_refuses_a_path_climbing_out(tmp_path):
    data = _dataset(
        tmp_path / "a" / "b" / "ds", "path: ../../etc\ntrain: images/train\nnames: [glove]\n"
    )
    with pytest.raises(DatasetError, match="'path' points outside"):
        read_layout(data, within=tmp_path / "a" / "b" / "ds")


def test_within_refuses_a_relative_split_climbing_out(tmp_path):
    (tmp_path / "secret").mkdir()
    data = _dataset(tmp_path / "ds", "path: .\ntrain: ../secret\nnames: [glove]\n")
    with pytest.raises(DatasetError, match="'train' points outside"):
        read_layout(data, within=tmp_path / "ds")


def test_within_accepts_paths_inside(tmp_path):
    data = _dataset(tmp_path / "ds", "path: .\ntrain: images/train\nnames: [glove]\n")
    layout = read_layout(data, within=tmp_path / "ds")
    assert layout.splits["train"] == [(tmp_path / "ds" / "images" / "train").resolve()]


@pytest.mark.parametrize(
    "line",
    [
        "0 inf 0.5 0.1 0.1",
        "0 0.5 nan 0.1 0.1",
        "nan 0.5 0.5 0.1 0.1",
        "0 0.5 0.5 -inf 0.1",
        "0 0.5 0.5 0.1 Infinity",
    ],
)
def test_inf_and_nan_label_values_are_errors(line):
    with pytest.raises(LabelLineError, match="inf or nan"):
        parse_label_line(line)


@pytest.mark.parametrize(
    "line, message",
    [
        ("0 0.5 0.5 0.1", "fewer than 5"),
        ("a 0.5 0.5 0.1 0.1", "not numbers"),
        ("1.5 0.5 0.5 0.1 0.1", "whole number"),
        ("-1 0.5 0.5 0.1 0.1", "whole number"),
        ("0 0.1 0.1 0.2 0.2 0.3", "neither 4 box values"),
    ],
)
def test_malformed_label_lines(line, message):
    with pytest.raises(LabelLineError, match=message):
        parse_label_line(line)


def test_box_and_polygon_lines():
    box = parse_label_line("1 0.5 0.5 0.2 0.4")
    assert box.is_box and box.class_id == 1
    b = box.to_box()
    assert (b.cx, b.cy) == pytest.approx((0.5, 0.5)) and (b.w, b.h) == pytest.approx((0.2, 0.4))
    poly = parse_label_line("0 0.1 0.1 0.5 0.1 0.3 0.6")
    assert not poly.is_box and poly.points.shape == (3, 2)
    pb = poly.to_box()
    assert (pb.w, pb.h) == pytest.approx((0.4, 0.5))


def test_a_bad_label_line_names_file_and_line(tmp_path):
    root = tmp_path / "ds"
    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    shutil.copy(
        next(
            (Path(__file__).parents[1] / "fixtures" / "gloves-mini" / "images" / "train").glob(
                "*.jpg"
            )
        ),
        root / "images" / "train" / "a.jpg",
    )
    (root / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.1 0.1\n\n1 nan 0.5 0.1 0.1\n")
    with pytest.raises(DatasetError, match=r"a.txt:3: not a YOLO label line \(inf or nan"):
        read_images_dir(root / "images" / "train")
