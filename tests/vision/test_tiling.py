"""Tiled inference: windows, merging, and the shipped model on a real wide canvas."""

from __future__ import annotations

import itertools
import random

import cv2
import numpy as np
import pytest

from core.errors import TilingError
from core.vision.detections import Detections, box_iou
from core.vision.detector import DETECTORS, InferenceParams
from core.vision.roles import Role
from core.vision.tiling import TileSpec, detect_tiled, merge_detections, tile_windows

NAMES = {0: "glove", 1: "hand"}
ROLES = {0: Role.PROTECTED, 1: Role.VIOLATION}
# A bare hand of the fixture set that, shrunk to 15 % in a 1920x1080 frame (64x48 px), the
# shipped model misses on the whole frame and finds with 640 px tiles.
SMALL_HAND = "glove-q7czq__11c8b9a2cca5.jpg"


def _dets(rows) -> Detections:
    """Detections from (class id, confidence, box) rows."""
    return Detections.from_arrays(
        np.array([r[2] for r in rows], np.float32).reshape(-1, 4),
        np.array([r[1] for r in rows], np.float32),
        np.array([r[0] for r in rows]),
        NAMES,
        ROLES,
    )


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
    assert all(b - a <= 640 - 160 for a, b in itertools.pairwise(xs))  # >= 25 % overlap
    assert max(w[2] for w in wins) == 1920 and max(w[3] for w in wins) == 1080  # flush edges


def test_small_frames_get_one_window():
    spec = TileSpec(size=640, overlap=0.25)
    assert tile_windows(480, 640, spec) == [(0, 0, 640, 480)]
    assert tile_windows(640, 640, spec) == [(0, 0, 640, 640)]
    # a frame just wider than a tile: two windows, the second flush with the right edge
    assert tile_windows(600, 700, spec) == [(0, 0, 640, 600), (60, 0, 700, 600)]


def test_zero_overlap_tiles_do_not_overlap():
    wins = tile_windows(1280, 1280, TileSpec(size=640, overlap=0))
    assert sorted(wins) == [
        (0, 0, 640, 640),
        (0, 640, 640, 1280),
        (640, 0, 1280, 640),
        (640, 640, 1280, 1280),
    ]


def test_merge_dedups_same_class_overlaps_only():
    dets = _dets(
        [
            (1, 0.6, (102, 101, 142, 141)),  # the same hand seen by a second tile
            (1, 0.9, (100, 100, 140, 140)),
            (0, 0.5, (101, 100, 141, 140)),  # another class at the same place: kept
            (1, 0.7, (500, 500, 540, 540)),
        ]
    )
    merged = merge_detections(dets, iou=0.5, method="nms")
    np.testing.assert_allclose(merged.confidence, [0.9, 0.7, 0.5])
    np.testing.assert_allclose(merged.xyxy[0], [100, 100, 140, 140])  # nms keeps the best box
    assert list(merged.class_name) == ["hand", "hand", "glove"]


def test_wbf_fuses_boxes_weighted_by_confidence():
    dets = _dets([(1, 0.9, (100, 100, 140, 140)), (1, 0.6, (102, 101, 142, 141))])
    fused = merge_detections(dets, iou=0.5, method="wbf")
    assert len(fused) == 1 and fused.confidence[0] == pytest.approx(0.9)
    expected = (np.array([100, 100, 140, 140]) * 0.9 + np.array([102, 101, 142, 141]) * 0.6) / 1.5
    np.testing.assert_allclose(fused.xyxy[0], expected, atol=1e-4)


def test_merge_keeps_boxes_below_the_iou():
    dets = _dets([(1, 0.9, (0, 0, 10, 10)), (1, 0.8, (5, 0, 15, 10))])  # IoU 1/3
    assert len(merge_detections(dets, iou=0.5)) == 2
    assert len(merge_detections(dets, iou=0.3)) == 1


def test_merge_takes_whole_clusters():
    """A chain a-b-c where only neighbours overlap: a's cluster takes b, c stays."""
    dets = _dets([(1, 0.9, (0, 0, 10, 10)), (1, 0.8, (2, 0, 12, 10)), (1, 0.7, (6, 0, 16, 10))])
    merged = merge_detections(dets, iou=0.5)
    np.testing.assert_allclose(merged.confidence, [0.9, 0.7])


def test_merge_of_nothing_and_bad_method():
    assert len(merge_detections(Detections.empty())) == 0
    with pytest.raises(TilingError, match="merge"):
        merge_detections(Detections.empty(), method="mean")


