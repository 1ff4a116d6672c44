"""Label: make the model right on this plant's cameras. Collect a station's frames, correct the
model's boxes, fine-tune, compare on the station's held-out frames, promote for the station."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import streamlit as st

from core.accounts import Permission
from core.errors import GloveWatchError
from core.events.stations import list_stations
from core.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, read_image
from core.training import registry, site
from core.vision.annotate import class_hex
from core.vision.detector import model_names
from ui.boxeditor import box_editor
from ui.text import md
from ui.widgets import page_setup

log = logging.getLogger("glovewatch.pages.label")

page = page_setup("Label", "🏷️", Permission.LABEL)
store = page.store
st.title("Label: the plant's own frames")
st.write(
    "No base model is right on every camera. Collect frames of a station, correct the "
    "model's boxes, fine-tune on them and promote the result **for that station**. "
    f"Frames are grouped in {site.BLOCK_MINUTES}-minute blocks; every "
    f"{site.HOLDOUT_EVERY}th block is held out to score models on, never trained on."
)

known = list_stations(store)
counts_of = {c.station: c for c in site.counts(store)}
station = st.selectbox(
    "Station", known + [other for other in counts_of if other not in known], key="label-station"
)
active = registry.active_model(store, station)
names = list(model_names(active.path))
st.caption(f"Model judging {md(station)}: {md(active.label)}")

counts = counts_of.get(station)
if counts:
    cols = st.columns(5)
    cols[0].metric("Frames", counts.total)
    cols[1].metric("To check", counts.new + counts.prelabelled)
    cols[2].metric("Done", counts.done)
    cols[3].metric("Held out", counts.holdout, help="Never trained on.")
    cols[4].metric("Held out, done", counts.holdout_done)
    st.progress(
        counts.done / counts.total if counts.total else 0.0,
        f"{counts.done} of {counts.total} frames labelled",
    )

with st.expander("Collect frames", expanded=not counts):
    st.write(
        "From uploads (photos or a video, one frame every few seconds) or from this "
        "station's reviewed episodes. Live monitoring can collect too (Live → Advanced). "
        "Near-copies are skipped; the model pre-labels every frame."
    )
    ups = st.file_uploader(
        "Photos or videos",
        accept_multiple_files=True,
        key="label-ups",
        type=sorted(x.lstrip(".") for x in IMAGE_SUFFIXES | VIDEO_SUFFIXES),
    )
    every = st.number_input(
        "From videos, one frame every … s", 0.5, 60.0, 2.0, 0.5, key="label-every"
    )
    c1, c2 = st.columns(2)
    if c1.button("Collect the uploads", disabled=not ups, key="label-collect"):
        with st.spinner("Collecting and pre-labelling …"):
            got = site.collect_uploads(
                store,
                station,
                [(up.name, up.getvalue()) for up in ups or []],
                every,
                page.settings.uploads_dir,
                by=page.account.name,
            )
        st.session_state["label-flash"] = (
            f"Collected {got.added} frames ({got.near_copies} near-copies skipped)."
        )
        for e in got.errors:
            st.error(md(e))
        if not got.errors:
            st.rerun()
    if c2.button("Collect reviewed episodes' evidence", key="label-reviewed"):
        rep = site.collect_reviewed(store, station, by=page.account.name)
        st.session_state["label-flash"] = (
            f"Collected {rep.added} evidence frames ({rep.near_copies} near-copies skipped)."
        )
        for e in rep.errors:
            st.error(md(e))
        if not rep.errors:
            st.rerun()

if "label-flash" in st.session_state:
    st.success(md(st.session_state.pop("label-flash")))

# ------------------------------------------------------------------------------ correct
st.subheader("Correct the boxes")
show = st.radio("Frames", ["to check", "all"], horizontal=True, key="label-show")
todo = site.frames(store, station, status=("new", "prelabelled") if show == "to check" else None)
if show == "to check":  # the most uncertain first: they teach the model the most
    todo.sort(key=lambda f: -f.record.uncertainty)
if not todo:
    st.info("Nothing to check at this station." if counts else "No frames yet: collect some above.")
else:
    ids = [f.id for f in todo]
    pos = st.session_state.get("label-pos", 0) % len(ids)
    fr = todo[pos]
    st.caption(
        f"Frame {pos + 1} of {len(ids)} · #{fr.id} · {fr.record.source} · captured "
        f"{fr.record.captured_at} · {fr.record.split} · {fr.record.status} · "
        f"uncertainty {fr.record.uncertainty:.2f}"
    )
    try:
        image: np.ndarray | None = read_image(fr.path)
    except GloveWatchError as exc:
        st.error(md(exc))
        image = None
    if image is not None:
        result = box_editor(
            image, fr.record.boxes, fr.id, [(n, class_hex(n)) for n in names], key=f"editor-{fr.id}"
        )
        site.save_edit(
            store, fr, result.boxes, result.action == "done", page.account.name, len(names)
        )
        if result.action:
            step = (
                -1
                if result.action == "prev"
                else 0
                if (result.action == "done" and show == "to check")
                else 1
            )
            st.session_state["label-pos"] = pos + step
            st.rerun()
    with st.expander("Label history of this frame"):
        hist = store.site.history(fr.id)
        st.dataframe(
            pd.DataFrame(
                [
                    {"when": h.at, "who": h.by, "action": h.action, "boxes": len(h.boxes)}
                    for h in hist
                ]
            ),
            hide_index=True,
            width="stretch",
        )

# ------------------------------------------------------------------------------ fine-tune
st.subheader("Fine-tune for this station")
base = st.text_input(
    "Base data set (data.yaml or folder the base model was trained on)",
    str(page.settings.base_data or ""),
    key="label-base",
    help="A replay sample of it is mixed in so the model keeps what it "
    "knew; its test split is the guard against forgetting "
    "(GLOVEWATCH_BASE_DATA).",
)
c = st.columns(4)
epochs = c[0].number_input("Epochs", 1, 200, 10, key="label-epochs")
imgsz = c[1].select_slider("Image size", [320, 416, 480, 640], 640, key="label-imgsz")
freeze = c[2].number_input(
    "Frozen first layers",
    0,
    22,
    10,
    key="label-freeze",
    help="10 freezes the YOLO11 backbone: faster, keeps features.",
)
ratio = c[3].number_input("Base images per station image", 0.0, 10.0, 2.0, 0.5, key="label-ratio")
plan = None
if base.strip():
    try:
        plan = site.plan_finetune(
            store, station, base.strip(), int(epochs), int(imgsz), int(freeze), float(ratio)
        )
        st.info(md(plan.describe()))
    except GloveWatchError as exc:
        st.warning(md(exc))
if (
    st.button(
        "Fine-tune",
        type="primary",
        disabled=plan is None or not page.account.can(Permission.TRAIN),
        key="label-finetune",
    )
    and plan is not None
):
    try:
        run = site.finetune(store, plan, by=page.account.name)
        st.success(f"Run {run.id} is {run.status}; follow it on the Training page.")
    except GloveWatchError as exc:
        st.error(md(exc))

st.subheader("Compare and promote for this station")
station_runs = site.station_runs(store, station)
if not station_runs:
    st.caption("No finished fine-tune of this station yet.")
elif not base.strip():
    st.caption(
        "Give the base data set above to compare: its test split is the guard against forgetting."
    )
else:
    by_id = {r.id: r for r in station_runs}
    pick = st.selectbox(
        "Fine-tune",
        list(by_id),
        key="label-run",
        format_func=lambda i: f"{i}: {by_id[i].name} ({by_id[i].status})",
    )
    if st.button("Compare with the station's model", key="label-compare"):
        with st.spinner("Scoring both models on the held-out frames and the base test split …"):
            try:
                st.session_state["label-cmp"] = (
                    pick,
                    site.compare_station(store, station, pick, base.strip()),
                )
            except GloveWatchError as exc:
                st.error(md(exc))
    done = st.session_state.get("label-cmp")
    if done and done[0] == pick:
        cmp: site.StationComparison = done[1]
        rows = [
            {
                "scored on": r.scored_on,
                "images": r.images,
                "fine-tune mAP50": r.candidate_map50,
                "station model mAP50": r.active_map50,
            }
            for r in cmp.rows()
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        if cmp.holdout is None:
            st.caption(
                "No held-out frame of this station is labelled yet, so only the base test "
                "split scores the fine-tune; label frames of the held-out blocks to score "
                "it on this camera."
            )
        accept = False
        if cmp.needs_confirmation:
            st.warning(
                f"The fine-tune loses {cmp.base_drop:.3f} mAP50 on the base test split "
                f"(more than {site.MAX_BASE_DROP})."
            )
            accept = st.checkbox("Promote it anyway", key="label-accept")
        if page.account.can(Permission.PROMOTE_MODELS):
            if st.button(
                f"Promote for {md(station)}",
                disabled=cmp.needs_confirmation and not accept,
                key="label-promote",
            ):
                try:
                    entry = site.promote_station(
                        store, station, pick, cmp, page.account.name, accept_drop=accept
                    )
                except GloveWatchError as exc:
                    st.error(md(exc))
                else:
                    # The comparison was against the model it replaces: stale from now on.
                    st.session_state.pop("label-cmp", None)
                    st.session_state["label-flash"] = f"{entry.path.name} now judges {station}."
                    st.rerun()
        else:
            st.caption("Promoting needs the admin role.")
