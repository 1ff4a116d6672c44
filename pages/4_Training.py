"""Training: import data sets, start runs that live in their own processes, watch their curves,
compare a run with the active model and promote it."""

import logging
from pathlib import Path

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from core import registry, store, training
from core.compliance import Role, default_role
from core.datasets import DatasetError, class_count_rows, detect_layout, import_dataset, \
    list_datasets, sample_images, split_image_counts
from core.detector import ModelError
from ui.widgets import page_setup, save_upload

log = logging.getLogger("glovewatch.pages.training")

s = page_setup("Training", "🏋️")
st.title("Training")
if s is None:
    st.stop()
conn = store.connect()
# A run whose process died (killed, crashed, machine restarted) must not look "running".
for dead in training.reconcile(conn):
    st.warning(f"Run {dead.id} '{dead.name}' failed: {dead.message}")



def pick_dataset(key: str, empty_message: str):
    """A data set selectbox over the registered data sets; None (with a hint) if there are none."""
    datasets = {d.id: d for d in list_datasets(conn)}
    if not datasets:
        st.info(empty_message)
        return None
    pick = st.selectbox("Data set", list(datasets), key=key,
                        format_func=lambda i: f"{i}: {datasets[i].name} ({datasets[i].task}, "
                                              f"{', '.join(datasets[i].names)})")
    return datasets[pick]


tab_data, tab_new, tab_runs, tab_eval = st.tabs(
    ["Data sets", "New run", "Runs", "Evaluate & promote"])

# ------------------------------------------------------------------------------ data sets
with tab_data:
    st.write("Import a YOLO data set: a Roboflow export zip (`data.yaml` with `train/valid/test`)"
             " or an `images/` + `labels/` layout, boxes or segmentation polygons.")
    up = st.file_uploader("Data set zip", type=["zip"], key="ds-zip")
    folder = st.text_input("…or a folder on this server", key="ds-folder")
    ds_name = st.text_input("Name (optional)", key="ds-name")
    if st.button("Import", key="ds-import", disabled=not (up or folder.strip())):
        try:
            if up is not None:
                zip_path = s.uploads_dir / f"dataset-{Path(up.name).name}"
                zip_path.write_bytes(up.getvalue())
                ds = import_dataset(conn, zip_path, name=ds_name or Path(up.name).stem)
                zip_path.unlink(missing_ok=True)
            else:
                ds = import_dataset(conn, folder.strip(), name=ds_name or None)
            st.success(f"Imported data set {ds.id} '{ds.name}' ({ds.task}, "
                       f"{len(ds.names)} classes).")
        except (DatasetError, OSError) as exc:
            log.warning("data set import failed: %s", exc)
            st.error(f"Import failed: {exc}")

    ds = pick_dataset("ds-pick", "No data set imported yet.")
    if ds is not None:
        rep = ds.report
        cols = st.columns(len(rep.images) + 1)
        cols[0].metric("Classes", len(ds.names))
        for col, (split, n) in zip(cols[1:], split_image_counts(rep).items()):
            col.metric(f"{split} images", n)
        table = pd.DataFrame(class_count_rows(rep), columns=["split", "class", "instances"])
        st.dataframe(table.pivot(index="class", columns="split", values="instances")
                     .reindex(list(ds.names)), width="stretch")
        for w in rep.warnings:
            st.warning(w)
        problems = {"Missing labels": rep.missing_labels, "Empty label files": rep.empty_images,
                    "Out-of-range coordinates": rep.out_of_range,
                    "Class ids beyond names": rep.bad_class_ids,
                    "Unreadable label lines": rep.malformed,
                    "Duplicates across splits": [" = ".join(d) for d in rep.duplicates]}
        for title, items in problems.items():
            if items:
                with st.expander(f"{title} ({len(items)})"):
                    st.code("\n".join(items[:200]))
        st.caption(f"Training file: `{ds.yaml_path}`")
        if st.checkbox("Show sample images with their labels", key="ds-samples"):
            samples = sample_images(ds, 6)
            for col, (name, img) in zip(st.columns(3) * 2, samples):
                col.image(img, channels="BGR", caption=name)