def test_bad_tile_settings_are_clear_errors():
    with pytest.raises(TilingError, match="overlap"):
        TileSpec(overlap=1.5)
    with pytest.raises(TilingError, match="too small"):
        TileSpec(size=16)
    with pytest.raises(TilingError, match="Merge IoU"):
        TileSpec(merge_iou=0)
    with pytest.raises(TilingError, match="SIZE"):
        TileSpec.parse("big")
    with pytest.raises(TilingError, match="merge"):
        TileSpec.parse("640:0.2:mean")
    with pytest.raises(TilingError, match="nofull"):
        TileSpec.parse("320:0.2:nms:half")


def test_tile_spec_text_round_trip():
    assert TileSpec.parse("512:0.3:wbf") == TileSpec(size=512, overlap=0.3, merge="wbf")
    assert TileSpec.parse("320:0.2:nms:nofull").full_frame is False
    assert TileSpec.parse("320") == TileSpec(size=320)
    spec = TileSpec(size=448, overlap=0.1, merge="wbf", full_frame=False)
    assert TileSpec.parse(spec.to_text()) == spec


@pytest.fixture(scope="module")
def wide_canvas(mini):
    """A bare-hand close-up shrunk to 15 % in a grey 1920x1080 frame (the hand ~64x48 px)."""
    from core.training.wideview import CompositeSpec, compose
    from core.vision.yolo_data import read_split

    item = next(it for it in read_split(mini, "test") if it.image.name == SMALL_HAND)
    background = np.full((1080, 1920, 3), 110, np.uint8)
    canvas, boxes = compose(
        background,
        [(cv2.imread(str(item.image)), item.boxes)],
        random.Random(1),
        CompositeSpec(min_scale=0.15, max_scale=0.15),
    )
    (b,) = boxes
    truth = (
        (b.cx - b.w / 2) * 1920,
        (b.cy - b.h / 2) * 1080,
        (b.cx + b.w / 2) * 1920,
        (b.cy + b.h / 2) * 1080,
    )
    return canvas, b.class_id, truth


def _hits(dets: Detections, cls: int, truth) -> Detections:
    if not len(dets):
        return dets
    return dets[(box_iou(dets.xyxy, np.array([truth]))[:, 0] > 0.3) & (dets.class_id == cls)]


def test_tiles_find_the_small_hand_the_full_frame_misses(default_weights, wide_canvas):
    canvas, cls, truth = wide_canvas
    params = InferenceParams(conf=0.25, imgsz=640)
    with DETECTORS.acquire(default_weights) as det:
        full = det.detect(canvas, params)
        tiled = detect_tiled(det, canvas, params, TileSpec(size=640, overlap=0.25))
    assert len(_hits(full.detections, cls, truth)) == 0
    assert len(_hits(tiled.detections, cls, truth)) == 1  # found, and only once after merging
    assert tiled.shape == (1080, 1920) and tiled.inference_ms > 0
    d = tiled.detections
    assert ((d.xyxy[:, 0] >= 0) & (d.xyxy[:, 2] <= 1920)).all()
    assert ((d.xyxy[:, 1] >= 0) & (d.xyxy[:, 3] <= 1080)).all()
    assert list(_hits(tiled.detections, cls, truth).role) == ["violation"]


@pytest.mark.slow
def test_tiled_tracker_keeps_one_id_for_a_moving_hand(default_weights, wide_canvas):
    from core.vision.tracking import TiledTracker, VideoDetector

    canvas, cls, truth = wide_canvas
    params = InferenceParams(conf=0.25, imgsz=640)
    tracker = TiledTracker()
    ids = []
    with DETECTORS.acquire(default_weights) as det:
        for shift in (0, 6, 12):  # the scene pans a few pixels per frame
            frame = np.roll(canvas, shift, axis=1)
            moved = (truth[0] + shift, truth[1], truth[2] + shift, truth[3])
            tracked = tracker.update(detect_tiled(det, frame, params, TileSpec()), frame)
            ids += [int(i) for i in _hits(tracked.detections, cls, moved).tracker_id]
        tracker.reset()
        video = VideoDetector(det, params, tiles=TileSpec())
        first = video(canvas)
    assert len(ids) == 3 and len(set(ids)) == 1 and ids[0] >= 0
    assert first.detections.tracker_id is not None  # VideoDetector tracks the tiled boxes


def test_tiled_tracking_refuses_other_trackers():
    from core.vision.tracking import TiledTracker

    with pytest.raises(TilingError, match="ByteTrack only"):
        TiledTracker("botsort.yaml")
