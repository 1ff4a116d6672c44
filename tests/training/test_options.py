"""What a run trains with: the built-in architectures by size and task."""

from __future__ import annotations

import pytest

from core.errors import TrainingError
from core.training import options


def test_every_size_and_task_names_a_built_in_architecture():
    for size in options.SIZES:
        assert size in options.SIZE_LABELS
        for task in options.TASKS:
            assert options.architecture(size, task) in options.ARCHITECTURES
    assert options.architecture("n", "detect") == "yolo11n.yaml"
    assert options.architecture("s", "segment") == "yolo11s-seg.yaml"


@pytest.mark.parametrize(("size", "task"), [("q", "detect"), ("n", "pose"), ("", "")])
def test_an_unknown_size_or_task_is_refused(size, task):
    with pytest.raises(TrainingError, match="no YOLO11"):
        options.architecture(size, task)
