"""History: compliance figures per station, shift and day, episode review, reports, retention.

A thin view: every number comes from core.history (SQL over the store), every action from
core.review / core.reports / core.retention, all reachable from `python -m core` too.
"""

from __future__ import annotations

import base64
import logging
import sqlite3
from datetime import date, datetime, timedelta

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core import history as h
from core import store
from core.config import settings
from core.reports import episodes_csv, write_history_xlsx
from core.retention import last_runs, run_retention
from core.review import export_reviewed, load_evidence, review_history, set_review, thumbnail_png
from ui.widgets import page_setup

log = logging.getLogger("glovewatch.pages.history")

home = page_setup("History", "📈")
st.title("History")


@st.cache_resource
def _connection(db_path: str) -> sqlite3.Connection:
    return store.connect(db_path)


COMPLIANCE_COLOUR = "#1e8449"
EPISODE_COLOUR = "#c0392b"


def _pct(v: float | None) -> str:
    return f"{v:.1%}" if v is not None else "no data"


@st.cache_data(ttl=60, show_spinner=False)
def _figures(db_path: str, f: h.HistoryFilter, by: str, rev: int) -> dict:
    conn = _connection(db_path)
    return {"kpis": h.kpis(conn, f), "trend": h.trend(conn, f, by),
            "station_shift": h.station_shift(conn, f), "hours": h.hour_profile(conn, f),
            "top": h.top_stations(conn, f), "coverage": h.coverage(conn, f),
            "count": h.count_episodes(conn, f)}


@st.cache_data(ttl=600, show_spinner=False, max_entries=2000)
def _thumb_uri(ep: h.Episode) -> str | None:
    png = thumbnail_png(ep, 64)
    return "data:image/png;base64," + base64.b64encode(png).decode() if png else None


def _open_store() -> tuple[str, sqlite3.Connection] | None:
    if home is None:  # page_setup already said why
        return None
    try:
        return str(home.db_path), _connection(str(home.db_path))
    except (RuntimeError, sqlite3.DatabaseError) as exc:
        log.error("history: store cannot be opened: %s", exc)
        st.error(f"The store cannot be opened: {exc}")
        return None


def _filters(conn: sqlite3.Connection, span: h.DataSpan) -> h.HistoryFilter:
    default = h.default_filter(conn)
    sb = st.sidebar
    sb.header("Filters")
    picked = sb.date_input("Date range", value=(default.start, default.end), key="range",
                           min_value=date(2000, 1, 1),
                           max_value=max(span.last, date.today()) + timedelta(days=366),
                           help=f"Data from {span.first} to {span.last}.")
    if isinstance(picked, date):
        picked = (picked,)
    start = picked[0] if picked else default.start
    end = picked[1] if len(picked) > 1 else start
    infos = h.stations(conn)
    deleted = {s.name for s in infos if s.deleted}
    stations = sb.multiselect("Stations", [s.name for s in infos], key="stations",
                              format_func=lambda n: f"{n} (deleted)" if n in deleted else n)
    shift_names = [s.name for s in settings().shifts] + [h.OFF_SHIFT]
    shifts = sb.multiselect("Shifts", shift_names, key="shifts",
                            help=", ".join(f"{s.name} {s.start}-{s.end}"
                                           for s in settings().shifts))
    classes = sb.multiselect("Episode class", h.classes(conn), key="classes")
    severities = sb.multiselect("Severity", list(h.SEVERITIES), key="severities")
    reviews = sb.multiselect("Review state", list(h.REVIEW_STATES), key="reviews")
    return h.HistoryFilter(start=min(start, end), end=max(start, end),
                           stations=tuple(stations), shifts=tuple(shifts),
                           classes=tuple(classes), severities=tuple(severities),
                           reviews=tuple(reviews))


def _kpis(k: h.Kpis, minutes: float) -> None:
    t = k.total
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Compliance", _pct(t.compliance), help=k.basis_note)
    c2.metric("Episodes", f"{t.episodes:,}", help=f"{t.dismissed:,} dismissed as false alarms "
              "are left out.")
    c3.metric("Critical episodes", f"{t.critical:,}")
    c4.metric("Minutes monitored", f"{minutes:,.0f}")
    st.caption(k.basis_note)


