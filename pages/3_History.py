"""History: compliance per station, shift and day, episode review, reports, retention. A thin
view: numbers from core.analytics.history, charts as plot specs of core.analytics.charts,
actions in core.analytics.review / reports / retention, all reachable from `python -m core`."""

from __future__ import annotations

import logging
import zlib
from datetime import date
from functools import partial

import streamlit as st

from core.accounts import Permission
from core.analytics import charts, episode_table, reading, review
from core.analytics import history as h
from core.analytics.demo import demo_store
from core.analytics.reports import episodes_csv, report_name, summary_csv, write_history_xlsx
from core.analytics.retention import last_runs, run_retention
from core.errors import GloveWatchError
from core.storage import Store, open_store
from core.storage.events import EpisodeRecord
from core.text import slug
from ui.charts import figure
from ui.text import md
from ui.widgets import page_setup, warned

log = logging.getLogger("glovewatch.pages.history")

page = page_setup("History", "📈", Permission.VIEW_HISTORY)
st.title("History")


@st.cache_data(ttl=60, show_spinner=False)
def _figures(url: str, f: h.HistoryFilter, by: str, version: tuple[int, ...]) -> h.PageFigures:
    # ``version`` changes with every new episode, review, result or retention run, so a
    # review shows at once; coverage of running cameras shows within the ttl.
    return h.page_figures(open_store(url), f, by)


@st.cache_data(ttl=600, show_spinner=False, max_entries=2000)
def _thumb_uri(ep: EpisodeRecord) -> str | None:
    return review.thumbnail_uri(ep, 64)


def _k(name: str) -> str:
    """A widget key of the store shown: the demo has its own dates, stations and choices (a
    widget keeps showing its old value when only its state is cleared)."""
    return f"{name}-demo" if st.session_state.get("demo") else name


def _source() -> Store:
    """The plant's store, or the demo year when the switch is on."""
    demo = st.sidebar.toggle(
        "Demo data (a synthetic year, 20 stations)",
        key="demo",
        help="A generated year instead of this plant's data (nothing is mixed); see CLI `synth`.",
    )
    if not demo:
        return page.store
    with st.spinner("Generating the demo year (first time only, about a minute) …"):
        store, built = demo_store()
    if built:
        st.sidebar.success(f"Demo year generated: {built.events:,} episodes.")
    st.info("Showing **demo data**: a synthetic year, not this plant's records.")
    return store


def _filters(store: Store, span: h.DataSpan, known: list[h.StationRecord]) -> h.HistoryFilter:
    default = h.default_filter(store)
    sb = st.sidebar
    sb.header("Filters")
    picked = sb.date_input(
        "Date range",
        value=(default.start, default.end),
        key=_k("range"),
        min_value=date(2000, 1, 1),
        help=f"Data from {span.first} to {span.last}.",
    )
    hidden = {s.name for s in known if s.deleted}
    stations = sb.multiselect(
        "Stations",
        [s.name for s in known],
        key=_k("stations"),
        format_func=lambda n: f"{n} (hidden)" if n in hidden else n,
    )
    shifts = page.settings.shifts
    chosen_shifts = sb.multiselect(
        "Shifts",
        [s.name for s in shifts] + [h.OFF_SHIFT],
        key=_k("shifts"),
        help=", ".join(f"{s.name} {s.start}-{s.end}" for s in shifts),
    )
    return h.HistoryFilter(
        *h.picked_range(picked, default),
        stations=tuple(stations),
        shifts=tuple(chosen_shifts),
        classes=tuple(sb.multiselect("Episode class", h.classes(store), key=_k("classes"))),
        severities=tuple(sb.multiselect("Severity", list(h.SEVERITIES), key=_k("severities"))),
        reviews=tuple(sb.multiselect("Review state", list(h.REVIEW_STATES), key=_k("reviews"))),
        plant_shifts=shifts,
    )


