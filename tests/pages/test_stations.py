"""The Stations page under AppTest: versioned rules with danger zones, bad zones refused, the
zones drawn over a snapshot, a no-gloves rule, hiding a station."""

from __future__ import annotations

from typing import Any

from core.events.stations import current_rule, list_stations, rule_history
from tests.helpers import open_page
from tests.pages.support import plain, values

NEW = "➕ New station"


def _page() -> Any:
    return open_page("pages/5_Stations.py")


def _new_station(at: Any, name: str) -> None:
    at.selectbox(key="stations-pick").set_value(NEW).run()
    at.text_input(key="stations-new").set_value(name).run()


def _save(at: Any) -> None:
    at.button(key="FormSubmitter:stations-form-Save as new version").click().run()
    assert not at.exception, at.exception


def test_new_station_rule_with_zone_then_bad_zone(gw_home, store, bare_images):
    at = _page()
    _new_station(at, "Bandsaw 3")
    at.text_input(key="stations-allowed-Bandsaw 3").set_value("glove_steel")
    at.text_area(key="stations-zones-Bandsaw 3").set_value("blade: 0.4,0.3 0.6,0.3 0.6,0.8 0.4,0.8")
    _save(at)
    assert any(
        plain(s).startswith(
            "Saved Bandsaw 3: rule v1: gloves required, only glove_steel; danger zones blade"
        )
        for s in values(at.success)
    )
    rule = current_rule(store, "Bandsaw 3")
    assert rule.allowed == ("glove_steel",) and rule.zones[0].name == "blade"
    assert rule_history(store, "Bandsaw 3")[0].author == "local"
    assert "Bandsaw 3" in list_stations(store)
    picker = at.selectbox(key="stations-pick")  # the new station is listed and chosen at once
    assert picker.value == "Bandsaw 3" and "Bandsaw 3" in picker.options
    # a bad zone is refused with a message, and nothing is stored
    at.text_area(key="stations-zones-Bandsaw 3").set_value("blade: 0.4,0.3 0.6,0.3")
    _save(at)
    assert any("at least 3 points" in plain(e) for e in values(at.error))
    assert len(rule_history(store, "Bandsaw 3")) == 1
    # the typed zones are drawn over an uploaded snapshot; the invalid ones are said so
    at.file_uploader(key="stations-snap").set_value(
        (bare_images[0].name, bare_images[0].read_bytes(), "image/jpeg")
    ).run()
    assert not at.exception and len(at.get("image")) == 1
    assert any("typed ones are not valid" in w for w in values(at.warning))


def test_second_save_is_a_new_version(gw_home, store):
    at = _page()
    _new_station(at, "Press 2")
    _save(at)
    at.run()
    at.selectbox(key="stations-pick").set_value("Press 2").run()
    at.text_area(key="stations-zones-Press 2").set_value("die: 0.1,0.1 0.9,0.1 0.5,0.9")
    _save(at)
    assert current_rule(store, "Press 2").version == 2
    versions = next(d.value for d in at.dataframe if "version" in d.value.columns)
    assert list(versions["version"]) == [2, 1]


def test_no_gloves_rule_for_a_lathe_and_hiding_it(gw_home, store):
    at = _page()
    _new_station(at, "Lathe")
    at.radio(key="stations-polarity-Lathe").set_value("no_gloves")
    _save(at)
    rule = current_rule(store, "Lathe")
    assert rule.polarity == "no_gloves" and rule.version == 1
    at.run()
    assert "Lathe" in at.selectbox(key="stations-pick").options
    at.selectbox(key="stations-pick").set_value("Lathe").run()
    at.button(key="stations-delete").click().run()
    assert any("hidden" in s for s in values(at.success))
    at.run()
    assert "Lathe" not in at.selectbox(key="stations-pick").options
    assert rule_history(store, "Lathe")  # the rules stay for the history
