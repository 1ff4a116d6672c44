"""Batch: upload images and videos, see which hands break the station's rule, save and export."""

import logging

import pandas as pd
import streamlit as st

from core.accounts import Permission
from core.analytics.trials import delete_trial_results, trial_results
from core.config import DEFAULTS, TRIAL_STATION
from core.errors import GloveWatchError
from core.events.rules import Verdict
from core.events.stations import current_rule, list_stations
from core.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from core.pipeline.batch import BatchInput, BatchProgress, BatchReport, TableRow, run_batch
from core.vision.annotate import STATUS_HEX, BoxStatus
from core.vision.detector import BACKENDS
from ui.text import md
from ui.widgets import model_picker, page_setup, threshold_controls

log = logging.getLogger("glovewatch.pages.batch")

page = page_setup("Batch detection", "🗂️", Permission.RUN_BATCH)
st.title("Batch detection")
st.write(
    "Upload photos or videos of work stations. Each hand is judged by the station's "
    "glove rule: :green[compliant] in green, :red[violating] in red, context (heads) in "
    "grey. Every file gets a verdict. A **trial run** (the default) is kept apart from the "
    "plant's figures; choose a station to count the files there."
)

with st.sidebar:
    st.header("Settings")
    station = st.selectbox(
        "Station",
        [TRIAL_STATION, *list_stations(page.store)],
        key="batch-station",
        format_func=lambda s: "Trial run (not counted)" if s == TRIAL_STATION else s,
        help="Which machine these files show: its rule judges them, and they count in its "
        "figures. A trial run is judged by the default rule and counted nowhere.",
    )
    picked = model_picker("batch", page, station)
    st.caption(md(current_rule(page.store, station).describe()))
    with st.expander("Advanced"):
        params = threshold_controls("batch", page.settings)
        backend = st.selectbox(
            "Inference backend",
            BACKENDS,
            index=BACKENDS.index(DEFAULTS.backend),
            key="batch-backend",
            help="OpenVINO is the fastest on a CPU (the first run exports "
            "the model, seconds); PyTorch is the fallback.",
        )

uploads = st.file_uploader(
    "Images and videos",
    accept_multiple_files=True,
    # a new key after every run: the next run starts with no files chosen
    key=f"batch-files-{st.session_state.get('batch-runs', 0)}",
    type=sorted(x.lstrip(".") for x in IMAGE_SUFFIXES | VIDEO_SUFFIXES),
)
run = st.button("Run detection", type="primary", disabled=not (uploads and picked), key="batch-run")

if run and picked and uploads:
    weights, _ = picked
    bar = st.progress(0.0, "Starting …")

    def show(p: BatchProgress) -> None:
        bar.progress(min(p.fraction, 1.0), md(p.text))

    try:
        st.session_state["batch-report"] = run_batch(
            [BatchInput(u.name, data=u.getvalue()) for u in uploads],
            weights,
            params,
            station=station,
            backend=backend,
            progress=show,
            store=page.store,
            user=page.account.name,
        )
        st.session_state["batch-runs"] = st.session_state.get("batch-runs", 0) + 1
        st.rerun()  # drawn again: the uploader empty (a new key), the results below it
    except GloveWatchError as exc:
        log.error("batch failed: %s", exc)
        st.error(f"Detection could not run: {md(exc)}")  # may name an uploaded file
    except OSError as exc:
        log.error("batch failed: %s", exc)
        st.error(
            f"Detection could not run: the data folder could not be written "
            f"({exc.strerror or exc})."
        )
    bar.empty()

trials = trial_results(page.store)
with st.sidebar.expander("Trial results"):
    st.caption(trials.describe())
    if st.button("Delete trial results", disabled=trials.empty, key="batch-delete-trials"):
        gone = delete_trial_results(page.store, page.account.name)
        log.info("%s", gone.summary())
        st.session_state["batch-flash"] = gone.summary()
        report_now = st.session_state.get("batch-report")
        if report_now is not None and report_now.station == TRIAL_STATION:
            del st.session_state["batch-report"]
        st.rerun()
if "batch-flash" in st.session_state:
    st.success(st.session_state.pop("batch-flash"))

report: BatchReport | None = st.session_state.get("batch-report")
if report is None:
    st.info("Choose files and press **Run detection**.")
    st.stop()

where = "a trial run (not counted)" if report.station == TRIAL_STATION else md(report.station)
st.subheader(f"Session {report.session_id}: {where}")
st.caption(f"{md(report.rule)} · model {md(report.model)}")
cols = st.columns(6)
cols[0].metric("Files", len(report.files))
cols[1].metric("Compliant", report.count(Verdict.COMPLIANT))
cols[2].metric("With a violation", report.count(Verdict.VIOLATION))
cols[3].metric("No hands seen", report.count(Verdict.NO_HANDS))
cols[4].metric(
    "Hands ok / violating",
    f"{report.compliant} / {report.violating}",
    help="Photos: hands in the image. Videos: the most seen at once in a frame.",
)
cols[5].metric("Failed", report.failed)
for f in report.files:
    if not f.ok:
        st.error(md(f.error))

ICON = {Verdict.COMPLIANT: "✅", Verdict.VIOLATION: "⛔", Verdict.NO_HANDS: "➖"}
good = [f for f in report.files if f.ok and f.verdict and f.annotated_path]
grid = st.columns(2)  # two across: the box captions stay readable
for i, f in enumerate(good):
    assert f.verdict is not None and f.annotated_path is not None
    with grid[i % 2]:
        caption = f"{ICON[f.verdict]} {md(f.describe())}"
        if f.kind == "image":
            st.image(str(f.annotated_path))
            st.caption(caption)
        else:
            st.video(str(f.annotated_path))
            st.caption(caption)
            st.download_button(
                "Download annotated video",
                f.annotated_path.read_bytes(),
                file_name=f.annotated_path.name,
                mime="video/mp4",
                key=f"batch-video-{i}",
            )

st.subheader("Detections")
table = pd.DataFrame([r.values() for r in report.rows], columns=TableRow.HEADER)
colour = {str(s): f"color: {STATUS_HEX[s]}" for s in BoxStatus}
# the Styler would show every float with 6 decimals (174.600000): coordinates to 0.1 px
st.dataframe(
    table.style.map(lambda v: colour.get(v, ""), subset=["status at station"])
    .format(precision=1, subset=["x1", "y1", "x2", "y2"])
    .format(precision=3, subset=["confidence"]),
    hide_index=True,
    width="stretch",
)
dl = st.columns(2)
if report.table_xlsx and report.table_csv:
    dl[0].download_button(
        "Download Excel (summary, verdicts, detections)",
        report.table_xlsx.read_bytes(),
        file_name=f"glovewatch-batch-{report.session_id}.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        key="batch-xlsx",
    )
    dl[1].download_button(
        "Download CSV",
        report.table_csv.read_bytes(),
        file_name=f"glovewatch-batch-{report.session_id}.csv",
        mime="text/csv",
        key="batch-csv",
    )
st.caption(
    f"Saved with session {report.session_id} in the data folder "
    f"(batch/session-{report.session_id:06d})."
)