def _kpis(k: h.Kpis) -> None:
    for col, fig in zip(st.columns(5), h.headline(k)):
        col.metric(fig.label, fig.text, help=fig.help)
    st.caption(k.basis_note)


def _charts(fig: h.PageFigures, by: str) -> None:
    zoom = st.toggle(
        "Zoom the compliance axis",
        key="zoom",
        help="Off: from 0 to 100 %. On: only the values shown, and its title says so.",
    )
    shifts = [s.name for s in page.settings.shifts]
    shown = charts.history_charts(fig, by, zoom, shifts).tabs()
    for tab, chart in zip(st.tabs([c.title for c in shown]), shown):
        if chart.spec is None:
            tab.info(chart.empty)
            continue
        tab.plotly_chart(figure(chart.spec), width="stretch")
        if chart.note:
            tab.caption(chart.note)


def _episode_table(store: Store, f: h.HistoryFilter, fig: h.PageFigures) -> list[EpisodeRecord]:
    st.subheader("Episodes")
    order = st.selectbox("Order", list(h.EPISODE_ORDERS), key="order")
    eps = h.episodes(store, f, limit=200, order=order)
    st.caption(f"Showing the first {len(eps)}. {fig.table_note} Thumbnails for the first 50.")
    st.dataframe(
        episode_table.episode_rows(eps, [_thumb_uri(e) for e in eps[:50]]),
        column_order=["thumbnail", *episode_table.EPISODE_COLUMNS],
        column_config={"thumbnail": st.column_config.ImageColumn("thumbnail", width="small")},
        hide_index=True,
        width="stretch",
    )
    return eps


def _review_form(store: Store, ep: EpisodeRecord) -> None:
    if not page.account.can(Permission.REVIEW):
        st.caption("Reviewing episodes needs the operator role.")
        return
    with st.form("review"):
        states = list(h.REVIEW_STATES)
        state = st.radio("Review", states, index=states.index(ep.review), horizontal=True)
        comment = st.text_input("Comment", value=ep.review_comment or "")
        if st.form_submit_button("Save review"):
            entry = review.set_review(store, ep.id, state, comment, page.account.name)
            st.session_state["flash"] = review.review_note(entry)
            st.rerun()  # every figure, the table and the picker show it at once


def _episode_detail(store: Store, eps: list[EpisodeRecord]) -> None:
    if not eps:
        return
    labels = {e.id: review.episode_label(e) for e in eps}
    ids, chosen = list(labels), st.session_state.get(_k("episode-chosen"))
    # The browser's picker keeps showing the old text of the chosen episode when only its label
    # changes (a review): a key that changes with the labels redraws it; the choice carries over.
    key = f"episode-{zlib.crc32('|'.join(labels.values()).encode()):08x}"
    eid = st.selectbox(
        "Open episode",
        ids,
        index=ids.index(chosen) if chosen in ids else 0,
        key=key,
        format_func=labels.__getitem__,
    )
    st.session_state[_k("episode-chosen")] = eid
    ep = h.get_episode(store, eid)
    if ep is None:
        st.warning(f"Episode #{eid} no longer exists.")
        return
    left, right = st.columns([2, 1])
    view = review.load_evidence(ep)
    if view.image is not None:
        left.image(view.image[:, :, ::-1], caption=view.message)
    else:
        left.warning(view.message)
    crop = review.load_evidence(ep, crop=True) if ep.crop_path and ep.evidence_path else None
    if crop is not None and crop.image is not None:
        left.image(crop.image[:, :, ::-1], caption="hand crop", width=160)
    with right:
        st.markdown(md(review.episode_summary(ep)))
        _review_form(store, ep)
        if trail := review.review_history(store, ep.id):
            st.caption(md(review.review_trail(trail)))


