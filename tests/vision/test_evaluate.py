"""Scoring a model on a data set split: mAP, per-class AP and a confusion matrix."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from core.errors import DatasetError
from core.vision.evaluate import (
    AGNOSTIC_NAME,
    confusion_update,
    evaluate,
    hand_recall,
    match_predictions,
)
from core.vision.tiling import TileSpec
from core.vision.yolo_data import read_split


@pytest.fixture(scope="module")
def mini_copy(tmp_path_factory, mini):
    """The fixture set copied out of the repository (Ultralytics' validator writes label
    caches next to the labels it reads)."""
    root = tmp_path_factory.mktemp("eval") / "mini"
    shutil.copytree(mini, root)
    return root


def _true_boxes_per_class(data, split: str) -> list[int]:
    counts = [0, 0]
    for item in read_split(data, split):
        for b in item.boxes:
            counts[b.class_id] += 1
    return counts


def _check_plausible(res, data, split: str, images: int) -> None:
    assert res.images == images and res.split == split
    assert set(res.per_class_ap50) == {"glove", "hand"}
    assert res.map50 > 0.5, res.per_class_ap50
    assert 0 < res.map50_95 <= res.map50 <= 1
    assert res.map50 == pytest.approx(np.mean(list(res.per_class_ap50.values())))
    assert res.confusion_labels == ["glove", "hand", "background"]
    m = np.array(res.confusion)
    assert m.shape == (3, 3) and m.any()
    assert m[0, 0] > 0 and m[1, 1] > 0  # both classes are mostly found as themselves
    assert m[0, 0] + m[1, 1] > m[:2, :2].sum() - m[0, 0] - m[1, 1]
    # every labelled box is counted once in its class's column: found or missed
    assert list(m[:, :2].sum(0)) == _true_boxes_per_class(data, split)
    assert m[2, 2] == 0
    assert res.ms_per_image > 0
    assert res.as_dict()["map50"] == res.map50


@pytest.mark.slow
def test_full_frame_evaluation_on_the_fixture_set(default_weights, mini_copy):
    res = evaluate(default_weights, mini_copy, split="test")
    _check_plausible(res, mini_copy, "test", 22)
    assert res.tiles is None and res.imgsz == 640  # the size the model was trained at
    assert "test split (22 images, imgsz 640)" in res.describe()


@pytest.mark.slow
def test_evaluation_through_the_apps_own_detector(default_weights, mini_copy):
    """--app-path: the app's post-processing scores (one box per hand keeps classes and
    scores, so the result is close to the validator's, not the validator itself)."""
    res = evaluate(default_weights, mini_copy, split="test", through_app=True)
    _check_plausible(res, mini_copy, "test", 22)
    validator = evaluate(default_weights, mini_copy, split="test")
    assert abs(res.map50 - validator.map50) < 0.1 and res.map50 != validator.map50


@pytest.mark.slow
def test_tiled_evaluation_on_the_fixture_set(default_weights, mini):
    res = evaluate(
        default_weights, mini / "data.yaml", split="test", tiles=TileSpec(size=640, overlap=0.25)
    )
    _check_plausible(res, mini, "test", 22)
    assert res.tiles == "640:0.25:nms:full"
    assert "tiles 640:0.25:nms:full" in res.describe()


@pytest.mark.slow
def test_agnostic_evaluation_scores_any_hand(default_weights, mini_copy):
    two = evaluate(default_weights, mini_copy, split="test")
    one = evaluate(default_weights, mini_copy, split="test", agnostic=True)
    assert one.agnostic and set(one.per_class_ap50) == {AGNOSTIC_NAME}
    assert "class-agnostic" in one.describe()
    # A glove called a hand is right when any hand counts: finding is at least as good as
    # finding and telling apart, up to the validator's NMS differences.
    assert one.map50 >= two.map50 - 0.02
    assert 0.5 < one.hand_recall <= 1 and one.hand_recall == two.hand_recall
    tiled = evaluate(default_weights, mini_copy, split="test", tiles=TileSpec(), agnostic=True)
    assert set(tiled.per_class_ap50) == {AGNOSTIC_NAME} and tiled.map50 > 0.5


