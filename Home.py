"""GloveWatch overview: what it does, the active model, today's figures, the way to each page."""

import logging

import pandas as pd
import streamlit as st

from core.accounts import Permission
from core.analytics import history as h
from core.analytics import reading
from core.config import PROJECT_ROOT
from core.errors import GloveWatchError
from core.training.registry import active_model
from core.vision.summary import ModelSummary, model_summary
from ui.text import md
from ui.widgets import page_setup

HOME_FIGURES = ("compliance", "episodes", "frames", "monitored")

log = logging.getLogger("glovewatch.pages.home")

page = page_setup("Overview")
st.title("🧤 GloveWatch")
st.write(
    "GloveWatch watches machine-shop cameras and tells **gloved hands** from **bare hands**. "
    "Every hand that breaks a station's glove rule becomes a violation episode with "
    "privacy-safe evidence, and the episodes turn into compliance figures per station, shift "
    "and day."
)

left, right = st.columns([3, 2])
with left:
    st.subheader("Today")
    with st.spinner("Reading today's figures …"):
        try:
            today: h.Kpis | None = h.kpis(page.store, h.today_filter())
            gone = reading.unreadable(page.store, h.today_filter())
        except GloveWatchError as exc:  # a damaged store must not take the overview down
            log.error("store unavailable: %s", exc)
            st.error(f"The event store could not be read: {exc}")
            today = None
    if today is not None:
        # the same figures as History's, defined once in core.analytics.history; two by two:
        # four in a row cut the labels off beside the model column
        shown = {f.key: f for f in h.headline(today)}
        for col, key in zip(st.columns(2) + st.columns(2), HOME_FIGURES):
            col.metric(shown[key].label, shown[key].text, help=shown[key].help)
        if gone.note:  # rows left out of today's figures, said rather than raised
            st.warning(gone.note)
        if not (today.total.frames or today.total.watched_s or today.total.episodes):
            st.info(
                "Nothing recorded today yet. Try the **Batch** page with a few photos, or "
                "the **Live** page with your webcam or a video file."
            )

with right:
    st.subheader("Active model")
    active = active_model(page.store)
    try:
        with st.spinner("Reading the model …"):
            info: ModelSummary | None = model_summary(active.path, page.settings.exports_dir)
    except GloveWatchError as exc:
        st.error(f"The active model cannot be loaded: {md(exc)}")  # names its file
        info = None
    if info is not None:
        card = active.card
        st.write(f"**{md(card.title if card else info.name)}**  \n{md(active.label)}")
        st.dataframe(
            pd.DataFrame({"class": info.classes, "what it means": info.meanings}),
            hide_index=True,
            width="stretch",
        )
        with st.expander("Details"):
            st.caption(f"{info.task} model · content hash (sha256) {info.sha256[:12]}")
            if card and card.map50 is not None:
                per_class = ", ".join(f"AP50 {k} {v:.3f}" for k, v in card.per_class_ap50.items())
                st.caption(
                    f"Scores on {md(card.score_source())}: mAP50 {card.map50:.3f}"
                    + (f", mAP50-95 {card.map50_95:.3f}" if card.map50_95 is not None else "")
                    + (f"; {md(per_class)}" if per_class else "")
                )

st.subheader("Pages")
PAGES = [
    (
        "pages/1_Live.py",
        "Live monitoring: webcam, camera URL or video replay",
        "🎥",
        Permission.RUN_LIVE,
    ),
    ("pages/2_Batch.py", "Batch detection: photos and videos", "🗂️", Permission.RUN_BATCH),
    (
        "pages/3_History.py",
        "History and reports: compliance, episodes, Excel",
        "📊",
        Permission.VIEW_HISTORY,
    ),
    (
        "pages/4_Training.py",
        "Training: data sets, runs, evaluation, promotion",
        "🏋️",
        Permission.TRAIN,
    ),
    (
        "pages/5_Stations.py",
        "Stations: glove rules and danger zones",
        "⚙️",
        Permission.EDIT_STATIONS,
    ),
    (
        "pages/6_Label.py",
        "Label: the plant's own frames, fine-tuning per station",
        "🏷️",
        Permission.LABEL,
    ),
    ("pages/7_Admin.py", "Admin: users and the audit log", "🔐", Permission.MANAGE_USERS),
    ("pages/8_Cameras.py", "Cameras: workers and camera status", "📹", Permission.VIEW_HISTORY),
]
for path, label, icon, needs in PAGES:
    if (PROJECT_ROOT / path).exists() and page.account.can(needs):
        st.page_link(path, label=label, icon=icon)
