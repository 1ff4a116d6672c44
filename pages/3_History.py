"""History: compliance figures per station, shift and day, episode review, reports, retention.

A thin view: every number comes from core.analytics (SQL over the store's roll-ups), every
action from core.analytics.review / reports / retention, all reachable from `python -m core`.
"""

from __future__ import annotations

import base64
import logging
import math
import zlib
from datetime import date, timedelta

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core.accounts import Permission
from core.analytics import history as h
from core.analytics.demo import demo_store
from core.analytics.reports import episodes_csv, report_name, write_history_xlsx
from core.analytics.retention import last_runs, run_retention
from core.analytics.review import (
    export_reviewed,
    load_evidence,
    review_history,
    set_review,
    thumbnail_png,
)
from core.errors import GloveWatchError
from core.storage import Store, open_store
from core.storage.events import EpisodeRecord
from core.text import slug
from ui.text import md
from ui.widgets import Page, page_setup

log = logging.getLogger("glovewatch.pages.history")

page = page_setup("History", "📈", Permission.VIEW_HISTORY)
st.title("History")

COMPLIANCE_COLOUR = "#1e8449"
EPISODE_COLOUR = "#c0392b"


def _pct(v: float | None) -> str:
    return f"{v:.1%}" if v is not None else "no data"


@st.cache_data(ttl=60, show_spinner=False)
def _figures(url: str, f: h.HistoryFilter, by: str, version: tuple[int, ...]) -> dict:
    # ``version`` changes with every new episode, review, result or retention run, so a
    # review shows at once; coverage of running cameras shows within the ttl.
    store = open_store(url)
    return {
        "kpis": h.kpis(store, f),
        "trend": h.trend(store, f, by),
        "station_shift": h.station_shift(store, f),
        "hours": h.hour_profile(store, f),
        "top": h.top_stations(store, f),
        "coverage": h.coverage(store, f),
        "count": h.count_episodes(store, f),
    }


@st.cache_data(ttl=600, show_spinner=False, max_entries=2000)
def _thumb_uri(ep: EpisodeRecord) -> str | None:
    png = thumbnail_png(ep, 64)
    return "data:image/png;base64," + base64.b64encode(png).decode() if png else None


def _source(p: Page) -> Store:
    """The plant's store, or the demo year when the switch is on."""
    demo = st.sidebar.toggle(
        "Demo data (a synthetic year, 20 stations)",
        key="demo",
        help="Look at a generated year instead of this plant's data; "
        "nothing is mixed. Also: `python -m core synth --demo`.",
    )
    if not demo:
        return p.store
    with st.spinner("Generating the demo year (first time only, about a minute) …"):
        store, built = demo_store()
    if built:
        st.sidebar.success(f"Demo year generated: {built.events:,} episodes.")
    st.info("Showing **demo data**: a synthetic year, not this plant's records.")
    return store


def _filters(store: Store, span: h.DataSpan) -> h.HistoryFilter:
    default = h.default_filter(store)
    sb = st.sidebar
    sb.header("Filters")
    last = span.last or date.today()
    picked = sb.date_input(
        "Date range",
        value=(default.start, default.end),
        key="range",
        min_value=date(2000, 1, 1),
        max_value=max(last, date.today()) + timedelta(days=366),
        help=f"Data from {span.first} to {span.last}.",
    )
    if isinstance(picked, date):
        picked = (picked,)
    start = picked[0] if picked else default.start
    end = picked[1] if len(picked) > 1 else start
    infos = h.stations(store)
    hidden = {s.name for s in infos if s.deleted}
    stations = sb.multiselect(
        "Stations",
        [s.name for s in infos],
        key="stations",
        format_func=lambda n: f"{n} (hidden)" if n in hidden else n,
    )
    shifts = page.settings.shifts
    shift_names = [s.name for s in shifts] + [h.OFF_SHIFT]
    chosen_shifts = sb.multiselect(
        "Shifts",
        shift_names,
        key="shifts",
        help=", ".join(f"{s.name} {s.start}-{s.end}" for s in shifts),
    )
    classes = sb.multiselect("Episode class", h.classes(store), key="classes")
    severities = sb.multiselect("Severity", list(h.SEVERITIES), key="severities")
    reviews = sb.multiselect("Review state", list(h.REVIEW_STATES), key="reviews")
    return h.HistoryFilter(
        start=min(start, end),
        end=max(start, end),
        stations=tuple(stations),
        shifts=tuple(chosen_shifts),
        classes=tuple(classes),
        severities=tuple(severities),
        reviews=tuple(reviews),
    )


