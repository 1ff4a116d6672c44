"""The project's model variants build, run and train through Ultralytics after register()."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import core  # noqa: F401  (offline environment before ultralytics)
import models
from models.modules import C3k2_SCConv, DyDetect, SCConv

VARIANT_YAMLS = models.variant_paths()


@pytest.fixture(scope="module", autouse=True)
def registered():
    models.register()
    models.register()  # idempotent: parse_model is wrapped once


def test_variant_files_exist():
    assert [p.name for p in VARIANT_YAMLS] == ["yolo11n-scconv.yaml", "yolo11n-dyhead.yaml"]
    assert all(p.is_file() for p in VARIANT_YAMLS)


@pytest.mark.parametrize("yaml_path", VARIANT_YAMLS, ids=lambda p: p.stem)
def test_variant_builds_and_runs(yaml_path):
    from ultralytics import YOLO

    net = YOLO(str(yaml_path)).model.eval()
    kinds = {type(m) for m in net.modules()}
    if "scconv" in yaml_path.stem:
        assert C3k2_SCConv in kinds and SCConv in kinds
        assert sum(isinstance(m, C3k2_SCConv) for m in net.model) == 8  # every C3k2 swapped
    else:
        assert isinstance(net.model[-1], DyDetect)
    assert net.stride.tolist() == [8.0, 16.0, 32.0]
    with torch.inference_mode():
        out = net(torch.rand(1, 3, 160, 160))
    pred = out[0] if isinstance(out, (tuple, list)) else out
    assert pred.shape == (1, 4 + 2, (20 * 20 + 10 * 10 + 5 * 5))  # boxes + 2 classes


def test_widths_match_plain_yolo11n():
    """The swap keeps every layer's output width (channel bookkeeping is Ultralytics')."""
    from ultralytics import YOLO

    def widths(path: str) -> list[int]:
        net = YOLO(path).model.eval()
        outs: list[int] = []
        for m in net.model[:-1]:
            m.register_forward_hook(lambda mod, inp, out: outs.append(out.shape[1]))
        with torch.inference_mode():
            net(torch.rand(1, 3, 64, 64))
        return outs

    plain = widths("yolo11n.yaml")
    assert widths(str(VARIANT_YAMLS[0])) == plain
    assert widths(str(VARIANT_YAMLS[1])) == plain


@pytest.fixture
def four_images(gloves_dir, tmp_path) -> Path:
    root = tmp_path / "tiny"
    for sub in ("images/train", "labels/train"):
        (root / sub).mkdir(parents=True)
    labelled = [p for p in sorted((gloves_dir / "labels" / "train").glob("*.txt"))
                if p.read_text().strip()][:4]
    for lab in labelled:
        img = next((gloves_dir / "images" / "train").glob(lab.stem + ".*"))
        shutil.copy(img, root / "images" / "train" / img.name)
        shutil.copy(lab, root / "labels" / "train" / lab.name)
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/train\n"
                    "names:\n  0: glove\n  1: hand\n")
    return data


@pytest.mark.slow
@pytest.mark.parametrize("yaml_path", VARIANT_YAMLS, ids=lambda p: p.stem)
def test_variant_trains_and_reloads(yaml_path, four_images, tmp_path):
    from ultralytics import YOLO

    model = YOLO(str(yaml_path))
    model.train(data=str(four_images), epochs=1, imgsz=64, batch=2, workers=0, device="cpu",
                project=str(tmp_path / "runs"), name="t", plots=False, amp=False, verbose=False)
    best = tmp_path / "runs" / "t" / "weights" / "last.pt"
    assert best.is_file()
    # A trained variant loads like any .pt (the checkpoint pickles models.modules classes).
    from core.detector import Detector

    det = Detector(best, imgsz=64)
    assert det.info.names == {0: "glove", 1: "hand"}
    kinds = {type(m).__name__ for m in det.yolo.model.modules()}
    assert {"C3k2_SCConv", "DyDetect"} & kinds