def _exports(store: Store, f: h.HistoryFilter, has_data: bool) -> None:
    st.subheader("Reports and exports")
    c1, c2, c3 = st.columns(3)
    name = report_name(f)
    for label, build, part in (
        ("Download episodes CSV", episodes_csv, "-episodes-"),
        ("Download summary CSV (the figures above)", summary_csv, "-summary-"),
    ):
        c1.download_button(  # a callable: the CSV is only built when someone clicks
            label,
            partial(build, store, f),
            file_name=name.replace("-report-", part).replace(".xlsx", ".csv"),
            mime="text/csv",
            disabled=not has_data,
        )
    if c2.button("Build Excel report", disabled=not has_data):
        path = page.settings.exports_dir / slug(name, 180)
        with st.spinner("Writing the workbook …"):
            write_history_xlsx(path, store, f)
        st.session_state["xlsx"] = (path.name, path.read_bytes())
    if "xlsx" in st.session_state:
        xname, data = st.session_state["xlsx"]
        c2.download_button(
            "Download Excel report",
            data,
            file_name=xname,
            mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        c2.caption(md(xname))
    if page.account.can(Permission.MANAGE_DATASETS) and c3.button(
        "Export reviewed evidence (YOLO)", disabled=not has_data
    ):
        out = page.settings.datasets_dir / f"reviewed-{f.slug()}"[:120]
        rep = review.export_reviewed(store, out, f)
        c3.success(f"{rep.images} images, {rep.boxes} boxes → data set folder {md(out.name)}")
        if rep.skipped:
            c3.caption(md(rep.skipped_note()))


def _retention(store: Store) -> None:
    if not page.account.can(Permission.RUN_RETENTION):
        return
    with st.expander("Retention (admins)"):
        st.write(
            "Deletes evidence images and raw per-frame / per-second rows older than the "
            "given number of days. Episode rows and hourly figures stay, so the numbers "
            "above do not change."
        )
        days = st.number_input(
            "Keep days", min_value=1, value=page.settings.retention_days, key="keep_days"
        )
        sure = st.checkbox(
            f"Yes, delete evidence and raw rows older than {int(days)} days", key="retention_sure"
        )
        if st.button("Run retention now", disabled=not sure):
            rep = run_retention(store, int(days), by=page.account.name)
            st.session_state["flash"] = rep.summary()
            st.rerun()
        if runs := last_runs(store):
            st.caption("Last runs: " + "; ".join(f"{r.ran_at} kept {r.days} days" for r in runs))


def main() -> None:
    store = _source()
    if "flash" in st.session_state:
        st.success(md(st.session_state.pop("flash")))
    try:
        span = h.data_span(store)
    except GloveWatchError as exc:
        log.error("history: %s", exc)
        st.error(str(exc))
        return
    if span.empty:
        st.info(
            "The store has no monitoring data yet: nothing to show. Run batch detection "
            "or live monitoring first, or switch on **Demo data** in the sidebar."
        )
        _retention(store)
        return
    known = h.stations(store)  # read once: the filters and the hidden-stations line
    f = warned(*reading.prepare(store, _filters(store, span, known), span))  # <= 5 years
    st.caption(
        f"Showing {md(f.describe())}. Class, severity and review filters apply to "
        f"episodes; hand-time has neither. Data in the store: {span.first} to {span.last}."
    )
    hidden = [s.name for s in known if s.deleted]
    if hidden:
        st.caption(f"Hidden stations keep their history: {md(', '.join(hidden))}.")
    by = h.trend_granularity(f)
    if by == "hour":
        st.caption("One day is shown per hour.")
    else:
        by = st.radio("Trend per", ["day", "week"], horizontal=True, key="trend_by")
    fig = _figures(store.url, f, by, store.history.version())
    if not fig.has_data:
        st.warning(
            f"No data from {f.start} to {f.end} for these filters. The store holds data "
            f"from {span.first} to {span.last}."
        )
    else:
        _kpis(fig.kpis)
        _charts(fig, by)
        _episode_detail(store, _episode_table(store, f, fig))
    _exports(store, f, fig.has_data)
    _retention(store)


main()
