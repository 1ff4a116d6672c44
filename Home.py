"""GloveWatch overview: what it does, the active model, today's figures, the way to each page."""

import logging

import pandas as pd
import streamlit as st

from core.accounts import Permission
from core.config import PROJECT_ROOT
from core.errors import GloveWatchError
from core.training.registry import active_model
from ui.text import md
from ui.widgets import describe_model, page_setup

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
    try:
        today = page.store.sessions.day_summary()
    except GloveWatchError as exc:  # a damaged store must not take the overview down
        log.error("store unavailable: %s", exc)
        st.error(f"The event store could not be read: {exc}")
        today = None
    if today is not None:
        # two by two: four in a row cut the labels off beside the model column
        c = st.columns(2) + st.columns(2)
        c[0].metric("Sessions", today.sessions)
        c[1].metric("Images / frames checked", today.images)
        c[2].metric(
            "Violation episodes", today.events, help=f"{today.critical} critical (in a danger zone)"
        )
        rate = today.compliance
        c[3].metric(
            "Compliance (judged hands)",
            f"{rate:.0%}" if rate is not None else "no hands yet",
            help="Compliant / all hands judged today by each station's rule, from "
            "processed images and frames. The History page gives time-based "
            "rates where camera coverage exists.",
        )
        if today.images == 0:
            st.info(
                "Nothing recorded today yet. Try the **Batch** page with a few photos, or "
                "the **Live** page with your webcam or a video file."
            )

with right:
    st.subheader("Active model")
    active = active_model(page.store)
    try:
        info = describe_model(active.path)
    except GloveWatchError as exc:
        st.error(f"The active model cannot be loaded: {exc}")
        info = None
    if info is not None:
        card = active.card
        st.write(
            f"**{md(card.title if card else info.name)}**  \n{md(active.label)} · "
            f"{info.task} · sha256 `{info.sha256[:12]}`"
        )
        st.dataframe(
            pd.DataFrame(
                {
                    "class": list(info.names.values()),
                    "role": [str(info.roles.role_of(i)) for i in info.names],
                }
            ),
            hide_index=True,
            width="stretch",
        )
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
