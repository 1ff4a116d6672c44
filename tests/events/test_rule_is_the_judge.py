"""The station rule is the one judge everywhere: episodes, coverage, History figures, the Excel
report and box colours all follow it (a glove at a "no gloves" lathe is a violation)."""

from __future__ import annotations

from datetime import date, datetime

import openpyxl
import pytest

from core.analytics import history as h
from core.analytics.reports import write_history_xlsx
from core.events.rules import Polarity, StationRule
from core.events.stations import current_rule, save_rule
from core.media import read_image
from core.vision.annotate import STATUS_COLOURS, BoxStatus, draw
from core.vision.detections import FrameDetections
from tests.events.scenes import dets, every, hand, record
from tests.helpers import sheet_rows, sheet_table

DAY = date(2026, 1, 5)
STARTED = datetime(2026, 1, 5, 10, 0, 0)
BOX = (200.0, 200.0, 320.0, 320.0)

LATHE = StationRule("Lathe", polarity=Polarity.NO_GLOVES)
SAW = StationRule("Saw 3", allowed=("glove_steel",))

CASES = {
    # rule, class seen for 5 s, episodes, compliance
    "glove at a no-gloves lathe": (LATHE, "glove", 1, 0.0),
    "plain glove at a steel-gloves-only saw": (SAW, "glove", 1, 0.0),
    "bare hand at a no-gloves lathe": (LATHE, "hand", 0, 1.0),
    "steel glove at a steel-gloves-only saw": (SAW, "glove_steel", 0, 1.0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rule_decides_episodes_coverage_kpis_and_report(case, store, tmp_path, gloved_images):
    rule, cls, n_episodes, compliance = CASES[case]
    rule = save_rule(store, rule, "ann")
    assert current_rule(store, rule.station).version == 1
    image = read_image(gloved_images[0])
    record(
        store,
        current_rule(store, rule.station),
        every(0.2, 0, 5, dets(hand(cls, BOX, 0.9, 1))),
        image,
        STARTED,
    )

    f = h.HistoryFilter(DAY, DAY, stations=(rule.station,))
    eps = h.episodes(store, f)
    assert len(eps) == n_episodes and h.count_episodes(store, f) == n_episodes
    if n_episodes:
        ep = eps[0]
        assert ep.class_name == cls and ep.duration_s == pytest.approx(5.0)
        assert ep.rule_version == 1 and ep.state == "closed"

    k = h.kpis(store, f)
    assert k.total.basis == h.BASIS_HAND_TIME
    assert k.compliance == pytest.approx(compliance)
    assert k.total.episodes == n_episodes
    assert k.total.watched_s == pytest.approx(5.0)

    cells = [c for c in h.coverage(store, h.HistoryFilter(DAY, DAY)) if c.station == rule.station]
    assert len(cells) == 1 and cells[0].stats.compliance == pytest.approx(compliance)
    (st,) = h.per_station(store, h.HistoryFilter(DAY, DAY))
    assert st.key == (rule.station,) and st.compliance == pytest.approx(compliance)

    wb = openpyxl.load_workbook(write_history_xlsx(tmp_path / "r.xlsx", store, f))
    summary = sheet_rows(wb["Summary"])
    kv = {r[0]: r[1] for r in sheet_table(summary, ("KPI", "Value"))}
    assert kv["Compliance"] == pytest.approx(compliance)
    assert kv["Episodes (dismissed left out)"] == n_episodes
    per_station = {r[0]: r for r in sheet_table(summary, ("Station", "Compliance"))}
    assert per_station[rule.station][1] == pytest.approx(compliance)
    cov = {(r[0], r[1]): r for r in sheet_table(sheet_rows(wb["Coverage"]), ("Station", "Day"))}
    assert cov[(rule.station, DAY.isoformat())][3] == pytest.approx(compliance)
    episodes_sheet = sheet_table(sheet_rows(wb["Episodes"]), ("thumbnail", "id"))
    assert len(episodes_sheet) == n_episodes
    assert len(wb["Episodes"]._images) == n_episodes  # the evidence thumbnail
    if n_episodes:
        assert episodes_sheet[0][4] == rule.station and episodes_sheet[0][6] == cls


def _edge_colour(img, box):
    """The pixel on the left edge of ``box``, half-way down (away from the label)."""
    x1, y1, _, y2 = (int(round(v)) for v in box)
    return tuple(int(v) for v in img[(y1 + y2) // 2, x1])


def test_box_colours_follow_the_station_judgement(gloved_images):
    image = read_image(gloved_images[0])
    boxes = {
        "hand": (40.0, 300.0, 140.0, 400.0),
        "glove": (300.0, 300.0, 400.0, 400.0),
        "head": (450.0, 60.0, 560.0, 170.0),
    }
    fd = FrameDetections(
        dets(*(hand(n, b, 0.9, i) for i, (n, b) in enumerate(boxes.items()))), image.shape[:2]
    )
    judged = LATHE.judge_frame(fd)
    out = draw(image, fd, judged.status)
    assert _edge_colour(out, boxes["hand"]) == STATUS_COLOURS[BoxStatus.COMPLIANT]  # green
    assert _edge_colour(out, boxes["glove"]) == STATUS_COLOURS[BoxStatus.VIOLATING]  # red
    assert _edge_colour(out, boxes["head"]) == STATUS_COLOURS[BoxStatus.CONTEXT]  # grey
    # at a gloves-required station the same boxes swap colours
    out = draw(image, fd, StationRule("Saw").judge_frame(fd).status)
    assert _edge_colour(out, boxes["hand"]) == STATUS_COLOURS[BoxStatus.VIOLATING]
    assert _edge_colour(out, boxes["glove"]) == STATUS_COLOURS[BoxStatus.COMPLIANT]
    assert _edge_colour(image, boxes["glove"]) != STATUS_COLOURS[BoxStatus.COMPLIANT]
