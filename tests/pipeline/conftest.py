"""Fixtures of the pipeline tests: small inference settings, real clips, a shared export."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.vision.detector import InferenceParams

# The shipped model gets the fixture images used here right at 320 px (fast on a CPU).
FAST = InferenceParams(imgsz=320)


@pytest.fixture(scope="session")
def fast_params() -> InferenceParams:
    return FAST


@pytest.fixture(scope="session")
def clean_gloved(gloved_images: list[Path]) -> list[Path]:
    """Gloved-only images on which the shipped model sees gloves and no bare hand at 320."""
    return [gloved_images[i] for i in (0, 1, 2, 3, 5, 7)]


@pytest.fixture(scope="session")
def shift_clip(
    tmp_path_factory: pytest.TempPathFactory, bare_images: list[Path], clean_gloved: list[Path]
) -> Path:
    """5 fps, 640x480: bare hand 1.6 s, gloved 3.2 s, bare hand 1.6 s (32 frames): two
    bare-hand episodes split by a gap longer than the 2 s grace."""
    from core.pipeline.clips import write_clip

    path = tmp_path_factory.mktemp("clips") / "shift.mp4"
    return write_clip(
        [bare_images[0], clean_gloved[0], clean_gloved[1], bare_images[1]],
        path,
        fps=5,
        seconds_each=1.6,
    )


@pytest.fixture(scope="session")
def _openvino_exports(tmp_path_factory: pytest.TempPathFactory, default_weights: Path) -> Path:
    """The shipped model exported to OpenVINO at 320 px once per test session."""
    from core.vision.detector import export_model

    home = tmp_path_factory.mktemp("ov-export") / "home"
    old = os.environ.get("GLOVEWATCH_HOME")
    os.environ["GLOVEWATCH_HOME"] = str(home)
    try:
        exported = export_model(default_weights, "openvino", FAST.imgsz)
    finally:
        if old is None:
            os.environ.pop("GLOVEWATCH_HOME", None)
        else:
            os.environ["GLOVEWATCH_HOME"] = old
    return exported.parent


@pytest.fixture
def openvino_ready(gw_home: Path, _openvino_exports: Path) -> Path:
    """This test's data folder with the session's OpenVINO export in its export cache (the
    cache is keyed by model hash and size, so the app finds it instead of exporting)."""
    from core.config import ensure_home

    exports = ensure_home().exports_dir
    link = exports / _openvino_exports.name
    link.symlink_to(_openvino_exports, target_is_directory=True)
    return link
