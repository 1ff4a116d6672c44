"""Merging data sets that label different classes, without teaching that a hand is background."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.errors import DatasetError
from core.training.merge import inspect_source, merge_datasets
from core.vision.yolo_data import read_layout, read_split


def _one_class(mini: Path, target: Path, keep: int, readme: str | None) -> Path:
    """A copy of the fixture set that keeps only class ``keep``'s boxes."""
    shutil.copytree(mini, target, ignore=shutil.ignore_patterns("*.cache"))
    for lab in (target / "labels").rglob("*.txt"):
        lines = [ln for ln in lab.read_text().splitlines() if ln.startswith(f"{keep} ")]
        lab.write_text("\n".join(lines) + ("\n" if lines else ""))
    if readme is not None:
        (target / "README.md").write_text(readme)
    return target


GLOVES_ONLY = "# Gloves\n\n**What is labelled:** glove. **Bare hands are NOT labelled.**\n"


def test_a_readme_names_what_a_set_labels(mini, tmp_path):
    assert inspect_source(mini).labelled == ("glove", "hand")
    src = inspect_source(_one_class(mini, tmp_path / "g", 0, GLOVES_ONLY))
    assert src.labelled == ("glove",) and src.partial
    # without a README, the classes that have boxes
    assert inspect_source(_one_class(mini, tmp_path / "h", 1, None)).labelled == ("hand",)


def test_bad_sets_are_refused_in_words(mini, tmp_path):
    odd = tmp_path / "odd"
    shutil.copytree(mini, odd)
    (odd / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames: [glove, person]\n"
    )
    with pytest.raises(DatasetError, match="person, which GloveWatch does not know"):
        inspect_source(odd)
    liar = _one_class(mini, tmp_path / "liar", 1, GLOVES_ONLY)  # hands, README says gloves
    with pytest.raises(DatasetError, match="README says hand is not labelled, yet"):
        inspect_source(liar)
    with pytest.raises(DatasetError, match="needs a teacher"):
        merge_datasets([mini], tmp_path / "out", strategy="pseudo")
    with pytest.raises(DatasetError, match="Unknown merge strategy"):
        merge_datasets([mini], tmp_path / "out", strategy="mask")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(DatasetError, match="already holds files"):
        merge_datasets([mini], tmp_path / "full", strategy="naive")


def test_naive_merge_keeps_one_class_sets_out_of_val_and_test(mini, tmp_path):
    part = _one_class(mini, tmp_path / "g", 0, GLOVES_ONLY)
    (part / "images" / "train" / "broken.jpg").write_text("not an image")
    rep = merge_datasets([mini, part], tmp_path / "out", strategy="naive")
    full = read_layout(mini)
    n = {s: len(full.images(s)) for s in ("train", "val", "test")}
    assert rep.images == {"train": 2 * n["train"], "val": n["val"], "test": n["test"]}
    assert rep.skipped == {"g": ["broken.jpg"]} and rep.pseudo == {"gloves-mini": 0, "g": 0}
    assert rep.sources == {"gloves-mini": ["glove", "hand"], "g": ["glove"]}
    merged = read_split(rep.data_yaml, "train")
    assert len(merged) == 2 * n["train"]
    assert json.loads((tmp_path / "out" / "merge.json").read_text())["strategy"] == "naive"


@pytest.mark.slow
def test_the_teacher_labels_the_missing_class_away_from_labelled_hands(
    default_weights, mini, tmp_path
):
    part = _one_class(mini, tmp_path / "g", 0, GLOVES_ONLY)
    rep = merge_datasets([mini, part], tmp_path / "out", strategy="pseudo", teacher=default_weights)
    assert rep.pseudo["gloves-mini"] == 0  # a set that labels both gets no teacher boxes
    hands_removed = sum(
        1 for item in read_split(mini, "train") for b in item.boxes if b.class_id == 1
    )
    assert 0 < rep.pseudo["g"] <= hands_removed + 2
    for item in read_split(rep.data_yaml, "train"):
        if not item.image.name.startswith("g__"):
            continue
        gloves = [b for b in item.boxes if b.class_id == 0]
        for h in (b for b in item.boxes if b.class_id == 1):  # never on top of a glove
            assert all(abs(h.cx - g.cx) > 0.01 or abs(h.cy - g.cy) > 0.01 for g in gloves)
