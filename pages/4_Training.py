"""Training: import data sets, start runs that live in their own processes, watch their curves,
compare a run with the active model and promote it."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.accounts import Permission
from core.errors import GloveWatchError
from core.training import options, registry, runs
from core.training.datasets import (
    Dataset,
    class_count_rows,
    import_dataset,
    list_datasets,
    sample_images,
    split_image_counts,
)
from core.vision.annotate import class_colour
from core.vision.roles import Role, default_role
from core.vision.yolo_data import read_layout
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


def pick_dataset(key: str, empty_message: str) -> Dataset | None:
    """A data set selectbox over the registered data sets; None (with a hint) if none."""
    datasets = {d.id: d for d in list_datasets(store)}
    if not datasets:
        st.info(empty_message)
        return None
    pick = st.selectbox(
        "Data set",
        list(datasets),
        key=key,
        format_func=lambda i: (
            f"{i}: {datasets[i].name} ({datasets[i].task}, {', '.join(datasets[i].names)})"
        ),
    )
    return datasets[pick]


def _hex(bgr: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*reversed(bgr))


tab_data, tab_new, tab_runs, tab_eval = st.tabs(
    ["Data sets", "New run", "Runs", "Evaluate & promote"]
)

# ------------------------------------------------------------------------------ data sets
with tab_data:
    st.write(
        "Import a YOLO data set: a Roboflow export zip (`data.yaml` with `train/valid/test`)"
        " or an `images/` + `labels/` layout, boxes or segmentation polygons."
    )
    up = st.file_uploader("Data set zip", type=["zip"], key="ds-zip")
    folder = st.text_input("…or a folder on this server", key="ds-folder")
    ds_name = st.text_input("Name (optional)", key="ds-name")
    if st.button("Import", key="ds-import", disabled=not (up or folder.strip())):
        try:
            if up is not None:
                zip_path = s.uploads_dir / f"dataset-{Path(up.name).name}"
                zip_path.write_bytes(up.getvalue())
                try:
                    ds = import_dataset(
                        store, zip_path, name=ds_name or Path(up.name).stem, by=page.account.name
                    )
                finally:
                    zip_path.unlink(missing_ok=True)
            else:
                ds = import_dataset(
                    store, folder.strip(), name=ds_name or None, by=page.account.name
                )
            st.success(
                f"Imported data set {ds.id} '{md(ds.name)}' ({ds.task}, {len(ds.names)} classes)."
            )
        except (GloveWatchError, OSError) as exc:
            log.warning("data set import failed: %s", exc)
            st.error(f"Import failed: {md(exc)}")

    ds = pick_dataset("ds-pick", "No data set imported yet.")
    if ds is not None:
        rep = ds.report
        cols = st.columns(len(rep.images) + 1)
        cols[0].metric("Classes", len(ds.names))
        for col, (split, n) in zip(cols[1:], split_image_counts(rep).items()):
            col.metric(f"{split} images", n)
        table = pd.DataFrame(class_count_rows(rep), columns=["split", "class", "instances"])
        st.dataframe(
            table.pivot(index="class", columns="split", values="instances").reindex(list(ds.names)),
            width="stretch",
        )
        for w in rep.warnings:
            st.warning(w)
        problems = {
            "Missing labels": rep.missing_labels,
            "Empty label files": rep.empty_images,
            "Out-of-range coordinates": rep.out_of_range,
            "Class ids beyond names": rep.bad_class_ids,
            "Unreadable label lines": rep.malformed,
            "Duplicates across splits": [" = ".join(d) for d in rep.duplicates],
        }
        for title, items in problems.items():
            if items:
                with st.expander(f"{title} ({len(items)})"):
                    st.code("\n".join(items[:200]))
        if st.checkbox("Show sample images with their labels", key="ds-samples"):
            st.caption(
                "Colours as on Live and Batch: "
                + ", ".join(f"{md(n)} ({default_role(n)})" for n in ds.names)
            )
            for col, (name, img) in zip(st.columns(3) * 2, sample_images(ds, 6)):
                col.image(img, channels="BGR", caption=name)

# ------------------------------------------------------------------------------ new run
with tab_new:
    ds = pick_dataset("new-ds", "Import a data set first (tab **Data sets**).")
    if ds is not None:
        source = st.radio(
            "Model",
            ["YOLO11 from scratch", "Fine-tune local weights", "Project variant (models/)"],
            key="new-src",
            horizontal=True,
        )
        model: str | None = None
        if source == "YOLO11 from scratch":
            c1, c2 = st.columns(2)
            size = c1.selectbox(
                "Size",
                options.SIZES,
                key="new-size",
                format_func=lambda x: {
                    "n": "n (nano, fastest)",
                    "s": "s (small)",
                    "m": "m (medium)",
                    "l": "l (large)",
                    "x": "x (extra large)",
                }[x],
            )
            task = c2.selectbox(
                "Task",
                ["detect", "segment"],
                key="new-task",
                index=1 if ds.task == "segment" else 0,
            )
            model = f"yolo11{size}{'-seg' if task == 'segment' else ''}.yaml"
        elif source == "Fine-tune local weights":
            active = registry.active_model(store)
            weight_choices = {
                f"Active model ({active.path.name})": str(active.path),
                f"Shipped default ({s.default_weights.name})": str(s.default_weights),
            }
            for r in ALL_RUNS:
                if r.best_pt.is_file():
                    weight_choices[f"Run {r.id} '{r.name}' best.pt"] = str(r.best_pt)
            weight_choices["Upload a .pt file"] = ""
            label = st.selectbox("Weights", list(weight_choices), key="new-weights")
            model = weight_choices[label] or None
            if not model:
                pt = st.file_uploader("Weights file", type=["pt"], key="new-pt")
                if pt is not None:
                    try:
                        model = str(save_upload(pt.name, pt.getvalue()))
                    except GloveWatchError as exc:
                        st.error(f"This weights file cannot be used: {md(exc)}")
        else:
            variants = options.project_variants()
            if not variants:
                st.info("The project has no model variants in models/ yet.")
            else:
                model = st.selectbox("Variant", [v.name for v in variants], key="new-variant")
                st.caption(md(options.describe_variant(options.MODELS_DIR / model)))

        c1, c2, c3, c4 = st.columns(4)
        epochs = c1.number_input("Epochs", 1, 1000, 50, key="new-epochs")
        imgsz = c2.select_slider(
            "Image size", [160, 320, 416, 480, 640, 800, 960, 1280], 640, key="new-imgsz"
        )
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
            help="Hyper-parameters and augmentation only, e.g. lr0, "
            "mosaic, cos_lr, freeze; options that name files or "
            "folders are refused.",
        )
        if st.button("Train", type="primary", key="new-train", disabled=not model):
            try:
                run = runs.submit(
                    store,
                    options.TrainSpec(
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
                    ),
                    by=page.account.name,
                )
                st.success(
                    f"Run {run.id} '{md(run.name)}' is {run.status} on {run.device}. "
                    "It goes on if you close this page; follow it in the **Runs** tab."
                )
                if run.message:
                    st.info(md(run.message))
            except GloveWatchError as exc:
                log.warning("run not started: %s", exc)
                st.error(f"The run was not started: {md(exc)}")


# ------------------------------------------------------------------------------ runs
def _fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    m, sec = divmod(int(seconds), 60)
    hrs, m = divmod(m, 60)
    return f"{hrs}:{m:02d}:{sec:02d}"


def _chart(metrics: runs.Metrics, columns: list[str], title: str) -> go.Figure:
    epochs = metrics.series("epoch")
    fig = go.Figure()
    for c in columns:
        fig.add_trace(
            go.Scatter(
                x=epochs, y=metrics.series(c), mode="lines+markers", name=c.replace("metrics/", "")
            )
        )
    fig.update_xaxes(title_text="epoch", tickformat="d", dtick=max(1, math.ceil(len(epochs) / 10)))
    fig.update_layout(title=title, height=320, margin=dict(l=10, r=10, t=40, b=10))
    return fig


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
    cols[2].metric("Elapsed", _fmt_time(prog.elapsed_s), help="Wall-clock time since start.")
    cols[3].metric("Remaining", _fmt_time(prog.remaining_s))
    if prog.epochs:
        st.progress(min(1.0, prog.epochs_done / prog.epochs))
    if run.message:
        (st.error if run.status == "failed" else st.info)(md(run.message))
    if metrics.rows:
        losses = [c for c in metrics.columns if c.endswith("_loss")]
        scores = [c for c in metrics.columns if c.startswith("metrics/")]
        c1, c2 = st.columns(2)
        c1.plotly_chart(_chart(metrics, losses, "Losses"), width="stretch")
        c2.plotly_chart(_chart(metrics, scores, "Precision, recall, mAP"), width="stretch")
    else:
        st.caption("Curves appear after the first epoch.")
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


with tab_runs:
    if not ALL_RUNS:
        st.info("No training run yet.")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "id": r.id,
                        "name": r.name,
                        "status": r.status,
                        "device": r.device,
                        "data set": r.dataset,
                        "model": Path(r.model).name,
                        "created": r.created_at,
                        "elapsed": _fmt_time(runs.progress(r).elapsed_s),
                        "best mAP50-95": runs.best_metric(r.best, "mAP50-95"),
                        "message": r.message or "",
                    }
                    for r in ALL_RUNS
                ]
            ),
            hide_index=True,
            width="stretch",
        )
        run_by_id = {r.id: r for r in ALL_RUNS}
        pick = st.selectbox(
            "Open run",
            list(run_by_id),
            key="run-pick",
            format_func=lambda i: f"{i}: {run_by_id[i].name}",
        )
        run = run_by_id[pick]
        b1, b2, _ = st.columns([1, 1, 4])
        if run.status in runs.ACTIVE and b1.button("Stop", key="run-stop"):
            try:
                runs.stop(store, run.id, by=page.account.name)
                st.rerun()
            except GloveWatchError as exc:
                st.error(md(exc))
        if run.status in ("stopped", "failed") and b2.button("Resume", key="run-resume"):
            try:
                runs.resume(store, run.id, by=page.account.name)
                st.rerun()
            except GloveWatchError as exc:
                st.error(md(exc))
        live = run.status in runs.ACTIVE
        st.fragment(show_run, run_every=5 if live else None)(run.id)

# ------------------------------------------------------------------------------ evaluate
with tab_eval:
    active = registry.active_model(store)
    st.caption(f"Active model: {md(active.label)}")
    finished = [r for r in ALL_RUNS if r.status not in runs.ACTIVE and r.best_pt.is_file()]
    if not finished:
        st.info("No finished run with weights yet.")
    else:
        eval_by_id = {r.id: r for r in finished}
        pick = st.selectbox(
            "Run",
            list(eval_by_id),
            key="eval-run",
            format_func=lambda i: f"{i}: {eval_by_id[i].name}",
        )
        splits = registry.splits_of(store, pick)
        c1, c2 = st.columns(2)
        split = c1.selectbox(
            "Split", splits, key="eval-split", help="Only the splits this run's data set has."
        )
        size_choice = c2.selectbox(
            "Image size",
            ["each model's training size", 320, 480, 640, 800, 960, 1280],
            key="eval-imgsz",
        )
        imgsz = None if isinstance(size_choice, str) else int(size_choice)
        if st.button("Evaluate against the active model", key="eval-go"):
            with st.spinner("Scoring both models on the same images …"):
                try:
                    st.session_state["eval-result"] = (
                        pick,
                        registry.compare(store, pick, split, imgsz),
                    )
                except GloveWatchError as exc:
                    log.warning("evaluation failed: %s", exc)
                    st.error(f"Evaluation failed: {md(exc)}")
        done = st.session_state.get("eval-result")
        cmp: registry.Comparison | None = done[1] if done and done[0] == pick else None
        if cmp is not None:
            models = {f"Run {pick}": cmp.candidate}
            if cmp.active is not None:
                models[f"Active ({cmp.active_path.name})"] = cmp.active
            else:
                st.warning(md(cmp.note))
            st.caption(
                f"Scored on {md(cmp.candidate.describe())}"
                + (f"; active model at imgsz {cmp.active.imgsz}" if cmp.active else "")
                + f". Confusion matrices at {cmp.candidate.operating_point}."
            )
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "model": k,
                            "images": v.images,
                            "imgsz": v.imgsz,
                            "mAP50": v.map50,
                            "mAP50-95": v.map50_95,
                            **{f"AP50 {c}": ap for c, ap in v.per_class_ap50.items()},
                            "ms / image": round(v.ms_per_image, 1),
                        }
                        for k, v in models.items()
                    ]
                ),
                hide_index=True,
                width="stretch",
            )
            for col, (label, res) in zip(st.columns(len(models)), models.items()):
                if res.confusion:
                    fig = go.Figure(
                        go.Heatmap(
                            z=res.confusion,
                            x=res.confusion_labels,
                            y=res.confusion_labels,
                            text=res.confusion,
                            texttemplate="%{text}",
                            colorscale="Blues",
                            showscale=False,
                        )
                    )
                    fig.update_layout(
                        title=f"Confusion matrix: {label}",
                        height=360,
                        xaxis_title="true",
                        yaxis_title="predicted",
                        margin=dict(l=10, r=10, t=40, b=10),
                    )
                    for axis in (fig.layout.xaxis, fig.layout.yaxis):
                        axis.tickfont = dict(color="#333")
                    col.plotly_chart(fig, width="stretch")
        st.markdown(
            "**Class roles** of the promoted model (what each class means for "
            "compliance; colours as on Live and Batch):"
        )
        try:
            class_names = read_layout(eval_by_id[pick].args["data"]).names
        except GloveWatchError as exc:
            st.warning(f"The run's data set cannot be read ({md(exc)}); default roles are used.")
            class_names = ()
        role_cols = st.columns(max(1, min(len(class_names), 6)))
        roles = {}
        for i, n in enumerate(class_names):
            col = role_cols[i % 6]
            roles[n] = col.selectbox(
                n,
                [r.value for r in Role],
                index=[r.value for r in Role].index(default_role(n)),
                key=f"role-{pick}-{n}",
            )
            col.markdown(
                f"<span style='color:{_hex(class_colour(n))}'>■</span> "
                f"{md(default_role(n))} by name",
                unsafe_allow_html=True,
            )
        if page.account.can(Permission.PROMOTE_MODELS):
            worse = cmp is not None and cmp.candidate_is_worse
            accept = False
            if worse:
                assert cmp is not None and cmp.active is not None
                st.warning(
                    f"Run {pick} scores lower than the active model on this split "
                    f"(mAP50 {cmp.candidate.map50:.3f} vs {cmp.active.map50:.3f})."
                )
                accept = st.checkbox("Promote it anyway", key="promote-accept")
            if cmp is None:
                st.caption(
                    "Without an evaluation the promotion records the run's best "
                    "validation epoch as its score."
                )
            if st.button(
                "Promote to active model",
                type="primary",
                key="promote",
                disabled=worse and not accept,
            ):
                try:
                    entry = registry.promote(
                        store,
                        pick,
                        promoted_by=page.account.name,
                        comparison=cmp,
                        roles=roles or None,
                        accept_lower=accept,
                    )
                    st.session_state["flash"] = (
                        f"Run {pick} is now the active model ({entry.path.name})."
                    )
                    st.rerun()
                except GloveWatchError as exc:
                    st.error(f"Promotion failed: {md(exc)}")
        else:
            st.caption("Promoting a model needs the admin role.")

    st.subheader("Model registry")
    if "flash" in st.session_state:
        st.success(md(st.session_state.pop("flash")))
    entries = registry.history(store)
    if entries:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "id": e.id,
                        "active": e.active,
                        "run": e.run_id,
                        "by": e.promoted_by,
                        "at": e.promoted_at,
                        "mAP50": e.scores.get("mAP50"),
                        "scored on": e.score_source(),
                        "sha256": e.sha256[:12],
                        "roles": ", ".join(f"{k}: {v}" for k, v in e.roles.items()),
                        "file": e.path.name,
                    }
                    for e in entries
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    if (
        entries
        and page.account.can(Permission.PROMOTE_MODELS)
        and st.button("Roll back to the previous model", key="rollback")
    ):
        registry.rollback(store, by=page.account.name)
        st.session_state["flash"] = (
            f"Rolled back: the active model is now {registry.active_model(store).label}."
        )
        st.rerun()
