"""Training: import data sets, start runs that live in their own processes, watch their curves,
compare a run with the active model and promote it."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import streamlit as st

from core.accounts import Permission
from core.errors import GloveWatchError
from core.training import options, registry, runs
from core.training.charts import run_charts
from core.training.datasets import Dataset
from ui.curves import curve_figure
from ui.datasets import dataset_report, import_form, pick_dataset
from ui.promotion import evaluate_and_promote
from ui.text import md
from ui.widgets import page_setup, save_upload

log = logging.getLogger("glovewatch.pages.training")

page = page_setup("Training", "🏋️", Permission.TRAIN)
store = page.store
s = page.settings
st.title("Training")
# A run whose process died (killed, crashed, machine restarted) must not look "running":
# reconcile once, then every table and panel below reads the same state.
for dead in runs.reconcile(store):
    st.warning(f"Run {dead.id} '{md(dead.name)}' failed: {md(dead.message)}")
ALL_RUNS = runs.list_runs(store, reconcile_first=False)


def fine_tune_weights() -> str | None:
    """The active model, the shipped default, a run's best.pt or an uploaded file."""
    active = registry.active_model(store)
    choices = {
        f"Active model ({active.path.name})": str(active.path),
        f"Shipped default ({s.default_weights.name})": str(s.default_weights),
    }
    choices |= {
        f"Run {r.id} '{r.name}' best.pt": str(r.best_pt) for r in ALL_RUNS if r.best_pt.is_file()
    }
    choices["Upload a .pt file"] = ""
    model = choices[st.selectbox("Weights", list(choices), key="new-weights")] or None
    pt = None if model else st.file_uploader("Weights file", type=["pt"], key="new-pt")
    if pt is not None:
        try:
            model = str(save_upload(pt.name, pt.getvalue()))
        except GloveWatchError as exc:
            st.error(f"This weights file cannot be used: {md(exc)}")
    return model


def model_choice(ds: Dataset) -> str | None:
    """What the run trains: a YOLO11 architecture, local weights or a project variant."""
    source = st.radio(
        "Model",
        ["YOLO11 from scratch", "Fine-tune local weights", "Project variant (models/)"],
        key="new-src",
        horizontal=True,
    )
    if source == "YOLO11 from scratch":
        c1, c2 = st.columns(2)
        size = c1.selectbox(
            "Size", options.SIZES, key="new-size", format_func=options.SIZE_LABELS.__getitem__
        )
        task = c2.selectbox(
            "Task", options.TASKS, key="new-task", index=options.TASKS.index(ds.task)
        )
        return options.architecture(size, task)
    if source == "Fine-tune local weights":
        return fine_tune_weights()
    variants = {v.name: v for v in options.project_variants()}
    if not variants:
        st.info("The project has no model variants in models/ yet.")
        return None
    model = st.selectbox("Variant", list(variants), key="new-variant")
    st.caption(md(options.describe_variant(variants[model])))
    return model


def train_form(ds: Dataset, model: str | None) -> None:
    """The run's settings and the Train button."""
    c1, c2, c3, c4 = st.columns(4)
    epochs = c1.number_input("Epochs", 1, 1000, 50, key="new-epochs")
    sizes = [160, 320, 416, 480, 640, 800, 960, 1280]
    imgsz = c2.select_slider("Image size", sizes, 640, key="new-imgsz")
    batch = c3.number_input("Batch", 1, 512, 16, key="new-batch")
    patience = c4.number_input("Patience (early stop)", 1, 1000, 50, key="new-patience")
    c1, c2, c3 = st.columns(3)
    augment = c1.slider(
        "Augmentation strength",
        0.0,
        2.0,
        1.0,
        0.25,
        key="new-aug",
        help="0 = none, 1 = Ultralytics defaults, 2 = strong",
    )
    recipe = c2.selectbox(
        "Recipe", options.recipe_names(), key="new-recipe", help=options.recipe_help()
    )
    device = c3.selectbox(
        "Device",
        ["auto", "cpu", "0"],
        key="new-device",
        help="auto: the GPU when there is one, else the CPU",
    )
    name = st.text_input("Run name (optional)", key="new-name")
    extra_text = st.text_area(
        "Advanced options (YAML)",
        key="new-extra",
        placeholder="lr0: 0.005\nmosaic: 0.5\ncos_lr: true",
        help="Hyper-parameters and augmentation only, e.g. lr0, mosaic, cos_lr, freeze; "
        "options that name files or folders are refused.",
    )
    if not st.button("Train", type="primary", key="new-train", disabled=not model):
        return
    try:
        spec = options.TrainSpec(
            data=str(ds.yaml_path),
            model=str(model),
            epochs=int(epochs),
            imgsz=int(imgsz),
            batch=int(batch),
            patience=int(patience),
            augment=float(augment),
            device="" if device == "auto" else device,
            name=name.strip(),
            recipe=None if recipe == "default" else recipe,
            dataset=ds.name,
            extra=options.parse_extra(extra_text),
        )
        run = runs.submit(store, spec, by=page.account.name)
    except GloveWatchError as exc:
        log.warning("run not started: %s", exc)
        st.error(f"The run was not started: {md(exc)}")
        return
    st.success(
        f"Run {run.id} '{md(run.name)}' is {run.status} on {run.device}. "
        "It goes on if you close this page; follow it in the **Runs** tab."
    )
    if run.message:
        st.info(md(run.message))


