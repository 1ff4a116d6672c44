"""One model scored on every split of every data set, two-class and class-agnostic."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.vision.scorecard import find_data_sets, labelled_classes, scorecard


def _gloves_only(mini: Path, target: Path) -> Path:
    """A copy of the fixture set whose labels keep only the gloves (as a set that labels one
    class), with no val split."""
    shutil.copytree(mini, target, ignore=shutil.ignore_patterns("*.cache"))
    shutil.rmtree(target / "images" / "val")
    shutil.rmtree(target / "labels" / "val")
    (target / "data.yaml").write_text(
        "path: .\ntrain: images/train\ntest: images/test\nnames: [glove, hand]\n"
    )
    for lab in (target / "labels").rglob("*.txt"):
        keep = [ln for ln in lab.read_text().splitlines() if ln.startswith("0 ")]
        lab.write_text("\n".join(keep) + ("\n" if keep else ""))
    return target


def test_labelled_classes_are_the_classes_with_boxes(mini, tmp_path):
    assert labelled_classes(mini) == ("glove", "hand")
    assert labelled_classes(_gloves_only(mini, tmp_path / "one")) == ("glove",)


def test_data_sets_are_found_once_at_any_depth(mini, tmp_path):
    (tmp_path / "group").mkdir()
    _gloves_only(mini, tmp_path / "group" / "one")
    shutil.copytree(mini, tmp_path / "two")
    found = find_data_sets([tmp_path, tmp_path / "two", tmp_path / "group"])
    assert [p.name for p in found] == ["two", "one"]
    assert find_data_sets([tmp_path / "missing"]) == []


@pytest.mark.slow
def test_a_partial_set_is_scored_only_on_its_class(default_weights, mini, tmp_path):
    one = _gloves_only(mini, tmp_path / "one")
    full = tmp_path / "full"
    shutil.copytree(mini, full)
    seen: list = []
    rows = scorecard(default_weights, [full, one], progress=seen.append)
    assert seen == rows
    assert [(r.data_set, r.split) for r in rows] == [  # 'one' has no val split
        ("full", "test"),
        ("full", "val"),
        ("one", "test"),
    ]
    both, partial = rows[0], rows[2]
    assert not both.partial and set(both.per_class_ap50) == {"glove", "hand"}
    assert partial.partial and set(partial.per_class_ap50) == {"glove"} and partial.note
    # The glove AP does not depend on the bare hands being labelled or not.
    assert partial.map50 == pytest.approx(both.per_class_ap50["glove"], abs=0.02)
    assert 0 < partial.hand_recall <= 1 and 0 < both.agnostic_ap50 <= 1
