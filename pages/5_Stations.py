"""Stations: glove rules and danger zones per machine, versioned."""

import pandas as pd
import streamlit as st

from core.accounts import Permission
from core.config import DEFAULT_STATION
from core.errors import GloveWatchError
from core.events.rules import Polarity, StationRule, draw_zones, parse_zones
from core.events.stations import (
    current_rule,
    delete_station,
    list_stations,
    rule_history,
    save_rule,
)
from core.media import IMAGE_SUFFIXES, read_image
from core.training.registry import active_weights
from ui.text import md
from ui.widgets import describe_model, page_setup

POLARITY_LABELS = {
    Polarity.GLOVES_REQUIRED: "Gloves required (a bare hand is a violation)",
    Polarity.NO_GLOVES: "No gloves (rotating spindle: a glove is the hazard)",
}
NEW = "➕ New station"

page = page_setup("Stations", "🏭", Permission.EDIT_STATIONS)
store = page.store
st.title("Stations and rules")
st.write(
    "A station is one machine or work place. Its rule says which hands are a violation "
    "there; a violation whose hand is inside a **danger zone** (e.g. around the blade) is "
    "**critical**. Every save is a new version, and each episode records the version it "
    "was judged by."
)

names = list_stations(store)
if "stations-saved" in st.session_state:  # a station just created: pick it in the list
    st.session_state["stations-pick"] = st.session_state["stations-saved"]
choice = st.selectbox("Station", names + [NEW], key="stations-pick")
name = st.text_input("New station name", key="stations-new").strip() if choice == NEW else choice
rule = current_rule(store, name) if name else StationRule(DEFAULT_STATION)

try:
    model_names = list(describe_model(active_weights(store)).names.values())
except (GloveWatchError, OSError):  # a missing model must not hide the rules
    model_names = []

with st.form("stations-form"):
    polarity = st.radio(
        "Glove rule",
        list(Polarity),
        format_func=POLARITY_LABELS.get,
        index=list(Polarity).index(rule.polarity),
        key=f"stations-polarity-{name}",
    )
    allowed_text = st.text_input(
        "Glove classes allowed here (comma-separated; empty = any glove)",
        ", ".join(rule.allowed),
        key=f"stations-allowed-{name}",
        help="E.g. only steel mesh gloves at the bandsaw: glove_steel. Classes of the active "
        f"model: {md(', '.join(model_names) or 'unknown')}.",
    )
    zones_text = st.text_area(
        "Danger zones, one per line: name: x,y x,y x,y … (fractions 0..1 of width and height)",
        "\n".join(z.to_text() for z in rule.zones),
        height=120,
        key=f"stations-zones-{name}",
        placeholder="blade: 0.40,0.30 0.60,0.30 0.60,0.80 0.40,0.80",
    )
    tiles_text = st.text_input(
        "Tiled inference for wide views (empty = off)",
        rule.tiles,
        key=f"stations-tiles-{name}",
        placeholder="320:0.25",
        help="Tile size in pixels and overlap: finds hands of 20-60 px in a 1080p view, at "
        "several times the CPU cost per frame.",
    )
    save = st.form_submit_button("Save as new version", type="primary")

if save:
    try:
        if not name:
            raise ValueError("Give the new station a name.")
        saved = save_rule(
            store,
            StationRule(
                name,
                polarity=Polarity(polarity or rule.polarity),  # the radio always has one
                allowed=tuple(a.strip() for a in allowed_text.split(",") if a.strip()),
                zones=parse_zones(zones_text),
                tiles=tiles_text.strip(),
            ),
            author=page.account.name,
        )
        st.session_state["stations-flash"] = f"Saved {saved.station}: {saved.describe()}."
        if choice == NEW:
            st.session_state["stations-saved"] = saved.station
        st.rerun()
    except (GloveWatchError, ValueError) as exc:
        st.error(md(str(exc)))

if "stations-flash" in st.session_state:
    st.session_state.pop("stations-saved", None)
    st.success(md(st.session_state.pop("stations-flash")))

st.subheader("Zones over a snapshot")
snap = st.file_uploader(
    "A frame from this station's camera",
    type=sorted(x.lstrip(".") for x in IMAGE_SUFFIXES),
    key="stations-snap",
)
if snap is not None:
    try:
        preview = rule
        try:
            preview = StationRule(name or DEFAULT_STATION, zones=parse_zones(zones_text))
        except GloveWatchError as exc:
            st.warning(f"Showing the saved zones; the typed ones are not valid: {md(exc)}")
        st.image(draw_zones(read_image(snap.getvalue(), snap.name), preview), channels="BGR")
    except GloveWatchError as exc:
        st.error(md(str(exc)))

if name:
    history = rule_history(store, name)
    if history:
        st.subheader(f"Versions of {md(name)}")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "version": h.rule.version,
                        "saved": h.created_at,
                        "by": h.author or "",
                        "rule": str(h.rule.polarity),
                        "allowed": ", ".join(h.rule.allowed) or "any glove",
                        "zones": "; ".join(z.to_text() for z in h.rule.zones),
                    }
                    for h in history
                ]
            ),
            hide_index=True,
        )
    if (
        name != DEFAULT_STATION
        and choice != NEW
        and st.button("Hide this station", key="stations-delete")
    ):
        delete_station(store, name, page.account.name)
        st.success(f"{md(name)} hidden; its rules and events stay in the history.")
