"""Camera realism for training: degraded copies keep their labels on the hand they label."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest

from core.training.camera import CameraSpec, build_degraded, degrade
from core.vision.yolo_data import LabelledImage, YoloBox, read_labels

NOTHING = CameraSpec(gray=0, blur=0, jpeg=0, lowres=0, light=0, noise=0, rotate=0)
ONLY_ROTATE = CameraSpec(gray=0, blur=0, jpeg=0, lowres=0, light=0, noise=0, rotate=1.0)


def _scene() -> tuple[np.ndarray, YoloBox]:
    """A grey 320x240 picture with one red 'hand' whose box is known."""
    image = np.full((240, 320, 3), 128, np.uint8)
    image[60:120, 200:260] = (0, 0, 255)
    return image, YoloBox(1, 230 / 320, 90 / 240, 60 / 320, 60 / 240)


def _red(image: np.ndarray) -> np.ndarray:
    return (image[..., 2] > 200) & (image[..., 0] < 60) & (image[..., 1] < 60)


def test_no_effect_leaves_picture_and_box_alone():
    image, box = _scene()
    out, boxes = degrade(image, [box], random.Random(0), NOTHING)
    assert np.array_equal(out, image) and boxes == [box]


@pytest.mark.parametrize("seed", range(8))  # right angles and free angles both occur
def test_rotated_box_still_covers_the_hand(seed):
    image, box = _scene()
    out, boxes = degrade(image, [box], random.Random(seed), ONLY_ROTATE)
    [moved] = boxes
    h, w = out.shape[:2]
    x1, y1, x2, y2 = (round(v) for v in moved.xyxy(w, h))
    ys, xs = np.nonzero(_red(out))
    assert x1 <= xs.mean() <= x2 and y1 <= ys.mean() <= y2  # centred on the hand
    inside = _red(out[max(0, y1) : y2, max(0, x1) : x2]).sum()
    assert inside / len(xs) > 0.75  # and covers most of it


def test_effects_keep_size_range_and_labels():
    image, box = _scene()
    rng = random.Random(3)
    spec = CameraSpec(gray=1, blur=1, jpeg=1, lowres=1, light=1, noise=1, rotate=0)
    out, boxes = degrade(image, [box], rng, spec)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert boxes == [box]
    assert np.allclose(out[..., 0], out[..., 2])  # grayscale came last but one
    assert not np.array_equal(out, image)


def test_build_degraded_writes_one_labelled_copy_per_readable_image(tmp_path):
    image, box = _scene()
    good = tmp_path / "a.png"
    cv2.imwrite(str(good), image)
    broken = tmp_path / "b.jpg"
    broken.write_text("not a picture")
    items = [LabelledImage(good, (box,)), LabelledImage(broken, (box,))]
    n = build_degraded(items, tmp_path / "images", tmp_path / "labels", seed=1)
    assert n == 1
    [written] = sorted((tmp_path / "labels").iterdir())
    assert len(read_labels(written)) == 1
    assert cv2.imread(str(tmp_path / "images" / f"{written.stem}.jpg")) is not None
