"""The OpenVINO runtime path: same boxes as Ultralytics, no torch, clear words for a bad file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.errors import ModelError
from core.media import read_image
from core.vision.detections import box_iou
from core.vision.detector import DETECTORS, Detector, InferenceParams, export_model, make_detector
from core.vision.openvino_detector import OpenVinoDetector, letterbox, nms
from tests.conftest import MINI, ROOT

SIZE = 320  # the fixture images at the size the pipeline tests use (fast on a CPU)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory, default_weights: Path) -> Path:
    """A data folder holding the shipped model's ONNX and OpenVINO exports at 320 px."""
    import os

    home = tmp_path_factory.mktemp("ov-home")
    old = os.environ.get("GLOVEWATCH_HOME")
    os.environ["GLOVEWATCH_HOME"] = str(home)
    try:
        export_model(default_weights, "onnx", SIZE)
        export_model(default_weights, "openvino", SIZE)
    finally:
        if old is None:
            os.environ.pop("GLOVEWATCH_HOME", None)
        else:
            os.environ["GLOVEWATCH_HOME"] = old
    return home


@pytest.fixture
def ov_home(exports: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GLOVEWATCH_HOME", str(exports))
    return exports


def _folder(home: Path) -> Path:
    return next((home / "exports").glob("*/*_openvino_model"))


def test_same_boxes_as_the_ultralytics_path_on_every_fixture_image(ov_home, default_weights):
    """At the export's own precision (f32), against Ultralytics running the same network
    (its ONNX path: same static letterbox, f32): same count, classes, IoU >= 0.99."""
    ours = OpenVinoDetector(default_weights, _folder(ov_home), precision="f32")
    theirs = Detector(default_weights, backend="onnx", imgsz=SIZE)
    params = InferenceParams(imgsz=SIZE)
    images = sorted((MINI / "images").rglob("*.jpg"))
    boxes = 0
    for path in images:
        image = read_image(path)
        a = theirs.detect(image, params).detections.by_confidence()
        b = ours.detect(image, params).detections.by_confidence()
        assert len(a) == len(b), path.name
        assert (a.class_id == b.class_id).all(), path.name
        if len(a):
            assert box_iou(a.xyxy, b.xyxy).diagonal().min() >= 0.99, path.name
            assert np.abs(a.confidence - b.confidence).max() < 0.01, path.name
        boxes += len(a)
    assert len(images) == 40 and boxes >= 30


def test_stream_keeps_order_and_tracks(ov_home, default_weights, bare_images):
    det = make_detector(default_weights, "openvino", SIZE)
    assert isinstance(det, OpenVinoDetector) and det.requests >= 2
    frames = [read_image(p) for p in bare_images[:3]] * 3
    params = InferenceParams(imgsz=SIZE)
    single = [det.detect(f, params).detections for f in frames]
    streamed = list(det.stream(enumerate(frames), params))
    assert [tag for tag, _, _ in streamed] == list(range(len(frames)))
    for (_, image, fd), one, frame in zip(streamed, single, frames):
        assert image is frame and len(fd.detections) == len(one)
        assert np.allclose(fd.detections.xyxy, one.xyxy, atol=0.5) and fd.inference_ms > 0
    tracked = [fd.detections for _, _, fd in det.stream(enumerate([frames[0]] * 4), params, True)]
    assert all(d.tracker_id is not None for d in tracked)
    assert len(tracked[0]) == len(single[0]) > 0  # the first frame's tracks start confirmed
    assert all(list(d.tracker_id) == list(tracked[0].tracker_id) for d in tracked)
    assert det.detect_batch([frames[0], frames[1]], params)[1].shape == frames[1].shape[:2]


def test_pool_lends_the_runtime_path_for_openvino(ov_home, default_weights):
    with DETECTORS.acquire(default_weights, "openvino", SIZE) as det:
        assert isinstance(det, OpenVinoDetector)
        assert det.info.backend == "openvino" and det.info.names == {0: "glove", 1: "hand"}
        assert det.info.train_imgsz == 640  # recorded at export, the .pt is not unpickled
    with DETECTORS.acquire(default_weights, "onnx", SIZE) as det:
        assert not isinstance(det, OpenVinoDetector)


def test_no_torch_on_the_openvino_path(ov_home, default_weights, bare_images):
    """Importing, loading, detecting and tracking on OpenVINO never imports torch."""
    code = (
        "import sys, json\n"
        "from core.media import read_image\n"
        "from core.vision.detector import make_detector, InferenceParams\n"
        "from core.vision.tracking import VideoDetector\n"
        f"det = make_detector({str(default_weights)!r}, 'openvino', {SIZE})\n"
        f"img = read_image({str(bare_images[0])!r})\n"
        f"video = VideoDetector(det, InferenceParams(imgsz={SIZE}))\n"
        "found = [len(fd) for _, _, fd in video.stream(enumerate([img] * 3))]\n"
        "print(json.dumps({'found': found, 'torch': 'torch' in sys.modules,"
        " 'ultralytics': 'ultralytics' in sys.modules}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res == {"found": res["found"], "torch": False, "ultralytics": False}
    assert res["found"][1] > 0


def test_a_model_openvino_cannot_read_is_one_sentence(tmp_path, default_weights):
    folder = tmp_path / "broken_openvino_model"
    folder.mkdir()
    (folder / "broken.xml").write_text("<net>this is not an IR</net>")
    (folder / "broken.bin").write_bytes(b"\0" * 64)
    (folder / "metadata.yaml").write_text("task: detect\nnames: {0: glove, 1: hand}\n")
    for call in (make_detector, lambda f, _: OpenVinoDetector(f, f)):
        with pytest.raises(ModelError) as err:
            call(folder, "openvino")
        text = str(err.value)
        assert text == "broken_openvino_model: OpenVINO cannot read this model file."
    empty = tmp_path / "empty_openvino_model"
    empty.mkdir()
    with pytest.raises(ModelError, match=r"^empty_openvino_model: no OpenVINO model"):
        make_detector(empty, "openvino")


def test_letterbox_and_nms_follow_ultralytics():
    from ultralytics.data.augment import LetterBox

    image = np.random.default_rng(0).integers(0, 255, (240, 427, 3), np.uint8)
    blob, lb = letterbox(image, (320, 320))
    assert (blob[0] == LetterBox((320, 320), auto=False, stride=32)(image=image)).all()
    assert lb.shape == (240, 427) and lb.pad[0] == 0 and lb.pad[1] > 0
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float32)
    assert list(nms(boxes, np.array([0.5, 0.9, 0.7], np.float32), 0.5)) == [1, 2]
