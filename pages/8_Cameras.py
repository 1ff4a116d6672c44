"""Cameras: every camera worker and camera, live or not, from the shared store."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.accounts import Permission
from core.analytics.fleet import count_by_status, dead_letters, fleet_status
from core.errors import GloveWatchError
from ui.text import md
from ui.widgets import page_setup

page = page_setup("Cameras", "📹", Permission.VIEW_HISTORY)
st.title("Cameras")
st.caption(
    "Camera workers (`python -m core worker --config cameras.yaml`) report themselves "
    "and each of their cameras every few seconds. A worker silent for 30 s is "
    "*stalled*, for 2 minutes *disconnected*; the cameras of a worker that is not "
    "online are shown disconnected, whatever they last said."
)

ICONS = {
    "online": "🟢",
    "live": "🟢",
    "connecting": "🟡",
    "stalled": "🟠",
    "disconnected": "🔴",
    "offline": "🔴",
    "stopped": "⚪",
}

st.button("Refresh", key="cameras-refresh")
try:
    workers, cameras = fleet_status(page.store)
except GloveWatchError as exc:
    st.error(f"The store could not be read: {exc}")
    st.stop()

if not workers and not cameras:
    st.info(
        "No camera worker has reported yet. Describe the cameras in a cameras.yaml and "
        "start `python -m core worker --config cameras.yaml` (see docs/fleet.md); with a "
        "broker, also start `python -m core ingest`."
    )
    st.stop()

cam_counts = count_by_status(cameras)
c = st.columns(5)
c[0].metric("Workers online", f"{sum(w.status == 'online' for w in workers)} / {len(workers)}")
c[1].metric("Cameras live", f"{cam_counts.get('live', 0)} / {len(cameras)}")
c[2].metric("Stalled", cam_counts.get("stalled", 0))
c[3].metric("Disconnected", cam_counts.get("disconnected", 0))
c[4].metric("Stopped", cam_counts.get("stopped", 0))

problems = [cv for cv in cameras if cv.status in ("stalled", "disconnected")]
if problems:
    st.warning(
        "Not watched right now: "
        + ", ".join(f"{md(cv.name)} ({md(cv.station)}, {cv.status})" for cv in problems[:20])
        + (" …" if len(problems) > 20 else "")
    )

st.subheader("Workers")
st.dataframe(
    pd.DataFrame(
        [
            {
                "status": f"{ICONS.get(w.status, '')} {w.status}",
                "worker": w.name,
                "host": w.host or "",
                "cameras": w.cameras,
                "last heartbeat": w.heartbeat_at or "never",
                "seconds ago": w.age_s,
                "started": w.started_at or "",
                "via": w.transport or "",
                "outbox waiting": w.details.get("outbox_pending", ""),
            }
            for w in workers
        ]
    ),
    hide_index=True,
    width="stretch",
)

st.subheader("Cameras")
st.dataframe(
    pd.DataFrame(
        [
            {
                "status": f"{ICONS.get(cv.status, '')} {cv.status}",
                "camera": cv.name,
                "station": cv.station,
                "worker": cv.worker or "",
                "fps": round(cv.fps, 1),
                "analysed": cv.analysed,
                "skipped (no motion)": cv.skipped,
                "skipped share": f"{cv.skipped_share:.0%}" if cv.skipped_share is not None else "",
                "last frame": cv.last_frame_at or "",
                "last heartbeat": cv.heartbeat_at or "",
                "source": cv.source or "",
                "message": cv.message or "",
            }
            for cv in cameras
        ]
    ),
    hide_index=True,
    width="stretch",
)

try:
    letters = dead_letters(page.store)
except GloveWatchError as exc:
    letters = []
    st.error(f"The refused messages could not be read: {exc}")
st.subheader("Refused messages")
if not letters:
    st.caption("No message was refused: every message the ingester received was signed and sane.")
else:
    st.caption(
        "What the ingester did not apply, newest first (the latest 1000 are kept): unsigned or "
        "forged messages are *refused* (their worker is only what their topic claims); a real "
        "worker's message that fails its checks is *rejected* and acknowledged, so the worker "
        "does not send it again. Also `python -m core fleet dead-letters`."
    )
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "at": d.at,
                    "worker": d.worker or "",
                    "topic": d.topic,
                    "reason": d.reason,
                    "message id": d.message_id or "",
                }
                for d in letters
            ]
        ),
        hide_index=True,
        width="stretch",
    )