def show_run(run_id: int) -> None:
    """Status, progress, curves and log of one run (re-drawn every few seconds while active)."""
    run = runs.get_run(store, run_id)
    if run.status in runs.ACTIVE:
        runs.reconcile(store)  # a process that died meanwhile shows as failed at once
        run = runs.get_run(store, run_id)
    metrics = runs.read_metrics(run)
    prog = runs.progress(run, metrics)
    cols = st.columns(4)
    cols[0].metric("Status", run.status)
    cols[1].metric("Epoch", f"{prog.epochs_done} / {prog.epochs}")
    cols[2].metric("Elapsed", prog.elapsed_text, help="Wall-clock time since start.")
    cols[3].metric("Remaining", prog.remaining_text)
    if prog.epochs:
        st.progress(min(1.0, prog.epochs_done / prog.epochs))
    if run.message:
        (st.error if run.status == "failed" else st.info)(md(run.message))
    charts = run_charts(metrics)
    if charts is None:
        st.caption("Curves appear after the first epoch.")
    else:
        for col, chart in zip(st.columns(2), charts):
            col.plotly_chart(curve_figure(chart), width="stretch")
    with st.expander("Log", expanded=run.status in runs.ACTIVE):
        st.code(runs.log_tail(run, 30) or "(empty)")
    st.caption(
        f"Model {md(Path(run.model).name)} · data set {md(run.dataset)} · run folder "
        f"runs/{md(run.run_dir.name)}"
    )
    just_ended = run.status not in runs.ACTIVE and st.session_state.get("run-shown") == (
        run.id,
        "live",
    )
    # recorded before the rerun: otherwise every rerun sees "live" again and reruns forever
    st.session_state["run-shown"] = (run.id, "live" if run.status in runs.ACTIVE else "done")
    if just_ended:
        st.rerun()  # it just ended: redraw the table above with the same state


def runs_tab() -> None:
    """Every run in a table; the picked one with stop/resume and its live panel."""
    if not ALL_RUNS:
        st.info("No training run yet.")
        return
    rows = [
        {
            "id": r.id,
            "name": r.name,
            "status": r.status,
            "device": r.device,
            "data set": r.dataset,
            "model": Path(r.model).name,
            "created": r.created_at,
            "elapsed": runs.progress(r).elapsed_text,
            "best mAP50-95": runs.best_metric(r.best, "mAP50-95"),
            "message": r.message or "",
        }
        for r in ALL_RUNS
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    by_id = {r.id: r for r in ALL_RUNS}
    pick = st.selectbox(
        "Open run", list(by_id), key="run-pick", format_func=lambda i: f"{i}: {by_id[i].name}"
    )
    run = by_id[pick]
    b1, b2, _ = st.columns([1, 1, 4])
    stop = run.status in runs.ACTIVE and b1.button("Stop", key="run-stop")
    resume = run.status in ("stopped", "failed") and b2.button("Resume", key="run-resume")
    if stop or resume:
        try:
            (runs.stop if stop else runs.resume)(store, run.id, by=page.account.name)
            st.rerun()
        except GloveWatchError as exc:
            st.error(md(exc))
    st.fragment(show_run, run_every=5 if run.status in runs.ACTIVE else None)(run.id)


tab_data, tab_new, tab_runs, tab_eval = st.tabs(
    ["Data sets", "New run", "Runs", "Evaluate & promote"]
)
with tab_data:
    st.write(
        "Import a YOLO data set: a Roboflow export zip (`data.yaml` with `train/valid/test`)"
        " or an `images/` + `labels/` layout, boxes or segmentation polygons."
    )
    import_form(page)
    picked = pick_dataset(store, "ds-pick", "No data set imported yet.")
    if picked is not None:
        dataset_report(picked)
with tab_new:
    picked = pick_dataset(store, "new-ds", "Import a data set first (tab **Data sets**).")
    if picked is not None:
        train_form(picked, model_choice(picked))
with tab_runs:
    runs_tab()
with tab_eval:
    evaluate_and_promote(page, ALL_RUNS)
