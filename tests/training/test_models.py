"""The project's model variants (models/) build, run, train and reload through Ultralytics
after ``models.register()``, and their checkpoints pass the safe loader."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import models
from core.training.options import describe_variant, project_variants
from core.training.worker import register_project_modules
from models.modules import C3k2_SCConv, DyDetect, SCConv
from tests.conftest import MINI

VARIANT_YAMLS = models.variant_paths()
SWAPPED = [p for p in VARIANT_YAMLS if "scconv" in p.stem or "dyhead" in p.stem]


@pytest.fixture(scope="module", autouse=True)
def registered():
    """What a training worker does first: the variants' layers become buildable and
    loadable by Ultralytics' safe unpickler (it reloads best.pt for the final validation)."""
    register_project_modules()
    models.register()  # idempotent: parse_model is wrapped once


def test_variant_files_exist_and_are_offered_for_training():
    assert {"yolo11n-scconv.yaml", "yolo11n-dyhead.yaml"} <= {p.name for p in VARIANT_YAMLS}
    assert all(p.is_file() for p in VARIANT_YAMLS)
    offered = {p.name for p in project_variants()}
    assert {p.name for p in VARIANT_YAMLS} <= offered
    assert all(describe_variant(p) for p in VARIANT_YAMLS)  # each says what it changes


def _run(net) -> tuple[torch.Tensor, list[int]]:
    """One forward pass on a 160 px input: the prediction and the output width of every
    layer before the head."""
    outs: list[int] = []
    hooks = [
        m.register_forward_hook(lambda mod, inp, out: outs.append(out.shape[1]))
        for m in net.model[:-1]
    ]
    with torch.inference_mode():
        out = net(torch.rand(1, 3, 160, 160))
    for h in hooks:
        h.remove()
    return (out[0] if isinstance(out, (tuple, list)) else out), outs


@pytest.fixture(scope="module")
def plain_widths() -> list[int]:
    from ultralytics import YOLO

    return _run(YOLO("yolo11n.yaml").model.eval())[1]


@pytest.mark.parametrize("yaml_path", VARIANT_YAMLS, ids=lambda p: p.stem)
def test_variant_builds_and_runs(yaml_path, plain_widths):
    """Each variant builds, has its custom layers and predicts every level's boxes; the
    module swaps keep every layer's output width (channel bookkeeping is Ultralytics')."""
    from ultralytics import YOLO

    net = YOLO(str(yaml_path)).model.eval()
    kinds = {type(m) for m in net.modules()}
    if "scconv" in yaml_path.stem:
        assert C3k2_SCConv in kinds and SCConv in kinds
        assert sum(isinstance(m, C3k2_SCConv) for m in net.model) == 8  # every C3k2 swapped
    if "dyhead" in yaml_path.stem:
        assert isinstance(net.model[-1], DyDetect)
    strides = net.stride.tolist()
    assert strides[-3:] == [8.0, 16.0, 32.0]
    pred, widths = _run(net)
    if yaml_path in SWAPPED:
        assert widths == plain_widths
    anchors = sum(int(160 / s) ** 2 for s in strides)
    assert pred.shape == (1, 4 + 2, anchors)  # boxes + 2 classes at every level


@pytest.fixture
def four_images(tmp_path) -> Path:
    root = tmp_path / "tiny"
    for sub in ("images/train", "labels/train"):
        (root / sub).mkdir(parents=True)
    labelled = [
        p for p in sorted((MINI / "labels" / "train").glob("*.txt")) if p.read_text().strip()
    ][:4]
    for lab in labelled:
        shutil.copy(MINI / "images" / "train" / f"{lab.stem}.jpg", root / "images" / "train")
        shutil.copy(lab, root / "labels" / "train" / lab.name)
    data = root / "data.yaml"
    data.write_text(
        f"path: {root}\ntrain: images/train\nval: images/train\nnames:\n  0: glove\n  1: hand\n"
    )
    return data


@pytest.mark.slow
@pytest.mark.parametrize("yaml_path", VARIANT_YAMLS, ids=lambda p: p.stem)
def test_variant_trains_one_epoch_and_reloads(yaml_path, four_images, tmp_path, gw_home):
    from ultralytics import YOLO

    from core.vision.detector import Detector
    from core.vision.weights import check_weights

    model = YOLO(str(yaml_path))
    model.train(
        data=str(four_images),
        epochs=1,
        imgsz=64,
        batch=2,
        workers=0,
        device="cpu",
        project=str(tmp_path / "runs"),
        name="t",
        plots=False,
        amp=False,
        verbose=False,
    )
    last = tmp_path / "runs" / "t" / "weights" / "last.pt"
    assert last.is_file()
    check_weights(last)  # the checkpoint holds only allow-listed classes
    det = Detector(last, imgsz=64)  # loads like any .pt, through the safe loader
    assert det.info.names == {0: "glove", 1: "hand"}
    kinds = {type(m).__name__ for m in det.yolo.model.modules()}
    if "scconv" in yaml_path.stem:
        assert "C3k2_SCConv" in kinds
    if "dyhead" in yaml_path.stem:
        assert "DyDetect" in kinds


def test_scconv_spatial_unit_passes_a_gradient_to_its_groupnorm():
    """The SRU gates by the sigmoid re-weights (as the paper does), not a hard 0/1 mask, so
    the GroupNorm that scores the features learns: its gamma and beta get a gradient."""
    from models.modules import SRU

    torch.manual_seed(0)
    sru = SRU(32)
    x = torch.randn(2, 32, 8, 8)
    sru(x).square().mean().backward()
    assert sru.gn.weight.grad is not None and sru.gn.bias.grad is not None
    assert float(sru.gn.weight.grad.abs().sum()) > 0
    assert float(sru.gn.bias.grad.abs().sum()) > 0
