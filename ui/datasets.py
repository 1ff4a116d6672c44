"""The Training page's data set views: pick one, import a zip or a folder, and the import's
report (images and instances per split and class, warnings, problem files, samples)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import streamlit as st

from core.errors import GloveWatchError
from core.storage import Store
from core.training.datasets import (
    Dataset,
    class_count_rows,
    import_dataset,
    list_datasets,
    sample_images,
    split_image_counts,
)
from core.vision.roles import default_role
from ui.text import md
from ui.widgets import Page

log = logging.getLogger("glovewatch.pages.training")


def pick_dataset(store: Store, key: str, empty_message: str) -> Dataset | None:
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


def import_form(page: Page) -> None:
    """A zip upload or a server folder, imported into the data sets."""
    store, s = page.store, page.settings
    up = st.file_uploader("Data set zip", type=["zip"], key="ds-zip")
    folder = st.text_input("…or a folder on this server", key="ds-folder")
    ds_name = st.text_input("Name (optional)", key="ds-name")
    if not st.button("Import", key="ds-import", disabled=not (up or folder.strip())):
        return
    try:
        if up is not None:
            zip_path = s.uploads_dir / f"dataset-{Path(up.name).name}"
            zip_path.write_bytes(up.getvalue())
            try:
                name = ds_name or Path(up.name).stem
                ds = import_dataset(store, zip_path, name=name, by=page.account.name)
            finally:
                zip_path.unlink(missing_ok=True)
        else:
            ds = import_dataset(store, folder.strip(), name=ds_name or None, by=page.account.name)
        st.success(
            f"Imported data set {ds.id} '{md(ds.name)}' ({ds.task}, {len(ds.names)} classes)."
        )
    except (GloveWatchError, OSError) as exc:
        log.warning("data set import failed: %s", exc)
        st.error(f"Import failed: {md(exc)}")


def dataset_report(ds: Dataset) -> None:
    """Images and instances per split and class, warnings, problem files, samples."""
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
    for title, items in rep.problems.items():
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
