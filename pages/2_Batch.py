"""Batch: upload images and videos, see which hands are gloved, save and export the results."""

import logging

import pandas as pd
import streamlit as st

from core.batch import BatchInput, BatchReport, TableRow, run_batch
from core.compliance import Verdict
from core.detector import ModelError
from core.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from ui.widgets import model_picker, page_setup, threshold_controls

log = logging.getLogger("glovewatch.pages.batch")

s = page_setup("Batch detection", "🗂️")
st.title("Batch detection")
st.write("Upload photos or videos of work stations. Each hand is marked **gloved** (green) or "
         "**bare** (red); every file gets a verdict, and the session is saved to the history.")

with st.sidebar:
    st.header("Settings")
    picked = model_picker("batch")
    params = threshold_controls("batch", s) if s else None
    station = st.text_input("Station", "default", key="batch-station",
                            help="Which machine or work place these files show.")

uploads = st.file_uploader(
    "Images and videos", accept_multiple_files=True, key="batch-files",
    type=sorted(x.lstrip(".") for x in IMAGE_SUFFIXES | VIDEO_SUFFIXES))
run = st.button("Run detection", type="primary",
                disabled=not (uploads and picked and s), key="batch-run")

if run:
    weights, _ = picked
    bar = st.progress(0.0, "Starting…")
    try:
        st.session_state["batch-report"] = run_batch(
            [BatchInput(u.name, data=u.getvalue()) for u in uploads], weights, params,
            station=station, progress=lambda f, text: bar.progress(min(f, 1.0), text))
    except (ModelError, PermissionError, OSError) as exc:
        log.error("batch failed: %s", exc)
        st.error(f"Detection could not run: {exc}")
    bar.empty()

report: BatchReport | None = st.session_state.get("batch-report")
if report is None:
    st.info("Choose files and press **Run detection**.")
    st.stop()

st.subheader(f"Session {report.session_id}")
cols = st.columns(6)
cols[0].metric("Files", len(report.files))
cols[1].metric("Compliant", report.count(Verdict.COMPLIANT))
cols[2].metric("Violations", report.count(Verdict.VIOLATION))
cols[3].metric("No hands seen", report.count(Verdict.NO_HANDS))
cols[4].metric("Gloved / bare hands", f"{report.gloved} / {report.bare}")
cols[5].metric("Failed", report.failed)
for f in report.files:
    if not f.ok:
        st.error(f.error)

ICON = {Verdict.COMPLIANT: "✅", Verdict.VIOLATION: "⛔", Verdict.NO_HANDS: "➖"}
good = [f for f in report.files if f.ok]
grid = st.columns(3)
for i, f in enumerate(good):
    with grid[i % 3]:
        caption = (f"{ICON[f.verdict.verdict]} {f.name}: {f.verdict.verdict} "
                   f"(gloved {f.verdict.protected}, bare {f.verdict.violation})")
        if f.kind == "image":
            st.image(str(f.annotated_path), caption=caption)
        else:
            st.video(str(f.annotated_path))
            st.caption(f"{caption}; {f.frames} frames, {f.violation_frames} with a bare hand")
            st.download_button("Download annotated video", f.annotated_path.read_bytes(),
                               file_name=f.annotated_path.name, mime="video/mp4",
                               key=f"batch-video-{i}")

st.subheader("Detections")
table = pd.DataFrame([r.values() for r in report.rows], columns=TableRow.HEADER)
st.dataframe(table, hide_index=True, width="stretch")
dl = st.columns(2)
dl[0].download_button("Download Excel", report.table_xlsx.read_bytes(),
                      file_name=f"glovewatch-session-{report.session_id}.xlsx",
                      mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                      key="batch-xlsx")
dl[1].download_button("Download CSV", report.table_csv.read_bytes(),
                      file_name=f"glovewatch-session-{report.session_id}.csv",
                      mime="text/csv", key="batch-csv")
st.caption(f"Saved in {report.out_dir}")
