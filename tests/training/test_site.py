"""The on-site adaptation loop's core: collecting, holding out, labelling, fine-tune data."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from core.errors import DatasetError, RegistryError, TrainingError
from core.media import read_image
from core.training import site
from core.vision.detections import Detections, FrameDetections
from core.vision.roles import Role
from core.vision.yolo_data import label_path, read_labels

NAMES = {0: "glove", 1: "hand"}
ROLES = {0: Role.PROTECTED, 1: Role.VIOLATION}


def _dets(conf: list[float], cls: list[int], tracks: list[int] | None = None) -> Detections:
    boxes = [[10 + 40 * i, 10, 40 + 40 * i, 50] for i in range(len(conf))]
    return Detections.from_arrays(
        np.array(boxes, np.float32).reshape(-1, 4),
        np.array(conf, np.float32),
        np.array(cls),
        NAMES,
        ROLES,
        tracker_id=None if tracks is None else np.array(tracks),
    )


def test_dhash_finds_near_copies_and_tells_apart_other_pictures(gloved_images, bare_images):
    a = read_image(gloved_images[0])
    brighter = np.clip(a.astype(np.int16) + 6, 0, 255).astype(np.uint8)
    assert site.hamming(site.dhash(a), site.dhash(brighter)) < site.MIN_HAMMING
    assert site.hamming(site.dhash(a), site.dhash(read_image(bare_images[0]))) >= site.MIN_HAMMING


def test_time_blocks_hold_out_every_fifth_block_never_at_random(store, gloved_images, bare_images):
    # neighbouring frames (same 30-minute block) always share a side
    assert site.block_of("2026-11-01 10:00:01") == site.block_of("2026-11-01 10:29:59")
    assert site.block_of("2026-11-01 10:29:59") != site.block_of("2026-11-01 10:30:00")
    pictures = [*gloved_images, *bare_images][:10]
    for i, p in enumerate(pictures):  # two pictures in each of five half-hours
        site.collect(
            store,
            "Timed",
            read_image(p),
            "live",
            f"2026-11-01 {10 + i // 4}:{(i // 2) % 2 * 30 + i % 2:02d}:00",
        )
    sides = {f.record.block: f.record.split for f in site.frames(store, "Timed")}
    assert list(sides.values()) == ["train"] * 4 + ["holdout"]  # the 5th block, in order
    for f in site.frames(store, "Timed"):
        assert f.record.split == sides[f.record.block]


def test_uncertainty_is_high_near_the_threshold():
    assert site.uncertainty(_dets([0.27], [1]), 0.25) > 0.9
    assert site.uncertainty(_dets([0.95], [1]), 0.25) == 0.0
    assert site.uncertainty(Detections.empty(), 0.25) == 0.0


def test_collect_skips_near_copies_and_records_prelabels(store, gloved_images):
    image = read_image(gloved_images[0])
    first = site.collect(
        store,
        "Saw 2",
        image,
        "batch",
        "2026-11-01 10:00:00",
        dets=_dets([0.6], [0]),
        model="m.pt",
        by="ana",
    )
    assert first is not None
    assert site.collect(store, "Saw 2", image.copy(), "batch", "2026-11-01 10:05:00") is None
    fr = site.frames(store, "Saw 2")[0]
    assert fr.path.is_file() and fr.record.status == "prelabelled"
    assert fr.record.boxes[0]["class_id"] == 0 and 0 < fr.record.boxes[0]["x2"] <= 1
    hist = store.site.history(fr.id)
    assert [(h.by, h.action) for h in hist] == [("ana", "prelabel")]


def test_photos_without_a_time_split_by_look_alike_clusters(store, gloved_images, bare_images):
    for p in [*gloved_images, *bare_images]:
        site.collect(store, "Bench", read_image(p), "batch")
    frames = site.frames(store, "Bench")
    assert frames and all(f.record.block < 0 for f in frames)
    by_block: dict[int, set[str]] = {}
    for f in frames:
        by_block.setdefault(f.record.block, set()).add(f.record.split)
    assert all(len(sides) == 1 for sides in by_block.values())  # a cluster never straddles


def test_live_collector_keeps_the_most_uncertain_frame_of_each_window(
    store, gloved_images, bare_images
):
    c = site.LiveCollector(store, "Saw 3", every_s=2.0, conf=0.25, model="m.pt")
    sure, unsure = read_image(gloved_images[1]), read_image(bare_images[1])
    c.offer(0.0, sure, FrameDetections(_dets([0.95], [0]), sure.shape[:2]))
    c.offer(0.5, unsure, FrameDetections(_dets([0.3], [1]), unsure.shape[:2]))
    c.offer(1.0, sure, FrameDetections(_dets([0.9], [0]), sure.shape[:2]))
    c.offer(2.1, sure, FrameDetections(_dets([0.9], [0]), sure.shape[:2]))  # window ends
    frames = site.frames(store, "Saw 3")
    assert c.collected == 1 and len(frames) == 1
    assert site.hamming(frames[0].record.phash, site.dhash(unsure)) < site.MIN_HAMMING


def test_a_track_that_flips_class_is_collected(store, gloved_images):
    c = site.LiveCollector(store, "Saw 4", every_s=1.0, conf=0.25, model="m.pt")
    img = read_image(gloved_images[2])
    c.offer(0.0, img, FrameDetections(_dets([0.95], [0], [7]), img.shape[:2]))
    c.offer(0.5, img, FrameDetections(_dets([0.95], [1], [7]), img.shape[:2]))
    c.offer(1.2, img, FrameDetections(_dets([0.95], [1], [7]), img.shape[:2]))
    assert site.frames(store, "Saw 4")[0].record.uncertainty == 1.0


def test_save_labels_validates_clips_and_keeps_history(store, gloved_images):
    fid = site.collect(store, "Saw 5", read_image(gloved_images[3]), "batch")
    assert fid is not None
    boxes = site.save_labels(
        store,
        fid,
        [{"class_id": 1, "x1": 0.5, "y1": 0.6, "x2": 0.2, "y2": 1.4}],
        by="ben",
        done=True,
    )
    assert boxes == [{"class_id": 1, "x1": 0.2, "y1": 0.6, "x2": 0.5, "y2": 1.0}]
    rec = store.site.get(fid)
    assert rec is not None and rec.status == "done" and rec.updated_by == "ben"
    assert [h.action for h in store.site.history(fid)] == ["done"]
    with pytest.raises(DatasetError):
        site.save_labels(
            store, fid, [{"class_id": 5, "x1": 0, "y1": 0, "x2": 1, "y2": 1}], by="ben", done=False
        )


def test_export_and_import_yolo_round_trip_by_content(store, gloved_images, tmp_path):
    for i, p in enumerate(gloved_images[:4]):
        fid = site.collect(store, "Saw 6", read_image(p), "batch", f"2026-11-0{i + 1} 10:00:00")
        assert fid is not None
        site.save_labels(
            store,
            fid,
            [{"class_id": 0, "x1": 0.1, "y1": 0.1, "x2": 0.4, "y2": 0.5}],
            by="ana",
            done=True,
        )
    data = site.export_yolo(store, "Saw 6", tmp_path / "out")
    doc = yaml.safe_load(data.read_text())
    exported = sorted((tmp_path / "out" / "images").rglob("*.jpg"))
    assert len(exported) == 4 and doc["names"] == {0: "glove", 1: "hand"}
    # a labeller fixes one file outside (renamed), and imports it back: matched by content
    fixed = tmp_path / "fixed"
    (fixed / "images" / "train").mkdir(parents=True)
    (fixed / "labels" / "train").mkdir(parents=True)
    shutil.copy(exported[0], fixed / "images" / "train" / "renamed.jpg")
    (fixed / "labels" / "train" / "renamed.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    (fixed / "data.yaml").write_text("path: .\ntrain: images/train\nnames: [glove, hand]\n")
    rep = site.import_yolo(store, "Saw 6", fixed / "data.yaml", by="cy")
    assert rep.added == 1 and rep.near_copies == 0 and len(site.frames(store, "Saw 6")) == 4
    changed = [f for f in site.frames(store, "Saw 6") if f.record.updated_by == "cy"]
    assert len(changed) == 1 and changed[0].record.boxes[0]["class_id"] == 1


def test_finetune_data_never_holds_held_out_frames(store, gloved_images, mini, monkeypatch):
    monkeypatch.setattr(site, "_names", lambda store, station: ("glove", "hand"))
    held = train = 0
    for i, p in enumerate(gloved_images[:8]):
        fid = site.collect(
            store, "Saw 7", read_image(p), "batch", split="holdout" if i % 4 == 0 else "train"
        )
        assert fid is not None
        site.save_labels(
            store,
            fid,
            [{"class_id": 0, "x1": 0.1, "y1": 0.1, "x2": 0.5, "y2": 0.5}],
            by="ana",
            done=True,
        )
        held, train = held + (i % 4 == 0), train + (i % 4 != 0)
    plan = site.plan_finetune(
        store, "Saw 7", mini, epochs=2, imgsz=160, base_ratio=1.0, device="cpu"
    )
    assert plan.site_images == train and plan.base_images == train
    assert plan.estimate_s > 0 and "about" in plan.describe()
    data = site.build_finetune_data(store, plan)
    doc = yaml.safe_load(data.read_text())
    listed = Path(doc["train"]).read_text().split()
    held_paths = {str(f.path.resolve()) for f in site.frames(store, "Saw 7", split="holdout")}
    assert len(listed) == 2 * train and not held_paths & set(listed)
    for line in listed:  # every site image has its label file where Ultralytics looks
        assert label_path(Path(line)).is_file()
    hold = site.holdout_data(store, "Saw 7")
    assert (
        hold is not None
        and len(Path(yaml.safe_load(hold.read_text())["test"]).read_text().split()) == held
    )


def test_plan_needs_labelled_train_frames(store, mini):
    with pytest.raises(TrainingError, match="no labelled train frames"):
        site.plan_finetune(store, "Nowhere", mini)


def test_promote_station_refuses_a_large_base_drop_without_confirmation():
    class Score:
        def __init__(self, m: float):
            self.map50 = m

    cmp = site.StationComparison(
        "Saw 8",
        None,
        (Score(0.80), Score(0.85)),  # type: ignore[arg-type]
        Path("x.pt"),
    )
    assert cmp.base_drop == pytest.approx(0.05) and cmp.needs_confirmation
    with pytest.raises(RegistryError, match="confirm"):
        site.promote_station(None, "Saw 8", 1, cmp, by="ana")  # type: ignore[arg-type]


@pytest.mark.slow
def test_complete_missing_adds_the_unlabelled_class_only_where_nothing_is_labelled(
    mini, tmp_path, default_weights
):
    # a copy of the mini set whose hand labels are gone, as in a glove-only data set
    src = tmp_path / "gloves-only"
    shutil.copytree(mini, src)
    removed = 0
    for lab in (src / "labels").rglob("*.txt"):
        lines = lab.read_text().splitlines()
        keep = [line for line in lines if not line.startswith("1 ")]
        removed += len(lines) - len(keep)
        lab.write_text("".join(f"{line}\n" for line in keep))
    rep = site.complete_missing(
        src / "data.yaml", "hand", tmp_path / "done", default_weights, conf=0.5
    )
    assert rep.images == 40 and rep.added > removed // 2
    for lab in (tmp_path / "done" / "labels").rglob("*.txt"):
        shapes = read_labels(lab)
        glove = [s for s in shapes if s.class_id == 0]
        assert len(glove) == sum(
            1
            for line in (src / "labels" / lab.parent.name / lab.name).read_text().splitlines()
            if line.startswith("0 ")
        )