# ------------------------------------------------------------------------------ new run
with tab_new:
    ds = pick_dataset("new-ds", "Import a data set first (tab **Data sets**).")
    if ds is not None:
        source = st.radio("Model", ["YOLO11 from scratch", "Fine-tune local weights",
                                    "Project variant (models/)"], key="new-src", horizontal=True)
        model: str | None = None
        if source == "YOLO11 from scratch":
            c1, c2 = st.columns(2)
            size = c1.selectbox("Size", training.SIZES, key="new-size",
                                format_func=lambda x: {"n": "n (nano, fastest)", "s": "s (small)",
                                                       "m": "m (medium)", "l": "l (large)",
                                                       "x": "x (extra large)"}[x])
            task = c2.selectbox("Task", ["detect", "segment"], key="new-task",
                                index=1 if ds.task == "segment" else 0)
            model = f"yolo11{size}{'-seg' if task == 'segment' else ''}.yaml"
        elif source == "Fine-tune local weights":
            options = {f"Active model ({registry.active_weights(conn).name})":
                       str(registry.active_weights(conn)),
                       f"Shipped default ({s.default_weights.name})": str(s.default_weights)}
            for r in training.list_runs(conn, reconcile_first=False):
                if r.best_pt.is_file():
                    options[f"Run {r.id} '{r.name}' best.pt"] = str(r.best_pt)
            options["Upload a .pt file"] = ""
            label = st.selectbox("Weights", list(options), key="new-weights")
            model = options[label] or None
            if not model:
                pt = st.file_uploader("Weights file", type=["pt"], key="new-pt")
                model = str(save_upload(pt.name, pt.getvalue())) if pt else None
        else:
            variants = training.project_variants()
            if not variants:
                st.info("The project has no model variants in models/ yet.")
            else:
                model = st.selectbox("Variant", [v.name for v in variants], key="new-variant")
                st.caption(training.describe_variant(training.MODELS_DIR / model))

        c1, c2, c3, c4 = st.columns(4)
        epochs = c1.number_input("Epochs", 1, 1000, 50, key="new-epochs")
        imgsz = c2.select_slider("Image size", [160, 320, 416, 480, 640, 800, 960, 1280], 640,
                                 key="new-imgsz")
        batch = c3.number_input("Batch", 1, 512, 16, key="new-batch")
        patience = c4.number_input("Patience (early stop)", 1, 1000, 50, key="new-patience")
        c1, c2, c3 = st.columns(3)
        augment = c1.slider("Augmentation strength", 0.0, 2.0, 1.0, 0.25, key="new-aug",
                            help="0 = none, 1 = Ultralytics defaults, 2 = strong")
        recipes = ["default", *(r for r in training.recipe_names() if r != "default")]
        recipe = c2.selectbox("Recipe", recipes, key="new-recipe",
                              help=training.recipe_help() or None)
        device = c3.selectbox("Device", ["auto", "cpu", "0"], key="new-device",
                              help="auto: the GPU when there is one, else the CPU")
        name = st.text_input("Run name (optional)", key="new-name")
        extra_text = st.text_area("Advanced options (YAML)", key="new-extra",
                                  placeholder="lr0: 0.005\nmosaic: 0.5\ncos_lr: true")
        if st.button("Train", type="primary", key="new-train", disabled=not model):
            try:
                run = training.submit(conn, training.TrainSpec(
                    data=str(ds.yaml_path), model=model, epochs=int(epochs), imgsz=int(imgsz),
                    batch=int(batch), patience=int(patience), augment=float(augment),
                    device="" if device == "auto" else device, name=name.strip(),
                    recipe=None if recipe == "default" else recipe, dataset=ds.name,
                    extra=training.parse_extra(extra_text)))
                st.success(f"Run {run.id} '{run.name}' is {run.status} on {run.device}. It goes "
                           "on if you close this page; follow it in the **Runs** tab.")
                if run.message:
                    st.info(run.message)
            except (training.TrainingError, ModelError) as exc:
                log.warning("run not started: %s", exc)
                st.error(f"The run was not started: {exc}")


