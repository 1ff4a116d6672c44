"""Privacy-safe evidence: only the violating hand stays sharp, heads never; the crop comes from
the redacted frame; the detections are saved beside it."""

from __future__ import annotations

import numpy as np
import pytest

from core.events.evidence import EvidenceStore, EvidenceWriter, read_boxes, redact
from core.events.rules import StationRule
from core.media import read_image
from core.vision.annotate import crop
from tests.events.scenes import dets, hand

HAND = (100.0, 100.0, 220.0, 220.0)  # the violating bare hand
GLOVE = (400.0, 380.0, 520.0, 500.0)  # a (false) gloved box far away
HEAD = (180.0, 60.0, 300.0, 180.0)  # overlaps the hand's top right corner


def _detail(region: np.ndarray) -> float:
    """High-frequency energy: mean absolute difference of neighbouring pixels."""
    r = region.astype(np.float64)
    return float(np.abs(np.diff(r, axis=1)).mean() + np.abs(np.diff(r, axis=0)).mean())


def _region(img: np.ndarray, box) -> np.ndarray:
    x1, y1, x2, y2 = (int(v) for v in box)
    return img[y1:y2, x1:x2]


@pytest.fixture(scope="module")
def textured(gloved_images, bare_images) -> np.ndarray:
    """The fixture image with the most detail (so blurring is measurable everywhere)."""
    imgs = [read_image(p) for p in [*gloved_images, *bare_images]]
    imgs = [i for i in imgs if i.shape[:2] == (640, 640)]
    return max(imgs, key=_detail)


def test_only_the_padded_violating_hand_stays_sharp(textured):
    img = textured
    d = dets(hand("hand", HAND, 0.9, 1), hand("glove", GLOVE, 0.8, 2))
    out = redact(img, HAND, d)
    assert out.shape == img.shape and img is not out
    # the hand with 10 % padding is untouched, pixel for pixel
    assert np.array_equal(_region(out, (88, 88, 232, 232)), _region(img, (88, 88, 232, 232)))
    # the false gloved box and the rest of the frame are obscured
    for box in (GLOVE, (0, 400, 100, 640), (300, 0, 640, 80)):
        assert _detail(_region(out, box)) < _detail(_region(img, box)) / 3, box
        assert np.abs(_region(out, box).astype(int) - _region(img, box)).mean() > 5


def test_a_head_overlapping_the_hand_is_obscured(textured):
    img = textured
    d = dets(hand("hand", HAND, 0.9, 1), hand("head", HEAD, 0.8, 2))
    out = redact(img, HAND, d)
    overlap = (190, 110, 220, 175)  # inside both the hand and the head box
    assert _detail(_region(out, overlap)) < _detail(_region(img, overlap)) / 3
    hand_only = (100, 195, 160, 220)  # the hand's lower left, away from the head
    assert np.array_equal(_region(out, hand_only), _region(img, hand_only))


def test_writer_saves_redacted_frame_crop_from_it_and_boxes(textured, tmp_path):
    img = textured
    d = dets(hand("hand", HAND, 0.9, 1), hand("glove", GLOVE, 0.8, 2), hand("head", HEAD, 0.7, 3))
    status = StationRule("Band saw/3").judge(d, img.shape[:2]).status
    ev = EvidenceWriter(tmp_path).save(img, d, status, HAND, "Band saw/3", "s1-e2", "2026-01-02")
    assert ev is not None
    assert ev.frame_path.parent == tmp_path / "2026-01-02"
    assert ev.frame_path.name == "Band-saw-3-s1-e2.jpg"
    frame, hand_crop = read_image(ev.frame_path), read_image(ev.crop_path)
    assert frame.shape == img.shape
    assert _detail(_region(frame, GLOVE)) < _detail(_region(img, GLOVE)) / 3
    sharp = (100, 195, 160, 220)
    assert np.abs(_region(frame, sharp).astype(int) - _region(img, sharp)).mean() < 6  # JPEG
    # the hand crop is cut from the redacted frame: the head corner in it is obscured too
    expected = crop(redact(img, HAND, d), HAND)
    original = crop(img, HAND)
    assert hand_crop.shape == expected.shape
    assert np.abs(hand_crop.astype(int) - expected).mean() < 4
    head_part = (slice(0, 70), slice(110, hand_crop.shape[1]))  # crop coords of the overlap
    assert np.abs(hand_crop[head_part].astype(int) - original[head_part]).mean() > 5
    assert _detail(hand_crop[head_part]) < _detail(original[head_part]) / 2
    side = read_boxes(ev.frame_path)
    assert side == read_boxes(ev.boxes_path.with_suffix(".jpg"))
    assert side["shape"] == [640, 640]
    assert [(x["class_name"], x["role"], x["status"]) for x in side["detections"]] == [
        ("hand", "violation", "violating"),
        ("glove", "protected", "compliant"),
        ("head", "context", "context"),
    ]
    assert side["detections"][0]["box"] == list(HAND)


