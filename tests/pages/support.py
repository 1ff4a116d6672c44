"""Helpers for page tests: sign in through the page's own form, read what a page shows, and a
stand-in for the browser camera (unreachable under AppTest)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

PASSWORD = "correct-horse-7"
USERS = {"vera": "viewer", "otto": "operator", "erin": "engineer", "ada": "admin"}

# Elements whose text Streamlit renders as Markdown.
# The input widgets AppTest can list by kind (buttons left out: each test says if they count).
INPUT_WIDGETS = (
    "text_input",
    "text_area",
    "number_input",
    "selectbox",
    "multiselect",
    "radio",
    "checkbox",
    "toggle",
    "slider",
    "select_slider",
    "date_input",
    "file_uploader",
)

MARKDOWN_ELEMENTS = (
    "title",
    "header",
    "subheader",
    "markdown",
    "caption",
    "info",
    "warning",
    "error",
    "success",
)


def sign_in(at: Any, name: str, password: str = PASSWORD) -> Any:
    """Fill the sign-in form of ``at`` and submit it (runs the app)."""
    at.text_input(key="gw-login-name").set_value(name)
    at.text_input(key="gw-login-password").set_value(password)
    at.button(key="FormSubmitter:gw-login-Sign in").click().run()
    return at


def texts(at: Any, kinds: tuple[str, ...] = MARKDOWN_ELEMENTS) -> list[str]:
    """Every Markdown-rendered string on the page (main area and sidebar)."""
    out = []
    for kind in kinds:
        out += [str(e.value) for e in at.get(kind)]
    return out


def values(elements: Any) -> list[str]:
    return [str(e.value) for e in elements]


def metrics(at: Any) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


class FakeWebrtc:
    """Stands in for ``webrtc_streamer``; keeps the arguments, so a test can feed real frames
    through the page's own callbacks."""

    def __init__(self) -> None:
        self.kwargs: dict[str, Any] = {}

    def __call__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


def plain(text: str) -> str:
    """``text`` as the reader sees it: the backslashes of Markdown escaping removed."""
    return re.sub(r"\\(.)", r"\1", text)


class _Payload:
    """Unpickling this runs a shell command (what a booby-trapped weights file does)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple:
        import os

        return (os.system, (self.command,))


def malicious_pt(path: Path, marker: Path) -> Path:
    """A ``.pt`` file in PyTorch's format whose pickle would create ``marker`` when loaded."""
    import torch

    torch.save({"model": _Payload(f"touch {marker}"), "epoch": 3}, path)
    return path


def tiny_png() -> bytes:
    """A valid 1x1 PNG (too small to show a hand)."""
    import cv2
    import numpy as np

    return cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))[1].tobytes()


def finished_run(store: Any, data_yaml: Path | None = None, name: str = "shipped-copy") -> Any:
    """A finished run whose best.pt is a copy of the shipped model, on ``data_yaml`` (default:
    the fixture set). For what the promotion controls do; no training is the subject."""
    import shutil

    from core.config import settings
    from core.training import runs
    from tests.conftest import MINI

    data = data_yaml or MINI / "data.yaml"
    folder = settings().runs_dir / f"{name}"
    rid = store.runs.create(
        name,
        data.parent.name,
        "yolo11n.yaml",
        "cpu",
        None,
        lambda _i: str(folder),
        lambda _f: {"data": str(data), "epochs": 1, "imgsz": 640},
    )
    weights = folder / "train" / "weights"
    weights.mkdir(parents=True)
    shutil.copyfile(settings().default_weights, weights / "best.pt")
    store.runs.set(rid, status="finished", best={"metrics/mAP50(B)": 0.5})
    return runs.get_run(store, rid)


def episode_picker(at: Any) -> Any:
    """History's "Open episode" selectbox (its key changes with its labels)."""
    [picker] = [s for s in at.selectbox if s.label == "Open episode"]
    return picker
