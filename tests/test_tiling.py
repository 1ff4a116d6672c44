"""Tiled inference: windows, merging, and the shipped model on a real wide canvas."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest

from core.compliance import Role
from core.detector import Detection, InferenceParams
from core.tiling import (TileSpec, TilingError, detect_tiled, evaluate_tiled, merge_detections,
                         tile_windows)
from core.wideview import CompositeSpec, compose, read_split


def _det(cls: int, conf: float, box) -> Detection:
    return Detection(cls, ["glove", "hand"][cls], Role.PROTECTED if cls == 0 else Role.VIOLATION,
                     conf, tuple(float(v) for v in box))


def test_windows_cover_the_frame_with_overlap():
    spec = TileSpec(size=640, overlap=0.25)
    wins = tile_windows(1080, 1920, spec)
    assert len(wins) == 4 * 2
    assert all(x2 - x1 == 640 and y2 - y1 == 640 for x1, y1, x2, y2 in wins)
    covered = np.zeros((1080, 1920), bool)
    for x1, y1, x2, y2 in wins:
        covered[y1:y2, x1:x2] = True
    assert covered.all()
    xs = sorted({w[0] for w in wins})
    assert all(b - a <= 640 - 160 for a, b in zip(xs, xs[1:]))  # >= 25 % overlap
    assert tile_windows(480, 640, spec) == [(0, 0, 640, 480)]


def test_merge_dedups_same_class_overlaps_only():
    a = _det(1, 0.9, (100, 100, 140, 140))
    b = _det(1, 0.6, (102, 101, 142, 141))  # same hand seen by two tiles
    c = _det(0, 0.5, (101, 100, 141, 140))  # other class: kept
    d = _det(1, 0.7, (500, 500, 540, 540))
    merged = merge_detections([b, a, c, d], iou=0.5, method="nms")
    assert [m.confidence for m in merged] == [0.9, 0.7, 0.5]
    fused = merge_detections([a, b], iou=0.5, method="wbf")
    assert len(fused) == 1 and fused[0].confidence == 0.9
    assert 100 < fused[0].box[0] < 102  # confidence-weighted mean of the two boxes


def test_bad_tile_settings_are_clear_errors():
    with pytest.raises(TilingError, match="overlap"):
        TileSpec(overlap=1.5)
    with pytest.raises(TilingError, match="SIZE"):
        TileSpec.parse("big")
    with pytest.raises(TilingError, match="merge"):
        TileSpec.parse("640:0.2:mean")
    assert TileSpec.parse("512:0.3:wbf") == TileSpec(size=512, overlap=0.3, merge="wbf")
    assert TileSpec.parse("320:0.2:nms:nofull").full_frame is False
    with pytest.raises(TilingError, match="nofull"):
        TileSpec.parse("320:0.2:nms:half")


@pytest.fixture(scope="module")
def detector(default_weights):
    from core.detector import Detector

    return Detector(default_weights)


@pytest.fixture(scope="module")
def wide_canvas(gloves_dir):
    """One bare-hand test close-up shrunk to 1/4 in a grey 1920x1080 frame (hand ~70 px)."""
    item = next(it for it in read_split(gloves_dir, "test")
                if it.image.name == "glove-detection-gmosz__42e7bcf34b39.jpg")
    background = np.full((1080, 1920, 3), 110, np.uint8)
    canvas, boxes = compose(background, [(cv2.imread(str(item.image)), item.boxes)],
                            random.Random(1), CompositeSpec(min_scale=0.25, max_scale=0.25))
    (b,) = boxes
    truth = ((b.cx - b.w / 2) * 1920, (b.cy - b.h / 2) * 1080, (b.cx + b.w / 2) * 1920,
             (b.cy + b.h / 2) * 1080)
    return canvas, b.class_id, truth


def _hits(dets, cls: int, truth) -> list[Detection]:
    from core.tiling import _iou_matrix

    return [d for d in dets if d.class_id == cls
            and _iou_matrix(np.array([d.box]), np.array([truth]))[0, 0] > 0.3]


def test_tiles_find_the_small_hand_the_full_frame_misses(detector, wide_canvas):
    canvas, cls, truth = wide_canvas
    params = InferenceParams(conf=0.25, imgsz=640)
    full = detector.detect(canvas, params)
    assert not _hits(full.detections, cls, truth)
    tiled = detect_tiled(detector, canvas, params, TileSpec(size=640, overlap=0.25))
    assert len(_hits(tiled.detections, cls, truth)) == 1  # found, and only once after merging
    assert tiled.shape == (1080, 1920) and tiled.inference_ms > 0
    assert all(0 <= d.box[0] < d.box[2] <= 1920 and 0 <= d.box[1] < d.box[3] <= 1080
               for d in tiled.detections)


def test_tiled_evaluation_beats_full_frame_on_wide_views(default_weights, gloves_dir, tmp_path):
    from core.wideview import build_wideview

    wv = build_wideview(gloves_dir, tmp_path / "wv", n=2, seed=0)
    full = evaluate_tiled(default_weights, wv.data_yaml, tiles=None)
    tiled = evaluate_tiled(default_weights, wv.data_yaml, tiles=TileSpec())
    assert full.images == tiled.images == 2
    assert tiled.map50 > full.map50
    assert set(tiled.per_class_ap50) <= {"glove", "hand"}


def test_tiled_tracker_keeps_one_id_for_a_moving_hand(detector, wide_canvas):
    from core.tiling import TiledTracker

    canvas, cls, truth = wide_canvas
    params = InferenceParams(conf=0.25, imgsz=640)
    tracker = TiledTracker()
    ids = []
    for shift in (0, 6, 12):  # the scene pans a few pixels per frame
        frame = np.roll(canvas, shift, axis=1)
        moved = (truth[0] + shift, truth[1], truth[2] + shift, truth[3])
        tracked = tracker.update(detect_tiled(detector, frame, params, TileSpec()), frame)
        ids += [d.track_id for d in _hits(tracked.detections, cls, moved)]
    assert len(ids) == 3 and len(set(ids)) == 1 and ids[0] is not None
    tracker.reset()


def test_cli_evaluate_tiled_rejects_bad_tiles(gw_home, tmp_path, capfd):
    from core.cli import main

    data = tmp_path / "data.yaml"
    data.write_text("path: .\ntrain: images/test\nval: images/test\ntest: images/test\n"
                    "names: [glove, hand]\n")
    assert main(["evaluate-tiled", "--data", str(data), "--tiles", "640:1.5"]) == 2
    assert "overlap" in capfd.readouterr().err


def test_station_tiles_reach_batch_detection(gw_home, default_weights, wide_canvas, tmp_path):
    """A station set to tiled inference finds the small hand in a wide photo; the default
    station (full frame) does not."""
    from core import store
    from core.batch import BatchInput, run_batch
    from core.compliance import Verdict
    from core.media import write_image
    from core.stations import StationRule, save_rule

    canvas, cls, _ = wide_canvas
    photo = write_image(tmp_path / "wide.jpg", canvas)
    conn = store.connect()
    save_rule(conn, StationRule("Wide cam", tiles="640:0.25"))
    plain = run_batch([BatchInput.from_path(photo)], default_weights, InferenceParams())
    tiled = run_batch([BatchInput.from_path(photo)], default_weights, InferenceParams(),
                      station="Wide cam")
    assert plain.files[0].verdict.verdict is Verdict.NO_HANDS
    assert tiled.files[0].verdict.verdict is not Verdict.NO_HANDS
    params = conn.execute("SELECT params_json FROM sessions WHERE id=?",
                          (tiled.session_id,)).fetchone()[0]
    assert '"tiles": "640:0.25:nms:full"' in params


def test_station_rule_rejects_bad_tiles():
    from core.stations import RuleError, StationRule

    with pytest.raises(RuleError, match="Bad tiles"):
        StationRule("x", tiles="big")
    assert StationRule("x", tiles="320:0.2").tile_spec == TileSpec(size=320, overlap=0.2)
    assert StationRule.from_json("x", 3, StationRule("x", tiles="320").to_json()).tiles == "320"
