"""Privacy-safe evidence: faces never stored, hands kept, crops written."""

from __future__ import annotations

import numpy as np

from core.compliance import Role
from core.detector import Detection
from core.evidence import EvidenceWriter, has_head_class, redact
from core.media import read_image


def _noise(h=120, w=160) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)


HAND = Detection(1, "hand", Role.VIOLATION, 0.9, (10.0, 10.0, 50.0, 50.0))
HEAD = Detection(2, "head", Role.CONTEXT, 0.8, (100.0, 20.0, 150.0, 80.0))


def test_without_head_class_everything_but_the_hands_is_blurred():
    img = _noise()
    out = redact(img, [HAND], head_class=False)
    assert np.array_equal(out[15:45, 15:45], img[15:45, 15:45])  # the hand is kept sharp
    far = (slice(80, 120), slice(100, 160))
    assert np.abs(out[far].astype(int) - img[far].astype(int)).mean() > 30  # the rest is not
    assert out[far].std() < img[far].std() / 3


def test_with_head_class_only_heads_are_blurred():
    img = _noise()
    out = redact(img, [HAND, HEAD], head_class=True)
    assert np.array_equal(out[:, :90], img[:, :90])
    assert out[25:75, 105:145].std() < img[25:75, 105:145].std() / 3
    assert has_head_class({0: "glove", 1: "hand", 2: "Head"})
    assert not has_head_class({0: "glove", 1: "hand"})


def test_writer_saves_redacted_frame_and_hand_crop(tmp_path):
    img = _noise()
    ev = EvidenceWriter(tmp_path, {0: "glove", 1: "hand"}).save(
        img, [HAND], HAND.box, "Band saw/3", "s1-e2", "2026-01-02")
    assert ev.frame_path.parent == tmp_path / "2026-01-02"
    assert ev.frame_path.name == "Band-saw-3-s1-e2.jpg"
    frame, crop = read_image(ev.frame_path), read_image(ev.crop_path)
    assert frame.shape == img.shape and crop.shape[0] < 60 and crop.shape[1] < 60
    assert frame[85:120, 100:160].std() < img[85:120, 100:160].std() / 3


def test_unwritable_folder_is_logged_not_raised(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    ev = EvidenceWriter(blocker, {1: "hand"}).save(_noise(), [HAND], HAND.box, "s", "e", "d")
    assert ev is None and "not saved" in caplog.text