def test_hand_recall_counts_matches_of_any_class():
    m = np.zeros((3, 3), dtype=np.int64)
    true_glove, true_hand = np.array([[0, 0, 10, 10]]), np.array([[50, 50, 60, 60]])
    truth = np.concatenate([true_glove, true_hand])
    # one glove found as a hand, the bare hand missed, one false box
    pred = np.array([[0, 0, 10, 10], [80, 80, 90, 90]])
    confusion_update(m, pred, np.array([1, 0]), truth, np.array([0, 1]))
    assert hand_recall(m) == 0.5
    assert hand_recall(np.zeros((3, 3))) == 0.0


def test_missing_split_names_the_splits_that_exist(default_weights, tmp_path, mini):
    data = tmp_path / "two-splits"
    for split in ("train", "val"):
        shutil.copytree(mini / "images" / split, data / "images" / split)
        shutil.copytree(mini / "labels" / split, data / "labels" / split)
    (data / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames: [glove, hand]\n"
    )
    with pytest.raises(DatasetError, match=r"no 'test' split \(it has: train, val\)"):
        evaluate(default_weights, data, split="test")


def test_other_classes_cannot_be_scored(default_weights, tmp_path, mini):
    data = tmp_path / "three"
    shutil.copytree(mini / "images" / "val", data / "images" / "val")
    shutil.copytree(mini / "labels" / "val", data / "labels" / "val")
    (data / "data.yaml").write_text("path: .\nval: images/val\nnames: [glove, hand, head]\n")
    with pytest.raises(DatasetError, match="model has 2 classes and the data set 3"):
        evaluate(default_weights, data, split="val", tiles=TileSpec())


@pytest.mark.slow
@pytest.mark.needs_data
def test_shipped_model_meets_the_bar_on_the_gloves_test_split(default_weights, shared_gloves):
    res = evaluate(default_weights, shared_gloves, split="test")  # read-only: no label cache
    assert res.images == 268
    assert res.map50 >= 0.88, res.per_class_ap50
    assert set(res.per_class_ap50) == {"glove", "hand"}


@pytest.mark.slow
def test_tiles_beat_the_full_frame_on_wide_views(default_weights, mini_copy, tmp_path):
    """On generated wide views (test images shrunk into 1080p canvases) tiling finds more."""
    from core.training.wideview import build_wideview

    wv = build_wideview(mini_copy, tmp_path / "wv", n=2, seed=0)
    full = evaluate(default_weights, wv.data_yaml, tiles=None)
    tiled = evaluate(default_weights, wv.data_yaml, tiles=TileSpec())
    assert full.images == tiled.images == 2
    assert tiled.map50 > full.map50
    assert set(tiled.per_class_ap50) <= {"glove", "hand"}


def test_matching_is_greedy_one_to_one_per_threshold():
    truth = np.array([[0, 0, 10, 10]], float)
    preds = np.array([[0, 0, 10, 10], [0, 0, 10, 9]], float)  # a duplicate of the same box
    correct = match_predictions(preds, np.array([0, 0]), truth, np.array([0]))
    assert correct.shape == (2, 10)
    assert correct[0].all() and not correct[1].any()  # the duplicate is a false positive
    wrong_class = match_predictions(preds[:1], np.array([1]), truth, np.array([0]))
    assert not wrong_class.any()
    assert match_predictions(np.zeros((0, 4)), np.zeros(0), truth, np.array([0])).shape == (0, 10)


def test_confusion_counts_class_mixups_misses_and_false_alarms():
    m = np.zeros((3, 3), np.int64)
    truth = np.array([[0, 0, 10, 10], [50, 50, 60, 60], [100, 100, 110, 110]], float)
    true_cls = np.array([0, 1, 1])
    preds = np.array([[0, 0, 10, 10], [50, 50, 60, 60], [200, 200, 210, 210]], float)
    pred_cls = np.array([1, 1, 0])  # glove called hand, hand right, a false glove
    confusion_update(m, preds, pred_cls, truth, true_cls)
    assert m.tolist() == [
        [0, 0, 1],  # predicted glove: one on background
        [1, 1, 0],  # predicted hand: the glove and the hand
        [0, 1, 0],
    ]  # missed: the third hand
