"""Detections: the columnar container every stage after the model passes along."""

from __future__ import annotations

import numpy as np
import pytest

from core.vision.detections import Detections, FrameDetections, box_iou
from core.vision.roles import Role

NAMES = {0: "glove", 1: "hand", 2: "head"}
ROLES = {0: Role.PROTECTED, 1: Role.VIOLATION, 2: Role.CONTEXT}


def _dets(boxes, conf, cls, tracker_id=None, polygons=None) -> Detections:
    return Detections.from_arrays(
        np.array(boxes, np.float32).reshape(-1, 4),
        np.array(conf, np.float32),
        np.array(cls),
        NAMES,
        ROLES,
        tracker_id=None if tracker_id is None else np.array(tracker_id),
        polygons=polygons,
    )


def test_from_arrays_names_and_roles_each_box():
    d = _dets([[0, 0, 10, 10], [5, 5, 20, 30], [1, 1, 2, 2]], [0.9, 0.5, 0.7], [0, 1, 2])
    assert len(d) == 3
    assert list(d.class_name) == ["glove", "hand", "head"]
    assert list(d.role) == ["protected", "violation", "context"]
    assert d.count(Role.VIOLATION) == 1
    assert list(d.hands) == [True, True, False]
    assert d.xyxy.dtype == np.float32 and d.class_id.dtype == np.int64
    assert d.box(1) == (5.0, 5.0, 20.0, 30.0)
    np.testing.assert_allclose(d.centers[1], [12.5, 17.5])
    np.testing.assert_allclose(d.area, [100, 375, 1])


def test_unknown_class_id_gets_its_number_and_context_role():
    d = Detections.from_arrays(
        np.array([[0, 0, 1, 1]]), np.array([0.5]), np.array([7]), NAMES, ROLES
    )
    assert d.class_name[0] == "7" and d.role[0] == "context"


@pytest.mark.parametrize(
    "field, bad",
    [
        ("confidence", np.zeros(3, np.float32)),
        ("class_id", np.zeros(1, np.int64)),
        ("class_name", np.array([["a", "b"]], object)),
        ("role", np.array(["protected"] * 3)),
        ("tracker_id", np.zeros(5, np.int64)),
    ],
)
def test_columns_must_have_one_value_per_box(field, bad):
    cols = dict(
        xyxy=np.zeros((2, 4), np.float32),
        confidence=np.zeros(2, np.float32),
        class_id=np.zeros(2, np.int64),
        class_name=np.array(["a", "b"], object),
        role=np.array(["context", "context"]),
    )
    cols[field] = bad
    with pytest.raises(ValueError, match=f"Detections.{field}"):
        Detections(**cols)


def test_polygons_must_match_the_boxes():
    with pytest.raises(ValueError, match="polygons"):
        _dets([[0, 0, 1, 1], [0, 0, 2, 2]], [0.5, 0.5], [0, 1], polygons=[np.zeros((3, 2))])


@pytest.mark.parametrize("box", [[10, 0, 5, 10], [0, 10, 10, 5]])
def test_inverted_boxes_are_refused(box):
    with pytest.raises(ValueError, match="x2 < x1 or y2 < y1"):
        _dets([box], [0.5], [0])


def test_xyxy_of_wrong_width_is_refused():
    with pytest.raises(ValueError):
        Detections(
            np.zeros((2, 3)),
            np.zeros(2),
            np.zeros(2),
            np.array(["a", "b"], object),
            np.array(["context"] * 2),
        )


def test_empty_has_every_column_and_can_be_tracked():
    e = Detections.empty()
    assert len(e) == 0 and e.xyxy.shape == (0, 4) and e.tracker_id is None
    assert e.count(Role.PROTECTED) == 0 and e.by_confidence().xyxy.shape == (0, 4)
    t = Detections.empty(tracked=True)
    assert t.tracker_id is not None and len(t.tracker_id) == 0
    assert len(FrameDetections(e, (480, 640))) == 0


