"""Stations page under AppTest: save versioned rules with zones, bad zones rejected."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core import store as st
from core.stations import current_rule, rule_history
from tests.helpers import open_page


def _page() -> AppTest:
    return open_page("pages/5_Stations.py")


def test_new_station_rule_with_zone_then_new_version(gw_home, bare_images):
    at = _page()
    at.selectbox(key="stations-pick").set_value("➕ New station").run()
    at.text_input(key="stations-new").set_value("Bandsaw 3").run()
    at.text_input(key="stations-allowed-Bandsaw 3").set_value("glove_steel")
    at.text_area(key="stations-zones-Bandsaw 3").set_value(
        "blade: 0.4,0.3 0.6,0.3 0.6,0.8 0.4,0.8")
    at.text_input(key="stations-author").set_value("Ann")
    at.button(key="stations-save").click().run()
    assert not at.exception
    assert any("Saved Bandsaw 3 rule v1" in s.value for s in at.success)
    conn = st.connect()
    rule = current_rule(conn, "Bandsaw 3")
    assert rule.allowed == ("glove_steel",) and rule.zones[0].name == "blade"
    # a bad zone is refused with a message, and nothing is stored
    at.text_area(key="stations-zones-Bandsaw 3").set_value("blade: 0.4,0.3 0.6,0.3")
    at.button(key="stations-save").click().run()
    assert any("at least 3 points" in e.value for e in at.error)
    assert len(rule_history(conn, "Bandsaw 3")) == 1
    # the zones are drawn over an uploaded snapshot
    at.file_uploader(key="stations-snap").set_value(
        (bare_images[0].name, bare_images[0].read_bytes(), "image/jpeg"))
    at.run()
    assert not at.exception and len(at.get("image")) == 1


def test_no_gloves_rule_for_a_lathe(gw_home):
    at = _page()
    at.selectbox(key="stations-pick").set_value("➕ New station").run()
    at.text_input(key="stations-new").set_value("Lathe").run()
    at.radio(key="stations-polarity-Lathe").set_value("no_gloves")
    at.button(key="stations-save").click().run()
    assert not at.exception
    rule = current_rule(st.connect(), "Lathe")
    assert rule.polarity == "no_gloves" and rule.version == 1
    at.run()
    assert "Lathe" in at.selectbox(key="stations-pick").options
