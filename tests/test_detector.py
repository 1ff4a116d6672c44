import pytest

from core.compliance import Role
from core.detector import DETECTORS, Detector, InferenceParams, ModelError, inspect_model
from core.media import read_image


def test_shipped_model_tells_gloved_from_bare(default_weights, gloved_images, bare_images):
    det = Detector(default_weights)
    assert det.info.task == "detect"
    assert det.info.names == {0: "glove", 1: "hand"}
    assert det.roles.role_of(0) is Role.PROTECTED and det.roles.role_of(1) is Role.VIOLATION
    bare_hits = sum(any(d.role is Role.VIOLATION for d in det.detect(read_image(p)).detections)
                    for p in bare_images)
    gloved_hits = sum(any(d.role is Role.PROTECTED for d in det.detect(read_image(p)).detections)
                      for p in gloved_images)
    assert bare_hits >= len(bare_images) * 0.75
    assert gloved_hits >= len(gloved_images) * 0.6
    fd = det.detect(read_image(bare_images[0]), InferenceParams(conf=0.25))
    x1, y1, x2, y2 = fd.detections[0].box
    h, w = fd.shape
    assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h


def test_class_filter_and_threshold(default_weights, bare_images):
    det = Detector(default_weights)
    img = read_image(bare_images[0])
    assert all(d.class_id == 0 for d in det.detect(img, InferenceParams(classes=(0,))).detections)
    assert det.detect(img, InferenceParams(conf=0.99)).detections == ()


def test_text_file_is_refused(tmp_path):
    fake = tmp_path / "weights.pt"
    fake.write_text("not a model")
    with pytest.raises(ModelError, match="not a usable YOLO model"):
        Detector(fake)


def test_missing_and_wrong_suffix(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        Detector(tmp_path / "nothing.pt")
    other = tmp_path / "w.bin"
    other.write_bytes(b"x")
    with pytest.raises(ModelError, match="not a model file"):
        Detector(other)


def test_other_task_is_refused(tmp_path):
    from ultralytics import YOLO

    path = tmp_path / "cls.pt"
    YOLO("yolo11n-cls.yaml").save(str(path))
    with pytest.raises(ModelError, match="'classify' model"):
        inspect_model(path)


def test_pool_reuses_instances(default_weights):
    with DETECTORS.acquire(default_weights) as a:
        with DETECTORS.acquire(default_weights) as b:
            assert a is not b  # two threads/users never share one instance at once
    with DETECTORS.acquire(default_weights) as c:
        assert c in (a, b)