def _kpis(k: h.Kpis) -> None:
    t = k.total
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Compliance", _pct(t.compliance), help=k.basis_note)
    c2.metric(
        "Episodes",
        f"{t.episodes:,}",
        help=f"{t.dismissed:,} dismissed as false alarms are left out.",
    )
    c3.metric("Critical episodes", f"{t.critical:,}")
    c4.metric("Minutes monitored", f"{t.minutes:,.0f}")
    st.caption(k.basis_note)


def _count_axis(values: list[int]) -> dict:
    """Whole-number ticks for counts (never 0.5 episodes)."""
    top = max(values, default=0)
    return dict(rangemode="tozero", tickformat="d", dtick=max(1, math.ceil(top / 5)))


def _compliance_episodes_chart(
    rows: list[h.Stats], x: list[str], title: str, height: int, zoom: bool, x_title: str
) -> go.Figure:
    """Episodes as bars and compliance as a line over the same x (hours, days, weeks)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    counts = [r.episodes for r in rows]
    fig.add_bar(
        x=x, y=counts, name="episodes", opacity=0.35, marker_color=EPISODE_COLOUR, secondary_y=True
    )
    fig.add_scatter(
        x=x,
        y=[r.compliance for r in rows],
        name="compliance",
        mode="lines+markers",
        connectgaps=False,
        line_color=COMPLIANCE_COLOUR,
        customdata=[[r.basis or "no hands seen", round(r.minutes)] for r in rows],
        hovertemplate="%{x}: %{y:.1%} (%{customdata[0]}, "
        "%{customdata[1]} min monitored)<extra></extra>",
    )
    if zoom:
        fig.update_yaxes(
            title_text="compliance (zoomed: does not start at 0 %)",
            tickformat=".1%",
            secondary_y=False,
        )
    else:
        fig.update_yaxes(
            title_text="compliance", tickformat=".0%", range=[0, 1.02], secondary_y=False
        )
    # no grid of its own: its lines would fall between the compliance axis' lines
    fig.update_yaxes(title_text="episodes", secondary_y=True, showgrid=False, **_count_axis(counts))
    fig.update_xaxes(title_text=x_title, type="category")
    fig.update_layout(title=title, height=height, margin=dict(t=50, b=30))
    return fig


def _heatmap(rows: list[h.Stats]) -> go.Figure:
    stations = sorted({r.key[0] for r in rows})
    shifts = [s.name for s in page.settings.shifts]
    shifts += [h.OFF_SHIFT] if any(r.key[1] == h.OFF_SHIFT for r in rows) else []
    cell = {r.key: r for r in rows}
    z, text = [], []
    for s in stations:
        zr, tr = [], []
        for sh in shifts:
            r = cell.get((s, sh))
            zr.append(r.compliance if r else None)
            tr.append(
                f"{_pct(r.compliance)}<br>{r.episodes} episodes<br>"
                f"{r.minutes / 60:.0f} h, {r.basis or 'no hands'}"
                if r
                else "no data"
            )
        z.append(zr)
        text.append(tr)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=shifts,
            y=stations,
            text=text,
            colorscale="RdYlGn",
            zmin=0,
            zmax=1,
            hovertemplate="%{y} / %{x}<br>%{text}<extra></extra>",
            colorbar=dict(tickformat=".0%", title="compliance"),
        )
    )
    fig.update_layout(
        title="Compliance by station and shift (blank: no data)",
        height=max(300, 28 * len(stations) + 120),
        margin=dict(t=50, b=30),
    )
    return fig


def _top_chart(rows: list[h.Stats]) -> go.Figure:
    names = [r.key[0] for r in rows][::-1]
    fig = go.Figure()
    fig.add_bar(
        y=names,
        x=[r.episodes - r.critical for r in rows][::-1],
        name="warning",
        orientation="h",
        marker_color="#f0a202",
    )
    fig.add_bar(
        y=names,
        x=[r.critical for r in rows][::-1],
        name="critical",
        orientation="h",
        marker_color="#c0392b",
    )
    fig.update_xaxes(title_text="episodes", **_count_axis([r.episodes for r in rows]))
    fig.update_layout(
        barmode="stack",
        title="Top stations by episodes",
        height=max(300, 30 * len(rows) + 120),
        margin=dict(t=50, b=30),
    )
    return fig


def _coverage_chart(grid: h.CoverageGrid) -> go.Figure:
    minutes = np.where(grid.minutes > 0, grid.minutes, np.nan)  # blank: no camera
    text = np.where(
        grid.minutes > 0,
        np.where(
            np.isnan(grid.compliance),
            "no hands seen",
            np.char.mod("%.1f%%", np.nan_to_num(grid.compliance) * 100),
        ),
        "no camera",
    )
    fig = go.Figure(
        go.Heatmap(
            z=minutes,
            x=grid.days,
            y=grid.stations,
            text=text,
            colorscale="Blues",
            hovertemplate="%{y} %{x}<br>%{z:.0f} min monitored, compliance %{text}<extra></extra>",
            colorbar=dict(title="min"),
        )
    )
    fig.update_xaxes(type="category")
    fig.update_layout(
        title="Minutes monitored per station and day (blank: no camera)",
        height=max(300, 26 * len(grid.stations) + 120),
        margin=dict(t=50, b=30),
    )
    return fig


def _charts(fig: dict, by: str) -> None:
    zoom = st.toggle(
        "Zoom the compliance axis",
        key="zoom",
        help="Off: the axis runs from 0 to 100 %. On: it spans only the values "
        "shown, and its title says so.",
    )
    tabs = st.tabs(["Trend", "Station × shift", "Hour of day", "Top stations", "Coverage"])
    labels = {
        "hour": ("hour", lambda k: k[11:13] + ":00"),
        "day": ("day", lambda k: k),
        "week": ("week starting", lambda k: k),
    }
    x_title, fmt = labels[by]
    with tabs[0]:
        st.plotly_chart(
            _compliance_episodes_chart(
                fig["trend"],
                [fmt(r.key[0]) for r in fig["trend"]],
                f"Compliance and episodes per {by} (gaps: no hands seen)",
                380,
                zoom,
                x_title,
            ),
            width="stretch",
        )
    with tabs[1]:
        if fig["station_shift"]:
            st.plotly_chart(_heatmap(fig["station_shift"]), width="stretch")
        else:
            st.info("No station has data in this range.")
    with tabs[2]:
        st.plotly_chart(
            _compliance_episodes_chart(
                fig["hours"],
                [r.key[0] + ":00" for r in fig["hours"]],
                "Hour-of-day profile",
                360,
                zoom,
                "hour of day",
            ),
            width="stretch",
        )
    with tabs[3]:
        if fig["top"]:
            st.plotly_chart(_top_chart(fig["top"]), width="stretch")
        else:
            st.info("No episodes in this range (dismissed false alarms are not counted).")
    with tabs[4]:
        grid: h.CoverageGrid = fig["coverage"]
        if len(grid):
            st.plotly_chart(_coverage_chart(grid), width="stretch")
            no_cam = int((grid.minutes <= 0).sum())
            st.caption(
                f"{no_cam} of {len(grid)} station-days had no camera running: they "
                "have no compliance figure (never shown as 100 %)."
            )
        else:
            st.info("No coverage in this range.")


def _episode_table(store: Store, f: h.HistoryFilter, total: int) -> list[EpisodeRecord]:
    st.subheader("Episodes")
    order = st.selectbox("Order", list(h.EPISODE_ORDERS), key="order")
    eps = h.episodes(store, f, limit=200, order=order)
    st.caption(
        f"Showing {len(eps)} of {total:,} episodes (dismissed ones included, marked). "
        "Thumbnails for the first 50."
    )
    st.dataframe(
        # no picture: an empty cell ("" rather than None, which the grid shows as "None")
        [
            {
                "thumbnail": (_thumb_uri(e) if i < 50 else None) or "",
                "id": e.id,
                "started": e.started_at,
                "station": e.station,
                "duration s": round(e.duration_s, 1),
                "why": e.reason or "",
                "severity": e.severity,
                "review": e.review,
                "comment": e.review_comment or "",
            }
            for i, e in enumerate(eps)
        ],
        column_config={"thumbnail": st.column_config.ImageColumn("thumbnail", width="small")},
        hide_index=True,
        width="stretch",
    )
    return eps


def _episode_detail(store: Store, eps: list[EpisodeRecord]) -> None:
    if not eps:
        return
    labels = {e.id: f"#{e.id} {e.station} {e.started_at} ({e.severity}, {e.review})" for e in eps}
    ids = list(labels)
    chosen = st.session_state.get("episode-chosen")
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
    st.session_state["episode-chosen"] = eid
    ep = h.get_episode(store, eid)
    if ep is None:
        st.warning(f"Episode #{eid} no longer exists.")
        return
    left, right = st.columns([2, 1])
    with left:
        view = load_evidence(ep)
        if view.image is not None:
            st.image(view.image[:, :, ::-1], caption=view.message)
        else:
            st.warning(view.message)
        if ep.crop_path and ep.evidence_path:
            crop = load_evidence(ep, crop=True)
            if crop.image is not None:
                st.image(crop.image[:, :, ::-1], caption="hand crop", width=160)
    with right:
        st.markdown(
            f"**#{ep.id}** · {md(ep.station)} · {ep.started_at} → "
            f"{ep.ended_at or 'open'}  \n"
            f"{ep.duration_s:.1f} s · {ep.severity} · {md(ep.reason or ep.class_name)} "
            f"· peak {ep.peak_conf or 0:.2f} · zone {md(ep.zone or '-')} · "
            f"{f'rule v{ep.rule_version}' if ep.rule_version else 'default rule'} · "
            f"model {md(ep.model_name or '-')} "
            f"({(ep.model_hash or '-')[:12]})"
        )
        if page.account.can(Permission.REVIEW):
            with st.form("review"):
                state = st.radio(
                    "Review",
                    list(h.REVIEW_STATES),
                    index=list(h.REVIEW_STATES).index(ep.review),
                    horizontal=True,
                )
                comment = st.text_input("Comment", value=ep.review_comment or "")
                if st.form_submit_button("Save review"):
                    entry = set_review(store, ep.id, state, comment, page.account.name)
                    st.session_state["flash"] = (
                        f"Episode #{ep.id} marked {entry.review}"
                        + (" (left out of the figures)" if entry.review == "dismissed" else "")
                        + "."
                    )
                    st.rerun()  # every figure, the table and the picker show it at once
        else:
            st.caption("Reviewing episodes needs the operator role.")
        trail = review_history(store, ep.id)
        if trail:
            st.caption(
                "Review history: "
                + "; ".join(
                    f"{r.reviewed_at} {r.review} by {md(r.reviewed_by or '-')}"
                    + (f" ({md(r.comment)})" if r.comment else "")
                    for r in trail
                )
            )


def _exports(store: Store, f: h.HistoryFilter, has_data: bool) -> None:
    st.subheader("Reports and exports")
    c1, c2, c3 = st.columns(3)
    name = report_name(f)
    # a callable: the CSV is only built when someone clicks
    c1.download_button(
        "Download episodes CSV",
        lambda: episodes_csv(store, f),
        file_name=name.replace("-report-", "-episodes-").replace(".xlsx", ".csv"),
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
        rep = export_reviewed(store, out, f)
        c3.success(f"{rep.images} images, {rep.boxes} boxes → data set folder {out.name}")
        if rep.skipped:
            c3.caption(
                f"{len(rep.skipped)} reviewed episodes skipped, e.g. "
                + "; ".join(f"#{i}: {md(why)}" for i, why in rep.skipped[:3])
            )


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
        runs = last_runs(store)
        if runs:
            st.caption("Last runs: " + "; ".join(f"{r.ran_at} kept {r.days} days" for r in runs))


def main() -> None:
    store = _source(page)
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
    f = _filters(store, span)
    st.caption(
        f"Showing {md(f.describe())}. Class, severity and review filters apply to "
        f"episodes; hand-time has neither. Data in the store: {span.first} to "
        f"{span.last}."
    )
    hidden = [s.name for s in h.stations(store) if s.deleted]
    if hidden:
        st.caption(f"Hidden stations keep their history: {md(', '.join(hidden))}.")
    if f.days == 1:
        by = "hour"
        st.caption("One day is shown per hour.")
    else:
        by = st.radio("Trend per", ["day", "week"], horizontal=True, key="trend_by")
    fig = _figures(store.url, f, by, store.history.version())
    k: h.Kpis = fig["kpis"]
    t = k.total
    has_data = bool(t.watched_s or t.frames or fig["count"])
    if not has_data:
        st.warning(
            f"No data from {f.start} to {f.end} for these filters. The store holds data "
            f"from {span.first} to {span.last}."
        )
    else:
        _kpis(k)
        _charts(fig, by)
        eps = _episode_table(store, f, fig["count"])
        _episode_detail(store, eps)
    _exports(store, f, has_data)
    _retention(store)


main()