def test_without_blur_the_frame_is_kept_as_is(textured, tmp_path):
    d = dets(hand("hand", HAND, 0.9, 1))
    ev = EvidenceWriter(tmp_path, blur=False).save(
        textured, d, np.array(["violating"]), HAND, "S", "e", "2026-01-02"
    )
    frame = read_image(ev.frame_path)
    assert np.abs(_region(frame, GLOVE).astype(int) - _region(textured, GLOVE)).mean() < 6


def test_unwritable_folder_is_logged_not_raised(textured, tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    d = dets(hand("hand", HAND, 0.9, 1))
    ev = EvidenceWriter(blocker).save(textured, d, np.array(["violating"]), HAND, "s", "e", "d")
    assert ev is None and "not saved" in caplog.text


def test_missing_or_broken_sidecar_reads_as_none(tmp_path):
    assert read_boxes(tmp_path / "nothing.jpg") is None
    (tmp_path / "bad.json").write_text("{not json")
    assert read_boxes(tmp_path / "bad.jpg") is None


def test_the_evidence_store_reads_and_deletes_only_inside_itself(tmp_path):
    from core.events.evidence import EvidenceStore, confined

    root = tmp_path / "evidence"
    (root / "2026-01-01").mkdir(parents=True)
    inside = root / "2026-01-01" / "a.jpg"
    inside.write_bytes(b"x")
    inside.with_suffix(".json").write_text("{}")
    outside = tmp_path / "glovewatch.sqlite"
    outside.write_bytes(b"store")
    (root / "2026-01-01" / "link.jpg").symlink_to(outside)
    ev = EvidenceStore(root)
    assert ev.ref(inside) == "2026-01-01/a.jpg" and ev.path("2026-01-01/a.jpg") == inside
    for escape in (
        outside,
        root / ".." / "glovewatch.sqlite",
        "../glovewatch.sqlite",
        root / "2026-01-01" / "link.jpg",
        root,
    ):
        assert ev.path(escape) is None and ev.ref(escape) is None
        assert ev.remove(escape) is None
    assert outside.read_bytes() == b"store"
    assert ev.remove(inside) == 1 and not inside.exists()
    assert not inside.with_suffix(".json").exists()  # its detections went with it
    assert read_boxes(outside, root) is None and confined(outside, root) is None


def test_find_evidence_resolves_inside_one_of_its_folders_only(tmp_path):
    """The first folder a stored path lies inside holds it; ``..`` and a symlink that lead
    out are refused, and so are detections whose side file is a symlink out."""
    from core.events.evidence import find_evidence

    live, demo = tmp_path / "evidence", tmp_path / "demo" / "evidence"
    for root in (live, demo):
        root.mkdir(parents=True)
    frame = demo / "a.jpg"
    frame.write_bytes(b"x")
    outside = tmp_path / "detections.json"
    outside.write_text('{"detections": []}')
    frame.with_suffix(".json").symlink_to(outside)
    (live / "out.jpg").symlink_to(tmp_path / "secret.jpg")
    found = find_evidence(str(frame), (live, demo))
    assert found is not None and found.path == frame and found.root == demo
    assert found.boxes() is None  # its side file leads out of the folder
    for escape in (live / ".." / "secret.jpg", live / "out.jpg", demo / ".." / ".." / "x"):
        assert find_evidence(escape, (live, demo)) is None


def test_purge_removes_only_old_day_folders_inside_the_store(tmp_path):
    from datetime import date

    root, outside = tmp_path / "evidence", tmp_path / "precious"
    outside.mkdir()
    (outside / "model.pt").write_bytes(b"keep me")
    for day in ("2026-01-01", "2026-01-02", "2026-03-01"):
        (root / day).mkdir(parents=True)
        (root / day / "saw-1.jpg").write_bytes(b"x" * 10)
    (root / "2026-01-01" / "saw-1.json").write_text("{}")
    (root / "2026-01-02" / "link.pt").symlink_to(outside / "model.pt")  # never followed
    (root / "2025-12-31").symlink_to(outside)  # a day-named link out of the store
    (root / "notes").mkdir()
    (root / "notes" / "a.txt").write_text("not a day")
    files, freed = EvidenceStore(root).purge_before(date(2026, 2, 1))
    assert (files, freed) == (3, 22)
    assert not (root / "2026-01-01").exists()
    assert (root / "2026-01-02" / "link.pt").is_symlink()  # its folder stays for it
    assert (outside / "model.pt").read_bytes() == b"keep me"
    assert (root / "2026-03-01" / "saw-1.jpg").exists() and (root / "notes" / "a.txt").exists()
    assert EvidenceStore(tmp_path / "none").purge_before(date(2026, 2, 1)) == (0, 0)
