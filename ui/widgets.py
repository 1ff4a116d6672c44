"""Widgets the pages share: page set-up (data folder, store, sign-in, role), model choice,
thresholds."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import streamlit as st

from core.accounts import Account, Permission, serve_refusal
from core.config import Settings, apply_offline_environment, ensure_home, settings
from core.errors import AccessDenied, GloveWatchError, ModelError
from core.events.recovery import recover
from core.logs import setup_logging
from core.storage import Store, open_store
from core.training.registry import active_model
from core.vision.detector import InferenceParams, ModelInfo, file_sha256, inspect_model
from core.vision.weights import check_weights, quarantine
from ui.auth import current_account, sign_out_button
from ui.text import md

log = logging.getLogger("glovewatch.ui")
T = TypeVar("T")


@dataclass(frozen=True)
class Page:
    """What a page works with once it may be shown."""

    settings: Settings
    store: Store
    account: Account


@st.cache_resource(show_spinner=False)
def _recover_once(url: str) -> None:
    # Once per app process: close what a crashed process left open.
    recover(open_store(url))


def page_setup(title: str, icon: str = "🧤", permission: Permission | None = None) -> Page:
    """Page config, logging, data folder, store, sign-in and the page's permission.

    Anything that stops the page (an unwritable data folder, a broken store, no sign-in, a
    role that may not see the page) is said on the page and ends the script here.
    """
    # Each page is its own entry point (a browser may open any of them first): the offline
    # environment and the safe weights loader before anything imports ultralytics.
    apply_offline_environment()
    st.set_page_config(page_title=f"{title} · GloveWatch", page_icon=icon, layout="wide")
    setup_logging()
    try:
        s = ensure_home()
        store = open_store()
        _recover_once(store.url)
    except GloveWatchError as exc:
        log.error("%s", exc)
        st.error(str(exc))
        st.stop()
    refusal = serve_refusal(store, str(st.get_option("server.address") or ""))
    if refusal:
        log.error("%s", refusal)
        st.error(refusal)
        st.stop()
    account = current_account(store, s)
    if account is None:
        st.stop()
    assert account is not None
    _page_links(account)
    sign_out_button(store, account)
    if permission is not None:
        try:
            account.require(permission)
        except AccessDenied as exc:
            log.warning("page %s refused: %s", title, exc)
            st.error(f"{md(exc)} Ask an admin for access.")  # names a user: no Markdown
            st.stop()
    return Page(s, store, account)


# The sidebar's pages and who may open each (Streamlit's own list is switched off in
# .streamlit/config.toml: it would show every page to every role).
NAV: tuple[tuple[str, str, str, Permission | None], ...] = (
    ("Home.py", "Overview", "🧤", None),
    ("pages/1_Live.py", "Live", "🎥", Permission.RUN_LIVE),
    ("pages/2_Batch.py", "Batch", "🗂️", Permission.RUN_BATCH),
    ("pages/3_History.py", "History", "📈", Permission.VIEW_HISTORY),
    ("pages/8_Cameras.py", "Cameras", "📹", Permission.VIEW_HISTORY),
    ("pages/4_Training.py", "Training", "🏋️", Permission.TRAIN),
    ("pages/5_Stations.py", "Stations", "🏭", Permission.EDIT_STATIONS),
    ("pages/6_Label.py", "Label", "🏷️", Permission.LABEL),
    ("pages/7_Admin.py", "Admin", "🔐", Permission.MANAGE_USERS),
)


def _page_links(account: Account) -> None:
    for path, label, icon, needs in NAV:
        if needs is None or account.can(needs):
            st.sidebar.page_link(path, label=label, icon=icon)


def warned(value: T, notes: Sequence[str]) -> T:
    """``value``, after showing each of ``notes`` as a warning (e.g. a range that was narrowed,
    rows that could not be read)."""
    for note in notes:
        st.warning(note)
    return value


def guard(page: Page, permission: Permission) -> bool:
    """Whether the signed-in account may do ``permission`` (for actions inside a page)."""
    return page.account.can(permission)


@st.cache_data(show_spinner=False, max_entries=32)
def _describe(path: str, mtime: float) -> ModelInfo:
    return inspect_model(path)


def describe_model(path: Path) -> ModelInfo:
    """Validated description of a weights file (cached by path and modification time)."""
    return _describe(str(path), path.stat().st_mtime if path.exists() else 0.0)


def save_upload(name: str, data: bytes) -> Path:
    """Keep an uploaded weights file under the data folder, named by content hash.

    The file is checked before anything loads it; a refused file is deleted again and the
    :class:`ModelError` says why.
    """
    folder = settings().uploads_dir
    folder.mkdir(parents=True, exist_ok=True)
    safe_name = Path(name).name.replace("/", "_")[:100] or "weights.pt"
    tmp = folder / f".incoming-{safe_name}"
    tmp.write_bytes(data)
    target = folder / f"{file_sha256(tmp)[:16]}-{safe_name}"
    tmp.replace(target)
    try:
        check_weights(target)
    except ModelError as exc:
        quarantine(target, folder)
        # name the file as the user uploaded it, not by its stored (hash-prefixed) name
        raise ModelError(str(exc).replace(target.name, safe_name)) from exc
    return target


def model_picker(key: str, page: Page, station: str | None = None) -> tuple[Path, ModelInfo] | None:
    """Choose the active model (the station's own when it has one), or (engineers) upload a
    ``.pt``; None (with a message) if unusable."""
    choices = ["Active model"]
    if page.account.can(Permission.UPLOAD_MODELS):
        choices.append("Upload weights (.pt)")
    choice = st.radio("Model", choices, key=f"{key}-src", horizontal=True)
    active = active_model(page.store, station)
    path = active.path
    if choice != "Active model":
        up = st.file_uploader(
            "Weights file",
            type=["pt"],
            key=f"{key}-upload",
            help="A YOLO detect or segment .pt file, e.g. a model trained on "
            "your own plant's images.",
        )
        if up is None:
            st.info("Upload a .pt weights file, or choose the active model.")
            return None
        try:
            path = save_upload(up.name, up.getvalue())
        except ModelError as exc:
            log.warning("upload %s refused: %s", up.name, exc)
            st.error(f"This weights file cannot be used: {md(exc)}")  # names the upload
            return None
    try:
        info = describe_model(path)
    except ModelError as exc:
        log.warning("model rejected: %s", exc)
        st.error(f"This weights file cannot be used: {md(exc)}")
        return None
    label = active.label if choice == "Active model" else md(info.name)
    st.caption(f"{label} · {info.task} · classes: {md(', '.join(info.names.values()))}")
    return path, info


def threshold_controls(key: str, s: Settings) -> InferenceParams:
    """Confidence, IoU and image-size controls."""
    conf = st.slider("Confidence threshold", 0.05, 0.95, s.conf, 0.05, key=f"{key}-conf")
    iou = st.slider("IoU threshold (NMS)", 0.1, 0.95, s.iou, 0.05, key=f"{key}-iou")
    imgsz = st.select_slider(
        "Image size", [320, 416, 480, 640, 800, 960, 1280], s.imgsz, key=f"{key}-imgsz"
    )
    return InferenceParams(conf=conf, iou=iou, imgsz=int(imgsz))