def _compliance_episodes_chart(rows: list[h.Stats], x: list[str], title: str,
                               height: int) -> go.Figure:
    """Episodes as bars and compliance as a line over the same x (days, weeks or hours)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=x, y=[r.episodes for r in rows], name="episodes", opacity=0.35,
                marker_color=EPISODE_COLOUR, secondary_y=True)
    fig.add_scatter(x=x, y=[r.compliance for r in rows], name="compliance", mode="lines+markers",
                    connectgaps=False, line_color=COMPLIANCE_COLOUR,
                    customdata=[[r.basis or "no hands seen", round(r.minutes)] for r in rows],
                    hovertemplate="%{x}: %{y:.1%} (%{customdata[0]}, "
                                  "%{customdata[1]} min monitored)<extra></extra>")
    fig.update_yaxes(title_text="compliance", tickformat=".1%", secondary_y=False)
    fig.update_yaxes(title_text="episodes", secondary_y=True)
    fig.update_layout(title=title, height=height, margin=dict(t=50, b=30))
    return fig


def _heatmap(rows: list[h.Stats]) -> go.Figure:
    stations = sorted({r.key[0] for r in rows})
    shifts = [s.name for s in settings().shifts]
    shifts += [h.OFF_SHIFT] if any(r.key[1] == h.OFF_SHIFT for r in rows) else []
    cell = {r.key: r for r in rows}
    z, text = [], []
    for s in stations:
        zr, tr = [], []
        for sh in shifts:
            r = cell.get((s, sh))
            zr.append(r.compliance if r else None)
            tr.append(f"{_pct(r.compliance)}<br>{r.episodes} episodes<br>"
                      f"{r.minutes / 60:.0f} h, {r.basis or 'no hands'}" if r else "no data")
        z.append(zr)
        text.append(tr)
    fig = go.Figure(go.Heatmap(z=z, x=shifts, y=stations, text=text, colorscale="RdYlGn",
                               hovertemplate="%{y} / %{x}<br>%{text}<extra></extra>",
                               colorbar=dict(tickformat=".1%")))
    fig.update_layout(title="Compliance by station and shift (blank: no data)",
                      height=max(300, 28 * len(stations) + 120), margin=dict(t=50, b=30))
    return fig


def _top_chart(rows: list[h.Stats]) -> go.Figure:
    names = [r.key[0] for r in rows][::-1]
    fig = go.Figure()
    fig.add_bar(y=names, x=[r.episodes - r.critical for r in rows][::-1], name="warning",
                orientation="h", marker_color="#f0a202")
    fig.add_bar(y=names, x=[r.critical for r in rows][::-1], name="critical", orientation="h",
                marker_color="#c0392b")
    fig.update_layout(barmode="stack", title="Top stations by episodes",
                      height=max(300, 30 * len(rows) + 120), margin=dict(t=50, b=30))
    return fig


def _coverage_chart(cells: list[h.CoverageCell]) -> go.Figure:
    stations = sorted({c.station for c in cells})
    days = sorted({c.day for c in cells})
    idx = {(c.station, c.day): c for c in cells}
    z = [[(idx[(s, d)].stats.minutes or None) for d in days] for s in stations]
    text = [[_pct(idx[(s, d)].stats.compliance) if idx[(s, d)].stats.watched_s
             else "no camera" for d in days] for s in stations]
    fig = go.Figure(go.Heatmap(z=z, x=days, y=stations, text=text, colorscale="Blues",
                               hovertemplate="%{y} %{x}<br>%{z:.0f} min monitored, "
                                             "compliance %{text}<extra></extra>",
                               colorbar=dict(title="min")))
    fig.update_layout(title="Minutes monitored per station and day (blank: no camera)",
                      height=max(300, 26 * len(stations) + 120), margin=dict(t=50, b=30))
    return fig


def _charts(fig: dict, f: h.HistoryFilter, by_key: str) -> None:
    tabs = st.tabs(["Trend", "Station × shift", "Hour of day", "Top stations", "Coverage"])
    with tabs[0]:
        st.plotly_chart(_compliance_episodes_chart(
            fig["trend"], [r.key[0] for r in fig["trend"]],
            f"Compliance and episodes per {by_key} (gaps: no hands seen)", 380), width="stretch")
    with tabs[1]:
        if fig["station_shift"]:
            st.plotly_chart(_heatmap(fig["station_shift"]), width="stretch")
        else:
            st.info("No station has data in this range.")
    with tabs[2]:
        st.plotly_chart(_compliance_episodes_chart(
            fig["hours"], [r.key[0] + ":00" for r in fig["hours"]], "Hour-of-day profile", 360),
            width="stretch")
    with tabs[3]:
        if fig["top"]:
            st.plotly_chart(_top_chart(fig["top"]), width="stretch")
        else:
            st.info("No episodes in this range (dismissed false alarms are not counted).")
    with tabs[4]:
        cells = fig["coverage"]
        if cells:
            st.plotly_chart(_coverage_chart(cells), width="stretch")
            no_cam = sum(1 for c in cells if not c.stats.watched_s)
            st.caption(f"{no_cam} of {len(cells)} station-days had no camera running: they "
                       "have no compliance figure (never shown as 100 %).")
        else:
            st.info("No coverage in this range.")


def _episode_table(conn: sqlite3.Connection, f: h.HistoryFilter, total: int) -> list[h.Episode]:
    st.subheader("Episodes")
    order = st.selectbox("Order", list(h.EPISODE_ORDERS), key="order")
    eps = h.episodes(conn, f, limit=200, order=order)
    st.caption(f"Showing {len(eps)} of {total:,} episodes (dismissed ones included, marked). "
               "Thumbnails for the first 50.")
    st.dataframe(
        [{"thumbnail": _thumb_uri(e) if i < 50 else None, "id": e.id, "started": e.started_at,
          "station": e.station, "duration s": round(e.duration_s, 1),
          "severity": e.severity, "review": e.review, "comment": e.review_comment or ""}
         for i, e in enumerate(eps)],
        column_config={"thumbnail": st.column_config.ImageColumn("thumbnail", width="small")},
        hide_index=True, width="stretch")
    return eps


def _episode_detail(conn: sqlite3.Connection, eps: list[h.Episode]) -> None:
    if not eps:
        return
    ids = [e.id for e in eps]
    eid = st.selectbox("Open episode", ids, key="episode",
                       format_func=lambda i: next(f"#{e.id} {e.station} {e.started_at} "
                                                  f"({e.severity}, {e.review})"
                                                  for e in eps if e.id == i))
    ep = h.get_episode(conn, eid)
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
        st.markdown(f"**#{ep.id}** · {ep.station} · {ep.started_at} → "
                    f"{ep.ended_at or 'open'}  \n"
                    f"{ep.duration_s:.1f} s · {ep.severity} · {ep.class_name or '-'} · "
                    f"peak {ep.peak_conf or 0:.2f} · zone {ep.zone or '-'} · "
                    f"rule v{ep.rule_version or '-'} · model {(ep.model_hash or '-')[:12]}")
        with st.form("review"):
            state = st.radio("Review", list(h.REVIEW_STATES),
                             index=list(h.REVIEW_STATES).index(ep.review), horizontal=True)
            comment = st.text_input("Comment", value=ep.review_comment or "")
            who = st.text_input("Reviewer", value=ep.reviewed_by or "")
            if st.form_submit_button("Save review"):
                entry = set_review(conn, ep.id, state, comment, who)
                st.session_state["rev"] = st.session_state.get("rev", 0) + 1
                st.success(f"Episode #{ep.id} marked {entry.review}"
                           + (" (left out of the figures)" if entry.review == "dismissed"
                              else "") + ".")
        trail = review_history(conn, ep.id)
        if trail:
            st.caption("Review history: " + "; ".join(
                f"{r.reviewed_at} {r.review} by {r.reviewed_by or '-'}"
                + (f" ({r.comment})" if r.comment else "") for r in trail))


def _exports(conn: sqlite3.Connection, f: h.HistoryFilter, has_data: bool) -> None:
    st.subheader("Reports and exports")
    c1, c2, c3 = st.columns(3)
    stamp = f"{f.start.isoformat()}_{f.end.isoformat()}"
    # a callable: the CSV is only built when someone clicks
    c1.download_button("Download episodes CSV", lambda: episodes_csv(conn, f),
                       file_name=f"glovewatch-episodes-{stamp}.csv", mime="text/csv",
                       disabled=not has_data)
    if c2.button("Build Excel report", disabled=not has_data):
        path = settings().exports_dir / f"glovewatch-report-{stamp}.xlsx"
        with st.spinner("Writing the workbook..."):
            write_history_xlsx(path, conn, f)
        st.session_state["xlsx"] = (path.name, path.read_bytes())
    if "xlsx" in st.session_state:
        name, data = st.session_state["xlsx"]
        c2.download_button("Download Excel report", data, file_name=name,
                           mime="application/vnd.openxmlformats-officedocument"
                                ".spreadsheetml.sheet")
    if c3.button("Export reviewed evidence (YOLO)", disabled=not has_data):
        out = settings().datasets_dir / f"reviewed-{datetime.now():%Y%m%d-%H%M%S}"
        rep = export_reviewed(conn, out, f)
        c3.success(f"{rep.images} images, {rep.boxes} boxes → {rep.path}")
        if rep.skipped:
            c3.caption(f"{len(rep.skipped)} reviewed episodes skipped, e.g. "
                       + "; ".join(f"#{i}: {why}" for i, why in rep.skipped[:3]))


def _retention(conn: sqlite3.Connection) -> None:
    with st.expander("Retention"):
        st.write("Deletes evidence images and raw per-frame / per-second rows older than the "
                 "given number of days. Episode rows and hourly figures stay, so the numbers "
                 "above do not change.")
        days = st.number_input("Keep days", min_value=1, value=settings().retention_days,
                               key="keep_days")
        sure = st.checkbox(f"Yes, delete evidence and raw rows older than {int(days)} days",
                           key="retention_sure")
        if st.button("Run retention now", disabled=not sure):
            rep = run_retention(conn, int(days))
            st.session_state["rev"] = st.session_state.get("rev", 0) + 1
            st.success(rep.summary())
        runs = last_runs(conn)
        if runs:
            st.caption("Last runs: " + "; ".join(
                f"{r.ran_at} kept {r.days} days" for r in runs))


def main() -> None:
    opened = _open_store()
    if opened is None:
        return
    db_path, conn = opened
    span = h.data_span(conn)
    if span.empty:
        st.info("The store has no monitoring data yet: nothing to show. Run batch detection "
                "or live monitoring first (or `python -m core synth` for a demo store).")
        _retention(conn)
        return
    f = _filters(conn, span)
    st.caption(f"Showing {f.describe()}. Class, severity and review filters apply to "
               "episodes; hand-time has neither. Data in the store: "
               f"{span.first} to {span.last}.")
    deleted = [s.name for s in h.stations(conn) if s.deleted]
    if deleted:
        st.caption(f"Deleted stations keep their history: {', '.join(deleted)}.")
    by = st.radio("Trend per", ["day", "week"], horizontal=True, key="trend_by")
    fig = _figures(db_path, f, by, st.session_state.get("rev", 0))
    k: h.Kpis = fig["kpis"]
    t = k.total
    has_data = bool(t.watched_s or t.frames or fig["count"])
    if not has_data:
        st.warning(f"No data from {f.start} to {f.end} for these filters. The store holds data "
                   f"from {span.first} to {span.last}.")
    else:
        _kpis(k, t.minutes)
        _charts(fig, f, by)
        eps = _episode_table(conn, f, fig["count"])
        _episode_detail(conn, eps)
    _exports(conn, f, has_data)
    _retention(conn)


main()