def test_mask_index_and_slice_select_every_column():
    polys = [
        np.array([[0, 0], [1, 0], [1, 1]], np.float32),
        None,
        np.array([[5, 5], [6, 5], [6, 6]], np.float32),
    ]
    d = _dets(
        [[0, 0, 1, 1], [2, 2, 3, 3], [5, 5, 6, 6]],
        [0.9, 0.2, 0.6],
        [0, 1, 0],
        tracker_id=[4, 5, 6],
        polygons=polys,
    )
    strong = d[d.confidence > 0.5]
    assert len(strong) == 2 and list(strong.tracker_id) == [4, 6]
    assert list(strong.class_name) == ["glove", "glove"]
    np.testing.assert_array_equal(strong.polygons[1], polys[2])
    one = d[1]
    assert len(one) == 1 and one.class_name[0] == "hand" and one.polygons[0] is None
    assert len(d[1:]) == 2 and len(d[[0, 2]]) == 2
    assert len(d[np.zeros(3, bool)]) == 0


def test_by_confidence_orders_most_confident_first_and_is_stable():
    d = _dets(
        [[0, 0, 1, 1], [0, 0, 2, 2], [0, 0, 3, 3], [0, 0, 4, 4]],
        [0.5, 0.9, 0.5, 0.7],
        [0, 1, 1, 0],
        tracker_id=[1, 2, 3, 4],
    )
    ordered = d.by_confidence()
    np.testing.assert_allclose(ordered.confidence, [0.9, 0.7, 0.5, 0.5])
    assert list(ordered.tracker_id) == [2, 4, 1, 3]  # ties keep their order
    assert list(d.tracker_id) == [1, 2, 3, 4]  # the original is untouched


def test_shifted_moves_boxes_and_polygons_not_the_original():
    poly = np.array([[1, 1], [3, 1], [3, 3]], np.float32)
    d = _dets([[1, 1, 3, 3], [0, 0, 1, 1]], [0.5, 0.5], [0, 1], polygons=[poly, None])
    moved = d.shifted(100, 50)
    np.testing.assert_allclose(moved.xyxy[0], [101, 51, 103, 53])
    np.testing.assert_allclose(moved.polygons[0], poly + [100, 50])
    assert moved.polygons[1] is None
    np.testing.assert_allclose(d.xyxy[0], [1, 1, 3, 3])
    assert list(moved.class_name) == list(d.class_name)


def test_merge_concatenates_in_order():
    a = _dets([[0, 0, 1, 1]], [0.9], [0], tracker_id=[1])
    b = _dets([[2, 2, 3, 3], [4, 4, 5, 5]], [0.3, 0.4], [1, 2], tracker_id=[7, 8])
    m = Detections.merge([a, b])
    assert len(m) == 3 and list(m.class_name) == ["glove", "hand", "head"]
    assert list(m.tracker_id) == [1, 7, 8]
    assert list(m.role) == ["protected", "violation", "context"]


def test_merge_drops_tracker_ids_and_polygons_missing_in_any_part():
    tri = np.array([[0, 0], [1, 0], [1, 1]], np.float32)
    tracked = _dets([[0, 0, 1, 1]], [0.9], [0], tracker_id=[3], polygons=[tri])
    plain = _dets([[2, 2, 3, 3]], [0.5], [1])
    m = Detections.merge([tracked, plain])
    assert len(m) == 2 and m.tracker_id is None and m.polygons is None
    both = Detections.merge([tracked, tracked.shifted(5, 5)])
    assert list(both.tracker_id) == [3, 3] and len(both.polygons) == 2
    np.testing.assert_allclose(both.polygons[1], tri + 5)


def test_merge_of_nothing_and_of_empties():
    assert len(Detections.merge([])) == 0
    assert len(Detections.merge([Detections.empty(), Detections.empty()])) == 0
    one = _dets([[0, 0, 1, 1]], [0.9], [0], tracker_id=[1])
    # empty parts do not take the tracker ids away from the others
    m = Detections.merge([Detections.empty(), one])
    assert len(m) == 1 and list(m.tracker_id) == [1]


def test_box_iou_matrix():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110]])
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou[0], [1.0, 50 / 150, 0.0], atol=1e-6)
    assert not iou[1].any()
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3)