# ------------------------------------------------------------------------------ runs
def _fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    m, sec = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{sec:02d}"


def _chart(metrics: training.Metrics, columns: list[str], title: str) -> go.Figure:
    epochs = metrics.series("epoch")
    fig = go.Figure()
    for c in columns:
        fig.add_trace(go.Scatter(x=epochs, y=metrics.series(c), mode="lines+markers",
                                 name=c.replace("metrics/", "")))
    fig.update_layout(title=title, xaxis_title="epoch", height=320,
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig


def show_run(run_id: int) -> None:
    """Status, progress, curves and log of one run (re-drawn every few seconds while active)."""
    run = training.get_run(conn, run_id)
    if run.status in training.ACTIVE:
        training.reconcile(conn)  # a process that died meanwhile shows as failed at once
        run = training.get_run(conn, run_id)
    metrics = training.read_metrics(run)
    prog = training.progress(run, metrics)
    cols = st.columns(4)
    cols[0].metric("Status", run.status)
    cols[1].metric("Epoch", f"{prog.epochs_done} / {prog.epochs}")
    cols[2].metric("Elapsed", _fmt_time(prog.elapsed_s))
    cols[3].metric("Remaining", _fmt_time(prog.remaining_s))
    if prog.epochs:
        st.progress(min(1.0, prog.epochs_done / prog.epochs))
    if run.message:
        (st.error if run.status == "failed" else st.info)(run.message)
    if metrics.rows:
        losses = [c for c in metrics.columns if c.endswith("_loss")]
        scores = [c for c in metrics.columns if c.startswith("metrics/")]
        c1, c2 = st.columns(2)
        c1.plotly_chart(_chart(metrics, losses, "Losses"))
        c2.plotly_chart(_chart(metrics, scores, "Precision, recall, mAP"))
    else:
        st.caption("Curves appear after the first epoch.")
    with st.expander("Log", expanded=run.status in training.ACTIVE):
        st.code(training.log_tail(run, 30) or "(empty)")
    st.caption(f"Folder: `{run.run_dir}` · model `{Path(run.model).name}` · data set "
               f"{run.dataset}")


with tab_runs:
    runs = training.list_runs(conn, reconcile_first=False)
    if not runs:
        st.info("No training run yet.")
    else:
        st.dataframe(pd.DataFrame([{
            "id": r.id, "name": r.name, "status": r.status, "device": r.device,
            "data set": r.dataset, "model": Path(r.model).name, "created": r.created_at,
            "best mAP50-95": r.best.get("metrics/mAP50-95(M)",
                                        r.best.get("metrics/mAP50-95(B)")),
            "message": r.message or ""} for r in runs]), hide_index=True, width="stretch")
        run_by_id = {r.id: r for r in runs}
        pick = st.selectbox("Open run", list(run_by_id), key="run-pick",
                            format_func=lambda i: f"{i}: {run_by_id[i].name}")
        run = run_by_id[pick]
        b1, b2, _ = st.columns([1, 1, 4])
        if run.status in training.ACTIVE and b1.button("Stop", key="run-stop"):
            try:
                run = training.stop(conn, run.id)
                st.success(f"Run {run.id} stopped; it can be resumed from its last epoch.")
            except training.TrainingError as exc:
                st.error(str(exc))
        if run.status in ("stopped", "failed") and b2.button("Resume", key="run-resume"):
            try:
                run = training.resume(conn, run.id)
                st.success(f"Run {run.id} is {run.status} again.")
            except training.TrainingError as exc:
                st.error(str(exc))
        live = run.status in training.ACTIVE
        st.fragment(show_run, run_every=5 if live else None)(run.id)

# ------------------------------------------------------------------------------ evaluate
with tab_eval:
    runs = [r for r in training.list_runs(conn, reconcile_first=False)
            if r.status not in training.ACTIVE and r.best_pt.is_file()]
    if not runs:
        st.info("No finished run with weights yet.")
    else:
        eval_by_id = {r.id: r for r in runs}
        pick = st.selectbox("Run", list(eval_by_id), key="eval-run",
                            format_func=lambda i: f"{i}: {eval_by_id[i].name}")
        split = st.selectbox("Split", ["val", "test"], key="eval-split")
        if st.button("Evaluate against the active model", key="eval-go"):
            with st.spinner("Evaluating both models on the same images…"):
                try:
                    st.session_state["eval-result"] = (pick, registry.compare(conn, pick, split))
                except (registry.RegistryError, ModelError, ValueError, OSError) as exc:
                    log.warning("evaluation failed: %s", exc)
                    st.error(f"Evaluation failed: {exc}")
        done = st.session_state.get("eval-result")
        if done and done[0] == pick:
            cmp = done[1]
            models = {f"Run {pick}": cmp.candidate}
            if cmp.active is not None:
                models[f"Active ({cmp.active_path.name})"] = cmp.active
            else:
                st.warning(cmp.note)
            st.dataframe(pd.DataFrame([{
                "model": k, "images": v.images, "mAP50": v.map50, "mAP50-95": v.map50_95,
                **{f"AP50 {c}": ap for c, ap in v.per_class_ap50.items()},
                **{f"{k2} ms": ms for k2, ms in v.speed_ms.items()}}
                for k, v in models.items()]), hide_index=True, width="stretch")
            for col, (label, res) in zip(st.columns(len(models)), models.items()):
                if res.confusion:
                    col.plotly_chart(px.imshow(
                        res.confusion, x=res.confusion_labels, y=res.confusion_labels,
                        text_auto=True, labels=dict(x="true", y="predicted"),
                        title=f"Confusion matrix: {label}"))
        st.markdown("**Class roles** of the promoted model (what each class means for "
                    "compliance):")
        try:
            class_names = detect_layout(Path(eval_by_id[pick].args["data"])).names
        except DatasetError as exc:
            st.warning(f"The run's data set cannot be read ({exc}); default roles are used.")
            class_names = ()
        role_cols = st.columns(max(1, min(len(class_names), 6)))
        roles = {n: role_cols[i % 6].selectbox(
            n, [r.value for r in Role], index=[r.value for r in Role].index(default_role(n)),
            key=f"role-{pick}-{n}") for i, n in enumerate(class_names)}
        who = st.text_input("Promoted by", key="promote-by")
        if st.button("Promote to active model", type="primary", key="promote",
                     disabled=not who.strip()):
            scores = None
            if done and done[0] == pick:
                c = done[1].candidate
                scores = {"split": c.split, "mAP50": c.map50, "mAP50-95": c.map50_95,
                          "per_class_ap50": c.per_class_ap50}
            try:
                entry = registry.promote(conn, pick, promoted_by=who.strip(), scores=scores,
                                         roles=roles or None)
                st.success(f"Run {pick} is now the active model ({entry.path.name}).")
            except (registry.RegistryError, ModelError, OSError) as exc:
                st.error(f"Promotion failed: {exc}")

    st.subheader("Model registry")
    entries = registry.history(conn)
    if entries:
        st.dataframe(pd.DataFrame([{
            "id": e.id, "active": e.active, "run": e.run_id, "data set": e.dataset,
            "by": e.promoted_by, "at": e.promoted_at, "sha256": e.sha256[:12],
            "roles": ", ".join(f"{k}: {v}" for k, v in e.roles.items()),
            "file": e.path.name} for e in entries]), hide_index=True, width="stretch")
    st.caption(f"Active model: `{registry.active_weights(conn)}`")
    if entries and st.button("Roll back to the previous model", key="rollback"):
        entry = registry.rollback(conn)
        st.success(f"Active model: {entry.path.name if entry else 'shipped default'}.")
