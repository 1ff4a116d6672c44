"""Labels of site frames: corrections with history, YOLO export and import, completion."""

from __future__ import annotations

import shutil

import pytest
import yaml

from core.errors import DatasetError
from core.media import read_image
from core.training import site
from core.vision.yolo_data import read_labels


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


def test_an_edit_is_stored_only_when_it_changes_or_finishes_a_frame(store, gloved_images):
    fid = site.collect(store, "Saw 11", read_image(gloved_images[4]), "batch")
    assert fid is not None
    box = {"class_id": 1, "x1": 0.2, "y1": 0.2, "x2": 0.5, "y2": 0.6}

    def frame() -> site.SiteFrame:
        return next(f for f in site.frames(store, "Saw 11") if f.id == fid)

    assert not site.save_edit(store, frame(), None, False, "ana", 2)  # nothing sent
    assert not site.save_edit(store, frame(), [], False, "ana", 2)  # the same (no) boxes
    assert site.save_edit(store, frame(), [box], False, "ana", 2)  # changed, not done
    assert frame().record.status != "done" and frame().record.boxes == [box]
    assert site.save_edit(store, frame(), None, True, "ben", 2)  # done as it is
    assert frame().record.status == "done" and frame().record.updated_by == "ben"
    assert [h.action for h in store.site.history(fid)] == ["edit", "done"]
