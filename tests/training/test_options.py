"""What a run trains with: the built-in architectures by size and task, and the Ultralytics
options a user may set."""

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


@pytest.mark.parametrize(
    "text,option",
    [
        ("{cfg: x}", "cfg"),
        ("{project: /tmp}", "project"),
        ("{data: /etc/data.yaml}", "data"),
        ("{pretrained: some.pt}", "pretrained"),
        ("{save_dir: /tmp/x}", "save_dir"),
        ("lr0: 0.01\nwarp_speed: 9", "warp_speed"),
        ("{name: ../../x}", "name"),
        ("{model: evil.pt}", "model"),
        ("{tracker: botsort.yaml}", "tracker"),
    ],
)
def test_extra_options_that_name_files_or_are_unknown_are_refused(text, option):
    with pytest.raises(TrainingError, match=f"not allowed here: {option}") as caught:
        options.parse_extra(text)
    assert "Allowed are" in str(caught.value)


def test_allowed_extra_options_pass():
    text = "{lr0: 0.005, mosaic: 0.5, cos_lr: true, freeze: [0, 1], optimizer: AdamW}"
    assert options.parse_extra(text) == {
        "lr0": 0.005,
        "mosaic": 0.5,
        "cos_lr": True,
        "freeze": [0, 1],
        "optimizer": "AdamW",
    }
    assert options.parse_extra("") == {} and options.parse_extra("  \n") == {}
    assert set(options.parse_extra("plots: false\nworkers: 0")) <= options.ALLOWED_EXTRA


@pytest.mark.parametrize(
    "text,match",
    [
        ("{lr0: [unclosed", "not valid YAML"),
        ("- lr0\n- mosaic", "key: value"),
        ("{optimizer: {nested: 1}}", "plain number"),
        (f"{{optimizer: {'x' * 80}}}", "plain"),
    ],
)
def test_malformed_extra_options_are_refused(text, match):
    with pytest.raises(TrainingError, match=match):
        options.parse_extra(text)


def test_user_options_never_move_the_run_folder(tmp_path):
    spec = options.TrainSpec(data="/d/data.yaml", model="yolo11n.yaml", extra={"lr0": 0.002})
    args = options.train_args(spec, tmp_path / "run", "cpu")
    assert args["project"] == str(tmp_path / "run") and args["name"] == "train"
    assert args["lr0"] == 0.002 and args["data"] == "/d/data.yaml"
    with pytest.raises(TrainingError, match="project"):
        options.train_args(
            options.TrainSpec(data="d", model="m", extra={"project": "/tmp"}), tmp_path, "cpu"
        )
