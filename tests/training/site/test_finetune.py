"""A station fine-tune's plan and data: held-out frames are never trained on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from core.errors import TrainingError
from core.media import read_image
from core.training import site
from core.training.site import compare
from core.vision.yolo_data import label_path


def test_finetune_data_never_holds_held_out_frames(store, gloved_images, mini, monkeypatch):
    # the station has no promoted model here: name its classes without loading one
    monkeypatch.setattr(compare, "class_names", lambda store, station: ("glove", "hand"))
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


def test_the_plan_says_its_time_in_minutes_only_when_it_has_some():
    plan = site.FinetunePlan("Saw 7", Path("d.yaml"), 2, 4, 0, 10, 640, 10, 16, "cpu", 36.4)
    assert plan.describe().endswith("on cpu: about 36 s")
    assert replace(plan, estimate_s=125.0).describe().endswith("about 2 min 05 s")
