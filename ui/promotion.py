"""The Training page's "Evaluate & promote" tab: a run and the active model scored on the
same split, class roles, promotion (admins), the model registry and roll-back."""

from __future__ import annotations

import logging

import pandas as pd
import streamlit as st

from core.accounts import Permission
from core.errors import GloveWatchError
from core.training import registry
from core.training.charts import confusion_chart
from core.training.runs import Run
from core.vision.annotate import class_hex
from core.vision.roles import Role, default_role
from core.vision.yolo_data import read_layout
from ui.curves import matrix_figure
from ui.text import md
from ui.widgets import Page

log = logging.getLogger("glovewatch.pages.training")
ROLES = [r.value for r in Role]


def _comparison_table(page: Page, pick: int, cmp: registry.Comparison) -> None:
    """Both models' scores on the same images, and their confusion matrices."""
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
    rows = [
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
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    for col, (label, res) in zip(st.columns(len(models)), models.items()):
        chart = confusion_chart(label, res)
        if chart is not None:
            col.plotly_chart(matrix_figure(chart), width="stretch")


def _evaluate_form(page: Page, pick: int) -> registry.Comparison | None:
    """Split and image size, the Evaluate button, and the comparison kept for this run."""
    c1, c2 = st.columns(2)
    split = c1.selectbox(
        "Split",
        registry.splits_of(page.store, pick),
        key="eval-split",
        help="Only the splits this run's data set has.",
    )
    size_choice = c2.selectbox(
        "Image size",
        ["each model's training size", 320, 480, 640, 800, 960, 1280],
        key="eval-imgsz",
    )
    imgsz = size_choice if isinstance(size_choice, int) else None
    if st.button("Evaluate against the active model", key="eval-go"):
        with st.spinner("Scoring both models on the same images …"):
            try:
                st.session_state["eval-result"] = (
                    pick,
                    registry.compare(page.store, pick, split, imgsz),
                )
            except GloveWatchError as exc:
                log.warning("evaluation failed: %s", exc)
                st.error(f"Evaluation failed: {md(exc)}")
    done = st.session_state.get("eval-result")
    return done[1] if done and done[0] == pick else None


def _role_choices(run: Run) -> dict[str, str]:
    """A role per class of the run's data set (default: by its name)."""
    st.markdown(
        "**Class roles** of the promoted model (what each class means for "
        "compliance; colours as on Live and Batch):"
    )
    try:
        class_names = read_layout(run.args["data"]).names
    except GloveWatchError as exc:
        st.warning(f"The run's data set cannot be read ({md(exc)}); default roles are used.")
        class_names = ()
    cols = st.columns(max(1, min(len(class_names), 6)))
    roles = {}
    for i, n in enumerate(class_names):
        col = cols[i % 6]
        roles[n] = col.selectbox(  # a class name from an imported data.yaml: shown as typed
            md(n), ROLES, index=ROLES.index(default_role(n)), key=f"role-{run.id}-{n}"
        )
        col.markdown(
            f"<span style='color:{class_hex(n)}'>■</span> {md(default_role(n))} by name",
            unsafe_allow_html=True,
        )
    return roles


def _promote_form(
    page: Page, pick: int, cmp: registry.Comparison | None, roles: dict[str, str]
) -> None:
    """Promote (admins), with a confirmation when the run scores lower."""
    if not page.account.can(Permission.PROMOTE_MODELS):
        st.caption("Promoting a model needs the admin role.")
        return
    accept = False
    if cmp is not None and cmp.candidate_is_worse and cmp.active is not None:
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
    worse = cmp is not None and cmp.candidate_is_worse
    if st.button(
        "Promote to active model", type="primary", key="promote", disabled=worse and not accept
    ):
        try:
            entry = registry.promote(
                page.store,
                pick,
                promoted_by=page.account.name,
                comparison=cmp,
                roles=roles or None,
                accept_lower=accept,
            )
            st.session_state["flash"] = f"Run {pick} is now the active model ({entry.path.name})."
            st.rerun()
        except GloveWatchError as exc:
            st.error(f"Promotion failed: {md(exc)}")


def registry_section(page: Page) -> None:
    """Every promotion, and the roll-back (admins)."""
    st.subheader("Model registry")
    if "flash" in st.session_state:
        st.success(md(st.session_state.pop("flash")))
    entries = registry.history(page.store)
    if entries:
        rows = [
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
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    else:
        st.caption("No model promoted yet.")
    if (
        entries
        and page.account.can(Permission.PROMOTE_MODELS)
        and st.button("Roll back to the previous model", key="rollback")
    ):
        registry.rollback(page.store, by=page.account.name)
        st.session_state["flash"] = (
            f"Rolled back: the active model is now {registry.active_model(page.store).label}."
        )
        st.rerun()


def evaluate_and_promote(page: Page, all_runs: list[Run]) -> None:
    """The tab: pick an ended run, score it against the active model, set roles, promote;
    then the registry."""
    st.caption(f"Active model: {md(registry.active_model(page.store).label)}")
    finished = {r.id: r for r in all_runs if r.has_weights}
    if not finished:
        st.info("No finished run with weights yet.")
    else:
        pick = st.selectbox(
            "Run", list(finished), key="eval-run", format_func=lambda i: f"{i}: {finished[i].name}"
        )
        cmp = _evaluate_form(page, pick)
        if cmp is not None:
            _comparison_table(page, pick, cmp)
        _promote_form(page, pick, cmp, _role_choices(finished[pick]))
    registry_section(page)
