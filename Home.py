"""GloveWatch overview: what it does, the active model, today's figures, the way to each page."""

import logging

import pandas as pd
import streamlit as st

from core import store
from core.config import PROJECT_ROOT
from core.detector import ModelError
from core.modelcard import read_card
from core.registry import active_weights
from ui.widgets import describe_model, page_setup

log = logging.getLogger("glovewatch.pages.home")

s = page_setup("Overview")
st.title("🧤 GloveWatch")
st.write(
    "GloveWatch watches machine-shop cameras and tells **gloved hands** from **bare hands**. "
    "Every bare hand near a machine becomes a violation event with privacy-safe evidence, and "
    "the event log turns into compliance figures per station, shift and day."
)

left, right = st.columns([3, 2])
with left:
    st.subheader("Today")
    if s is None:
        st.stop()
    try:
        conn = store.connect()
        today = store.day_summary(conn)
        conn.close()
    except Exception as exc:  # a damaged store must not take the overview down
        log.exception("store unavailable")
        st.error(f"The event store could not be read: {exc}")
        today = None
    if today is not None:
        c = st.columns(4)
        c[0].metric("Sessions", today.sessions)
        c[1].metric("Images / frames checked", today.images)
        c[2].metric("Violation events", today.events,
                    help=f"{today.critical} critical (bare hand in a danger zone)")
        rate = today.compliance
        c[3].metric("Compliance (hand detections)",
                    f"{rate:.0%}" if rate is not None else "no hands yet",
                    help="Gloved hand detections / all hand detections today. The History page "
                         "gives time-based rates where camera coverage exists.")
        if today.images == 0:
            st.info("Nothing recorded today yet. Try the **Batch** page with a few photos, or "
                    "the **Live** page with your webcam.")

with right:
    st.subheader("Active model")
    weights = active_weights()
    try:
        info = describe_model(weights)
    except ModelError as exc:
        st.error(f"The active model cannot be loaded: {exc}")
        info = None
    if info is not None:
        card = read_card(weights)
        st.write(f"**{card.title if card else info.name}**  \n`{info.name}` · {info.task} · "
                 f"sha256 `{info.sha256[:12]}`")
        st.dataframe(pd.DataFrame({"class": list(info.names.values()),
                                   "role": [str(info.roles.role_of(i)) for i in info.names]}),
                     hide_index=True, width="stretch")
        if card and card.map50 is not None:
            st.caption(f"Test split: mAP50 {card.map50:.3f}, mAP50-95 {card.map50_95:.3f}; "
                       + ", ".join(f"AP50 {k} {v:.3f}" for k, v in card.per_class_ap50.items()))

st.subheader("Pages")
PAGES = [
    ("pages/1_Live.py", "Live monitoring: webcam, camera URL or video replay", "🎥"),
    ("pages/2_Batch.py", "Batch detection: photos and videos", "🗂️"),
    ("pages/3_History.py", "History and reports: compliance, episodes, Excel", "📊"),
    ("pages/4_Training.py", "Training: data sets, runs, evaluation, promotion", "🏋️"),
    ("pages/5_Stations.py", "Stations: glove rules and danger zones", "⚙️"),
]
for page, label, icon in PAGES:
    if (PROJECT_ROOT / page).exists():
        st.page_link(page, label=label, icon=icon)
