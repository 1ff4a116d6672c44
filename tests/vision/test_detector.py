"""The detector: the shipped model on real images, and one clear sentence for a bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import EXIT_UNUSABLE, ModelError
from core.media import read_image
from core.vision.detector import (
    DETECTORS,
    Detector,
    InferenceParams,
    backend_of,
    class_ids_for,
    inspect_model,
    load_yolo,
    model_names,
)
from core.vision.roles import Role


def test_shipped_model_describes_itself(default_weights):
    info = inspect_model(default_weights)
    assert info.task == "detect" and info.backend == "pytorch"
    assert info.names == {0: "glove", 1: "hand"}
    assert info.roles.role_of(0) is Role.PROTECTED and info.roles.role_of(1) is Role.VIOLATION
    assert len(info.sha256) == 64 and info.train_imgsz == 640
    assert model_names(default_weights) == ("glove", "hand")
    assert class_ids_for(info, ["hand"]) == (1,)


def test_shipped_model_tells_gloved_from_bare(default_weights, gloved_images, bare_images):
    with DETECTORS.acquire(default_weights) as det:
        bare = [det.detect(read_image(p)) for p in bare_images[:4]]
        gloved = [det.detect(read_image(p)) for p in gloved_images[:4]]
    assert sum(f.detections.count(Role.VIOLATION) > 0 for f in bare) >= 3
    assert sum(f.detections.count(Role.PROTECTED) > 0 for f in gloved) >= 3
    # a bare-hand close-up is not mostly called gloved, and vice versa
    assert sum(f.detections.count(Role.PROTECTED) for f in bare) < sum(
        f.detections.count(Role.VIOLATION) for f in bare
    )
    assert sum(f.detections.count(Role.VIOLATION) for f in gloved) < sum(
        f.detections.count(Role.PROTECTED) for f in gloved
    )
    fd = bare[0]
    h, w = fd.shape
    assert (h, w) == read_image(bare_images[0]).shape[:2] and fd.inference_ms > 0
    d = fd.detections
    assert ((d.xyxy[:, 0] >= 0) & (d.xyxy[:, 0] < d.xyxy[:, 2]) & (d.xyxy[:, 2] <= w)).all()
    assert ((d.xyxy[:, 1] >= 0) & (d.xyxy[:, 1] < d.xyxy[:, 3]) & (d.xyxy[:, 3] <= h)).all()
    assert ((d.confidence >= 0.25) & (d.confidence <= 1)).all()
    assert d.tracker_id is None and d.polygons is None


def test_class_filter_and_threshold(default_weights, bare_images):
    img = read_image(bare_images[0])
    with DETECTORS.acquire(default_weights) as det:
        only_gloves = det.detect(img, InferenceParams(classes=(0,), conf=0.05)).detections
        strict = det.detect(img, InferenceParams(conf=0.99)).detections
    assert (only_gloves.class_id == 0).all()
    assert len(strict) == 0 and strict.xyxy.shape == (0, 4)


def test_blank_image_has_no_detections(default_weights):
    with DETECTORS.acquire(default_weights) as det:
        fd = det.detect(np.full((240, 320, 3), 127, np.uint8), InferenceParams(imgsz=320))
    assert len(fd) == 0 and fd.shape == (240, 320)


def test_pool_reuses_instances(default_weights):
    with DETECTORS.acquire(default_weights) as a, DETECTORS.acquire(default_weights) as b:
        assert a is not b  # two threads/users never share one instance at once
    with DETECTORS.acquire(default_weights) as c:
        assert c in (a, b)


# ------------------------------------------------------------------- unusable weights files


def _text_pt(tmp_path: Path, real: Path) -> Path:
    p = tmp_path / "weights.pt"
    p.write_text("not a model, just text")
    return p


def _empty_pt(tmp_path: Path, real: Path) -> Path:
    p = tmp_path / "empty.pt"
    p.write_bytes(b"")
    return p


def _truncated_pt(tmp_path: Path, real: Path) -> Path:
    p = tmp_path / "cut.pt"
    data = real.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


def _truncated_tail_pt(tmp_path: Path, real: Path) -> Path:
    p = tmp_path / "cut-tail.pt"
    p.write_bytes(real.read_bytes()[:-100])  # only the zip directory's end is missing
    return p


def _image_as_pt(tmp_path: Path, real: Path) -> Path:
    p = tmp_path / "photo.pt"
    p.write_bytes(
        next(
            (Path(__file__).parents[1] / "fixtures" / "gloves-mini" / "images" / "test").glob(
                "*.jpg"
            )
        ).read_bytes()
    )
    return p


BAD_FILES = [_text_pt, _empty_pt, _truncated_pt, _truncated_tail_pt, _image_as_pt]


@pytest.mark.parametrize("make", BAD_FILES, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("entry", ["Detector", "load_yolo", "inspect_model"])
def test_bad_weights_file_is_one_clean_sentence(tmp_path, default_weights, make, entry):
    bad = make(tmp_path, default_weights)
    call = {"Detector": Detector, "load_yolo": load_yolo, "inspect_model": inspect_model}[entry]
    with pytest.raises(ModelError) as err:
        call(bad)
    text = str(err.value)
    assert "\n" not in text and text.endswith(".") and bad.name in text
    assert "yolo26n" not in text.lower() and "download" not in text.lower()
    assert "Traceback" not in text and "ERROR" not in text
    assert err.value.exit_code == EXIT_UNUSABLE


def test_missing_and_wrong_suffix(tmp_path):
    with pytest.raises(ModelError, match=r"not found: nothing\.pt"):
        Detector(tmp_path / "nothing.pt")
    other = tmp_path / "w.bin"
    other.write_bytes(b"x")
    with pytest.raises(ModelError, match="not a model file GloveWatch can use"):
        Detector(other)
    with pytest.raises(ModelError):
        backend_of(tmp_path / "model.safetensors")
    assert backend_of(Path("m.onnx")) == "onnx" and backend_of(Path("m.pt")) == "pytorch"


def test_other_task_is_refused(tmp_path):
    """A classification checkpoint is not a hand detector: refused before it is unpickled."""
    from ultralytics import YOLO

    path = tmp_path / "cls.pt"
    YOLO("yolo11n-cls.yaml").save(str(path))
    with pytest.raises(ModelError) as err:
        inspect_model(path)
    assert "cls.pt" in str(err.value) and "\n" not in str(err.value)


# ------------------------------------------------------------------- one judgement per hand


def test_one_hand_with_a_glove_box_and_a_bare_box_is_judged_once():
    """Issue 22: glove 0.66 and hand 0.55 on one hand gave 'violation (1 compliant, 1
    violating)'. The weaker box is set aside as context (class and score kept)."""
    from core.events.rules import StationRule
    from core.vision.detections import Detections
    from core.vision.detector import resolve_hands

    names = {0: "glove", 1: "hand"}
    roles = {0: Role.PROTECTED, 1: Role.VIOLATION}
    one_hand = Detections.from_arrays(
        np.array([[100, 100, 200, 220], [104, 98, 203, 224], [400, 90, 480, 200]], np.float32),
        np.array([0.55, 0.66, 0.8], np.float32),
        np.array([1, 0, 1]),
        names,
        roles,
    )
    before = StationRule().judge(one_hand, (480, 640))
    assert (before.compliant, before.violating) == (1, 2)
    out = resolve_hands(one_hand)
    assert list(out.role) == ["context", "protected", "violation"]  # the far hand stays
    assert (out.class_id == one_hand.class_id).all()
    assert (out.confidence == one_hand.confidence).all()
    after = StationRule().judge(out, (480, 640))
    assert (after.compliant, after.violating) == (1, 1)
    apart = one_hand[np.array([1, 2])]
    assert resolve_hands(apart) is apart  # two hands, two judgements
