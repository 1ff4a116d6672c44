"""Widgets several pages share: page set-up, model choice, thresholds."""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

import core  # noqa: F401  (applies the offline settings before anything imports ultralytics)
from core.config import Settings, ensure_home, settings
from core.detector import InferenceParams, ModelError, ModelInfo, file_sha256, inspect_model
from core.logs import setup_logging
from core.registry import active_weights

log = logging.getLogger("glovewatch.ui")


def page_setup(title: str, icon: str = "🧤") -> Settings | None:
    """Page config, logging and the data folder; shows an error and returns None if unwritable."""
    st.set_page_config(page_title=f"{title} · GloveWatch", page_icon=icon, layout="wide")
    setup_logging()
    try:
        return ensure_home()
    except PermissionError as exc:
        log.error("%s", exc)
        st.error(str(exc))
        return None


@st.cache_data(show_spinner=False, max_entries=32)
def _describe(path: str, mtime: float) -> ModelInfo:
    return inspect_model(path)


def describe_model(path: Path) -> ModelInfo:
    """Validated description of a weights file (cached by path and modification time)."""
    return _describe(str(path), path.stat().st_mtime if path.exists() else 0.0)


def save_upload(name: str, data: bytes) -> Path:
    """Keep an uploaded weights file under the data folder, named by content hash."""
    folder = settings().uploads_dir
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".incoming-{Path(name).name}"
    tmp.write_bytes(data)
    target = folder / f"{file_sha256(tmp)[:16]}-{Path(name).name}"
    tmp.replace(target)
    return target


def model_picker(key: str) -> tuple[Path, ModelInfo] | None:
    """Choose the active model or upload a ``.pt``; returns ``None`` (with a message) if unusable."""
    choice = st.radio("Model", ["Active model", "Upload weights (.pt)"], key=f"{key}-src",
                      horizontal=True)
    path: Path | None = active_weights()
    if choice != "Active model":
        up = st.file_uploader("Weights file", type=["pt"], key=f"{key}-upload",
                              help="A YOLO detect or segment .pt file, e.g. a model trained on "
                                   "your own plant's images.")
        if up is None:
            st.info("Upload a .pt weights file, or choose the active model.")
            return None
        path = save_upload(up.name, up.getvalue())
    try:
        info = describe_model(path)
    except ModelError as exc:
        log.warning("model rejected: %s", exc)
        st.error(f"This weights file cannot be used: {exc}")
        return None
    st.caption(f"**{info.name}** · {info.task} · classes: {', '.join(info.names.values())}")
    return path, info


def threshold_controls(key: str, s: Settings) -> InferenceParams:
    """Confidence, IoU and image-size controls."""
    conf = st.slider("Confidence threshold", 0.05, 0.95, s.conf, 0.05, key=f"{key}-conf")
    iou = st.slider("IoU threshold (NMS)", 0.1, 0.95, s.iou, 0.05, key=f"{key}-iou")
    imgsz = st.select_slider("Image size", [320, 416, 480, 640, 800, 960, 1280], s.imgsz,
                             key=f"{key}-imgsz")
    return InferenceParams(conf=conf, iou=iou, imgsz=int(imgsz))
